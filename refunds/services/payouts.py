"""Weekly payouts (L-9): a payout entry closes each ended period of a restaurant's ledger, so
every sale, fee, deduction and reversal lands in a period, and what the restaurant is paid is
what the platform owed it at the period's end.

A period is a week, Monday 00:00 to Monday 00:00 in the site's time zone. Its payout is booked
at the last instant of the week (so the week it closes holds it) and pays the whole balance
then, earlier payouts included: an entry that commits late into an already closed week, or a
week whose deductions exceed its sales (a payout of zero), carries into the next payout.
"""

import datetime as dt
import zoneinfo

from django.db import IntegrityError, transaction

from core.display import day_text
from orders.lock_objects import restaurant_for_update_skip_locked
from refunds import policy
from refunds.models import RestaurantLedgerEntry
from refunds.selectors import restaurant_balance_before, restaurant_periods_to_close
from refunds.services.ledger import restaurant_ledger_record

LAST_INSTANT = dt.timedelta(microseconds=1)


@transaction.atomic
def restaurant_close_periods(
    *, restaurant_id: int, now: dt.datetime, tz: zoneinfo.ZoneInfo
) -> list[RestaurantLedgerEntry] | None:
    """Book the payout of each ended period of the restaurant that has entries and no payout,
    oldest first (L-9). Takes the restaurant's row lock with SKIP LOCKED: None when another
    run holds it (that run closes them); a second run finds nothing left to close. The unique
    payout per restaurant and period is the database's backstop. Raises no domain error."""
    if restaurant_for_update_skip_locked(restaurant_id) is None:
        return None
    booked = []
    for starts_on in restaurant_periods_to_close(restaurant_id, now=now, tz=tz):
        ends_at = dt.datetime.combine(starts_on + dt.timedelta(days=7), dt.time(0), tzinfo=tz)
        amount = policy.payout_amount(restaurant_balance_before(restaurant_id, ends_at))
        try:
            with transaction.atomic():
                booked.append(
                    restaurant_ledger_record(
                        restaurant_id=restaurant_id,
                        kind=RestaurantLedgerEntry.Kind.PAYOUT,
                        amount=amount,
                        order=None,
                        period_starts_on=starts_on,
                        created_at=ends_at - LAST_INSTANT,
                        description=f"Payout for the week of {day_text(starts_on)}",
                    )
                )
        except IntegrityError:  # closed meanwhile by a run that did not lock the row first
            continue
    return booked
