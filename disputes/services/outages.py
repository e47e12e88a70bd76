"""Incidents a supervisor enters (L-10): an outage, whose affected orders are refunded in full in
bulk, exactly once each, and force majeure, whose orders the automatic rules leave to agents.

The bulk refund runs on Celery in batches (`disputes.tasks.refund_outage`, and the beat task
`disputes.tasks.refund_outages` that resumes any left unfinished). Each batch is one transaction
modelled on the late sweep (refunds/services/late.py): the orders locked with SKIP LOCKED,
re-checked under the lock, refunded with `refund_row` + `refunds_start` under the key
`outage:<incident>:<order>` (unique per part), the buyers told why, and the incident's progress
counted in the same transaction by a guarded update. Two runs at once, or a run after a worker
died part way, refund each order once. Outage refunds have no request, so nothing is deducted
from the restaurants (L-9: platform-caused)."""

import datetime as dt

from django.db import transaction
from django.db.models import F
from django.urls import reverse

from core.display import day_text, money_text
from core.errors import DomainError, InvalidInput
from core.money import ZERO
from core.outbox import outbox_enqueue
from core.roles import is_supervisor
from core.services import notification, notify, notify_many
from disputes import policy
from disputes.lock_objects import incident_for_update
from disputes.models import Incident
from disputes.selectors import (
    OutageEstimate,
    incident_estimate,
    outage_estimate,
    outage_refund_key_prefix,
    outage_refunds_by_restaurant,
)
from orders.events import order_event
from orders.lock_objects import orders_for_update_skip_locked
from orders.models import OrderEvent, Restaurant
from refunds import policy as refund_policy
from refunds.models import Refund
from refunds.selectors import paid_facts_of, refundable_payment_ids
from refunds.services.completion import refund_message
from refunds.services.execution import no_card_payment, refund_part_key, refund_row, refunds_start

REFUND_TASK = "disputes.tasks.refund_outage"
BUSY = "busy"  # another run holds the order: it refunds it, or a later pass does
REFUNDED = "refunded"
ALREADY = "already_refunded"  # by this outage (a run before), or in full by anything else


def outage_refund_key(incident_id: int, order_id: int) -> str:
    """The refund service's idempotency key of an order's outage refund (D-7); its parts are
    `refund_part_key(key, destination)`, unique in the refunds table."""
    return f"{outage_refund_key_prefix(incident_id)}{order_id}"


def incident_entry_check(
    *, actor, kind: str, starts_at, ends_at, restaurant_ids: list[int], now: dt.datetime
) -> list[int]:
    """Check what a supervisor enters (L-10, D-4) before a dry run or a save; returns the
    restaurant ids, sorted and without repeats. Raises `supervisor_required` (409),
    `unknown_restaurant` (400) and the policy's refusals (`window_required`, `window_invalid`,
    `incident_kind_not_entered`: 400; `outage_not_over`: 409)."""
    if not is_supervisor(actor):
        raise DomainError(
            "supervisor_required", "Only a supervisor enters an incident.", clauses=["L-10"]
        )
    entry = policy.incident_entry(kind=kind, starts_at=starts_at, ends_at=ends_at, now=now)
    if not entry.allowed:
        kind_of_error = "conflict" if entry.code == "outage_not_over" else "invalid"
        raise DomainError(entry.code, entry.detail, clauses=entry.clauses, kind=kind_of_error)
    ids = sorted(set(restaurant_ids))
    known = set(Restaurant.objects.filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [pk for pk in ids if pk not in known]
    if unknown:
        raise InvalidInput("unknown_restaurant", f"There is no restaurant {unknown[0]}.")
    return ids


def outage_dry_run(
    *, actor, kind: str, starts_at, ends_at, restaurant_ids: list[int], now: dt.datetime
) -> OutageEstimate:
    """What an outage's bulk refund would give back now (L-10): its affected orders, the money
    and the split per restaurant, checked as `incident_entry_check` checks it. Writes nothing.
    Raises what `incident_entry_check` raises."""
    ids = incident_entry_check(
        actor=actor,
        kind=kind,
        starts_at=starts_at,
        ends_at=ends_at,
        restaurant_ids=restaurant_ids,
        now=now,
    )
    return outage_estimate(starts_at=starts_at, ends_at=ends_at, restaurant_ids=ids)


@transaction.atomic
def incident_create(
    *,
    actor,
    kind: str,
    title: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None,
    restaurant_ids: list[int],
    now: dt.datetime,
    description: str = "",
    start_refund: bool = False,
) -> Incident:
    """A supervisor enters an outage or force majeure (L-10) over a window and restaurants
    (none: all). Force majeure holds its late deliveries for agents at once
    (`refunds.selectors.force_majeure_covering`); an outage waits for its bulk refund, started
    here with `start_refund` (the API) or later (`outage_refund_start`, admin). Raises what
    `incident_entry_check` raises and `title_required` (400)."""
    ids = incident_entry_check(
        actor=actor,
        kind=kind,
        starts_at=starts_at,
        ends_at=ends_at,
        restaurant_ids=restaurant_ids,
        now=now,
    )
    if not title.strip():
        raise InvalidInput("title_required", "Give the incident a title.")
    incident = Incident.objects.create(
        kind=kind,
        title=title.strip(),
        description=description,
        starts_at=starts_at,
        ends_at=ends_at,
        opened_by=actor,
        created_at=now,
    )
    incident.restaurants.set(ids)
    if start_refund and kind == Incident.Kind.OUTAGE:
        return outage_refund_start(incident_id=incident.pk, actor=actor, now=now)
    return incident


@transaction.atomic
def outage_refund_start(*, incident_id: int, actor, now: dt.datetime) -> Incident:
    """Start, or resume, an outage's bulk refund (L-10): the incident is `refunding`, counts
    the orders it affects now, and a worker is asked (through the outbox, after commit) to
    refund them in batches. Asking again while it runs only asks the worker again: every order
    is refunded once whatever runs. Takes the incident's row lock. Raises `not_found` (404),
    `supervisor_required`, `not_an_outage`, `window_required`, `incident_closed` (409)."""
    if not is_supervisor(actor):
        raise DomainError(
            "supervisor_required",
            "Only a supervisor runs an outage's bulk refund.",
            clauses=["L-10"],
        )
    incident = incident_for_update(incident_id)
    if incident.kind != Incident.Kind.OUTAGE:
        raise DomainError(
            "not_an_outage", "Only an outage's orders are refunded in bulk.", clauses=["L-10"]
        )
    if incident.starts_at is None or incident.ends_at is None:
        raise DomainError(
            "window_required", "An outage without a window affects no order.", clauses=["L-10"]
        )
    if incident.status == Incident.Status.CLOSED:
        raise DomainError(
            "incident_closed",
            f"The bulk refund of this outage finished on {day_text(incident.refund_finished_at)}.",
            clauses=["L-10"],
        )
    if incident.status == Incident.Status.OPEN:
        incident.status = Incident.Status.REFUNDING
        incident.affected_orders = incident_estimate(incident).affected_orders
        incident.refund_started_at = now
        incident.refund_started_by = actor
        incident.save(
            update_fields=[
                "status",
                "affected_orders",
                "refund_started_at",
                "refund_started_by",
            ]
        )
    outbox_enqueue(task=REFUND_TASK, kwargs={"incident_id": incident.pk}, now=now)
    return incident


@transaction.atomic
def outage_orders_refund(
    *, incident: Incident, order_ids: list[int], now: dt.datetime
) -> dict[int, str]:
    """Refund in full each of these orders an outage affects (L-10), in one transaction and a
    fixed number of statements however many (D-8).

    Locks the orders with SKIP LOCKED in one statement: one another transaction holds is "busy"
    (another run has it). Under the lock each order is re-checked: one this outage refunded
    already, or with nothing left to refund, is "already_refunded"; otherwise what is still
    refundable goes back where it came from under `outage:<incident>:<order>`, the order's
    timeline says why and the buyer is told. The incident's progress grows in the same
    transaction, guarded by its status: if its bulk refund is no longer running, everything
    rolls back (`incident_not_refunding`, 409). Returns each order's outcome ("refunded",
    "busy", "already_refunded", "error:no_card_payment")."""
    outcomes = dict.fromkeys(order_ids, BUSY)
    orders = orders_for_update_skip_locked(order_ids)
    done_before = _refunded_by_outage(incident.pk, orders)
    paid = paid_facts_of(orders)
    payments = refundable_payment_ids(orders)
    rows, told = [], []
    for order in orders:
        refundable = paid[order.pk].refundable
        if order.pk in done_before or refundable <= ZERO:
            outcomes[order.pk] = ALREADY
            continue
        parts = refund_policy.split_refund(refundable, paid[order.pk], method="original")
        if any(p.destination == Refund.Destination.CARD for p in parts) and (
            order.pk not in payments
        ):
            outcomes[order.pk] = f"error:{no_card_payment().code}"
            continue
        order_rows = [_refund_row(incident, order, part, payments, now) for part in parts]
        rows += order_rows
        told.append((order, refundable, order_rows))
        outcomes[order.pk] = REFUNDED
    if told:
        _progress(incident.pk, told)
        _tell(incident, told, rows, now=now)
    return outcomes


def _refunded_by_outage(incident_id: int, orders) -> set[int]:
    keys = [
        refund_part_key(outage_refund_key(incident_id, order.pk), destination)
        for order in orders
        for destination in (Refund.Destination.CARD, Refund.Destination.ACCOUNT_CREDIT)
    ]
    return set(Refund.objects.filter(idempotency_key__in=keys).values_list("order_id", flat=True))


def _refund_row(incident: Incident, order, part, payments, now):
    return refund_row(
        order=order,
        amount=part.amount,
        destination=part.destination,
        idempotency_key=refund_part_key(outage_refund_key(incident.pk, order.pk), part.destination),
        payment_id=payments.get(order.pk) if part.destination == Refund.Destination.CARD else None,
        actor=incident.refund_started_by,
        reason=f"System outage: {incident.title}",
        clauses=policy.CLAUSES,
        now=now,
    )


def _progress(incident_id: int, told) -> None:
    """The guarded progress update: counted only while the bulk refund runs."""
    amount = sum((refundable for _, refundable, _ in told), ZERO)
    counted = Incident.objects.filter(pk=incident_id, status=Incident.Status.REFUNDING).update(
        refunded_orders=F("refunded_orders") + len(told),
        refunded_amount=F("refunded_amount") + amount,
    )
    if counted != 1:
        raise DomainError(
            "incident_not_refunding", "This outage's bulk refund is not running.", clauses=["L-10"]
        )


def _tell(incident: Incident, told, rows, *, now: dt.datetime) -> None:
    """The timeline, the money movements and the buyers told why (L-10)."""
    actor = incident.refund_started_by
    why = (
        f"Our systems failed while your order was placed ({incident.title}), so we refunded it "
        "in full (L-10)."
    )
    OrderEvent.objects.bulk_create(
        order_event(
            order=order,
            kind=OrderEvent.Kind.REFUND,
            name="outage_refund",
            actor=actor,
            role=OrderEvent.Role.SUPPORT,
            message=why,
            clauses=policy.CLAUSES,
            amount=refundable,
            at=now,
        )
        for order, refundable, _ in told
    )
    refunds_start(rows, actor=actor, role=OrderEvent.Role.SUPPORT, now=now)
    notify_many(
        [
            notification(
                user=order.buyer,
                title=f"Order #{order.pk}: refunded in full after a system outage",
                body=" ".join([why, *(refund_message(r) for r in order_rows)]),
                order=order,
            )
            for order, _, order_rows in told
        ]
    )


@transaction.atomic
def outage_refund_finish(*, incident_id: int, now: dt.datetime) -> bool:
    """Close an outage whose bulk refund has nothing left to do (L-10), once: a guarded update
    from `refunding`, so of two runs finishing together one closes it. The supervisor who
    started it is told the summary. Returns whether this call closed it."""
    closed = Incident.objects.filter(pk=incident_id, status=Incident.Status.REFUNDING).update(
        status=Incident.Status.CLOSED, refund_finished_at=now, closed_at=now
    )
    if not closed:
        return False
    incident = Incident.objects.select_related("refund_started_by").get(pk=incident_id)
    if incident.refund_started_by is not None:
        notify(
            user=incident.refund_started_by,
            title=f"Outage refund finished: {incident.title}",
            body=outage_summary_text(incident),
            url=reverse("admin:disputes_incident_change", args=[incident.pk]),
        )
    return True


def outage_summary_text(incident: Incident) -> str:
    """The bulk refund's summary as people read it: orders, money, per restaurant."""
    shares = "; ".join(
        f"{share.restaurant}: {share.orders} orders, {money_text(share.amount)}"
        for share in outage_refunds_by_restaurant(incident)
    )
    skipped = incident.affected_orders - incident.refunded_orders
    text = (
        f"{incident.refunded_orders} of {incident.affected_orders} affected orders refunded in "
        f"full, {money_text(incident.refunded_amount)} (L-10); nothing deducted from the "
        "restaurants (L-9)."
    )
    if skipped > 0:
        text += f" {skipped} needed no refund by the time they were reached."
    return f"{text} {shares}." if shares else text
