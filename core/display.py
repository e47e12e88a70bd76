"""Money, dates and times for people, written one way on every page, timeline, email and admin
screen (D-9): "Mon 30 Nov 2026, 14:05" in the current time zone, "Mon 30 Nov 2026" for a day,
"Mon 30 Nov" for the first day of a range that ends in the same year."""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from django.utils.dateformat import format as date_format

from core.money import amount_text

DATETIME_STYLE = "D j M Y, H:i"
DATE_STYLE = "D j M Y"
RANGE_START_STYLE = "D j M"


def when_text(moment: dt.datetime | None) -> str:
    """An aware datetime in the current time zone; "" for None."""
    if moment is None:
        return ""
    return date_format(timezone.localtime(moment), DATETIME_STYLE)


def day_text(value: dt.date | dt.datetime | None) -> str:
    """A date (or the local date of a datetime); "" for None."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value)
    return date_format(value, DATE_STYLE)


def days_text(first: dt.date, last: dt.date) -> str:
    """ "between Tue 1 Dec and Thu 10 Dec 2026": a range of days, the year once when shared."""
    start = date_format(first, RANGE_START_STYLE if first.year == last.year else DATE_STYLE)
    return f"between {start} and {day_text(last)}"


def money_text(amount: Decimal | int | str | None, currency: str | None = None) -> str:
    """An amount for people: two decimals, thousands grouped, then the currency code
    ("1,234.50 USD"); the deployment currency (`LOJIX_CURRENCY`) unless `currency` is given.
    `None` gives "" so an absent amount renders as nothing."""
    if amount is None or amount == "":
        return ""
    return amount_text(amount, currency or settings.LOJIX_CURRENCY)
