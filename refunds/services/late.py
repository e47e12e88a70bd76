"""The automatic refund of a delivery over 2 hours late (L-6.1, L-3.1, D-8): no request, no
review, once per order. The sweep (`refunds.tasks.auto_refund_late_orders`) and a buyer's late
claim agree: both lock the order, re-check what is still refundable and mark the order, so the
money moves once whichever comes first."""

import datetime as dt

from django.db import transaction

from core.services import notification, notify_many
from orders.events import order_event
from orders.lock_objects import orders_for_update_skip_locked
from orders.models import Order, OrderEvent
from refunds import policy
from refunds.models import Refund
from refunds.selectors import late_orders_facts, paid_facts_of, refund_terms, refundable_payment_ids
from refunds.services.completion import refund_message
from refunds.services.execution import no_card_payment, refund_part_key, refund_row, refunds_start

BUSY = "busy"  # another transaction holds the order: the next tick looks again
HELD = "held"  # force majeure: listed for agents (L-10)
REFUNDED = "refunded"


def late_auto_refund_key(order_id: int) -> str:
    """The refund service's idempotency key of an order's one automatic late refund (D-7); its
    parts are `refund_part_key(key, destination)`, unique in the refunds table."""
    return f"late-auto:{order_id}"


def late_order_auto_refund(*, order_id: int, now: dt.datetime) -> str:
    """`late_orders_auto_refund` for one order: its outcome."""
    return late_orders_auto_refund(order_ids=[order_id], now=now)[order_id]


@transaction.atomic
def late_orders_auto_refund(*, order_ids: list[int], now: dt.datetime) -> dict[int, str]:
    """Refund in full each of these late deliveries the policy says to now (L-6.1, L-3.1), in
    one transaction and a fixed number of statements however many it refunds (D-8).

    Locks the orders with SKIP LOCKED in one statement: one another transaction holds (a claim,
    another sweep) is "busy" and left for the next tick. Each locked order is re-checked against
    its pinned version; when due, what is still refundable goes back where it came from under
    the key `late-auto:<order id>` (the card part `pending` for the processor, the account
    credit part at once), the order is marked refunded and the buyer told why. Returns each
    order's outcome: "refunded", "busy", "held" (force majeure, L-10: agents decide),
    "error:no_card_payment" (a card part with no charge to refund: the order is left as it
    was), or the decision's skip code ("not_late_enough", "already_refunded",
    "weather_blocks_automatic", "nothing_to_refund", "not_swept"); a final skip marks the order
    `late_sweep_done_at` so the sweep no longer reads it. Raises nothing for one order's
    state."""
    outcomes = dict.fromkeys(order_ids, BUSY)
    orders = orders_for_update_skip_locked(order_ids)
    paid = paid_facts_of(orders)
    facts = late_orders_facts(orders, paid)
    terms = {}
    due, done = [], []
    for order in orders:
        version = order.policy_version
        terms.setdefault(version.pk, refund_terms(version))
        decision = policy.late_auto_refund_decision(facts[order.pk], terms[version.pk], now=now)
        if decision.action == policy.LateAction.REFUND:
            due.append((order, decision))
            continue
        outcomes[order.pk] = HELD if decision.action == policy.LateAction.HOLD else decision.code
        if decision.final:
            done.append(order.pk)
    _refund(due, paid, now=now, outcomes=outcomes)
    _sweep_done(done, now=now)
    return outcomes


def _refund(due, paid, *, now: dt.datetime, outcomes: dict[int, str]) -> None:
    """Make the due orders' refunds together."""
    payments = refundable_payment_ids([order for order, _ in due])
    rows, told = [], []
    for order, decision in due:
        parts = policy.split_refund(decision.amount, paid[order.pk], method="original")
        to_card = any(part.destination == Refund.Destination.CARD for part in parts)
        if to_card and order.pk not in payments:
            outcomes[order.pk] = f"error:{no_card_payment().code}"
            continue
        order_rows = [_refund_row(order, decision, part, payments, now) for part in parts]
        rows += order_rows
        told.append((order, decision, order_rows))
        outcomes[order.pk] = REFUNDED
    orders_mark_auto_late_refunded([order.pk for order, _, _ in told], now=now)
    OrderEvent.objects.bulk_create(
        order_event(
            order=order,
            kind=OrderEvent.Kind.REFUND,
            name="late_auto_refund",
            actor=None,
            role=OrderEvent.Role.POLICY,
            message=decision.detail,
            clauses=decision.clauses,
            amount=decision.amount,
            at=now,
        )
        for order, decision, _ in told
    )
    refunds_start(rows, actor=None, role=OrderEvent.Role.POLICY, now=now)
    notify_many(
        [
            notification(
                user=order.buyer,
                title=f"Order #{order.pk}: refunded in full, {decision.minutes_late} minutes late",
                body=" ".join([decision.detail, *(refund_message(r) for r in order_rows)]),
                order=order,
            )
            for order, decision, order_rows in told
        ]
    )


def _refund_row(order, decision, part, payments, now):
    return refund_row(
        order=order,
        amount=part.amount,
        destination=part.destination,
        idempotency_key=refund_part_key(late_auto_refund_key(order.pk), part.destination),
        payment_id=payments.get(order.pk) if part.destination == Refund.Destination.CARD else None,
        actor=None,
        reason=f"Order #{order.pk}: {decision.minutes_late} minutes late",
        clauses=decision.clauses,
        now=now,
    )


def order_mark_auto_late_refunded(order: Order, *, now: dt.datetime) -> None:
    """Record that the order's one automatic late refund is made (L-6.1), by the sweep or by an
    automatic late claim, so neither makes another; the field is set once (a guarded update)
    and only on a delivery (check constraint `order_auto_late_refund_delivery_only`); the sweep
    is then done with the order. Call while holding the order's row lock. Raises nothing."""
    orders_mark_auto_late_refunded([order.pk], now=now)
    order.auto_late_refunded_at = order.auto_late_refunded_at or now


def orders_mark_auto_late_refunded(order_ids: list[int], *, now: dt.datetime) -> None:
    """`order_mark_auto_late_refunded` for a batch, in one statement."""
    Order.objects.filter(pk__in=order_ids, auto_late_refunded_at__isnull=True).update(
        auto_late_refunded_at=now, late_sweep_done_at=now
    )


def _sweep_done(order_ids: list[int], *, now: dt.datetime) -> None:
    """The sweep is done with these orders for good: they leave the partial index (D-8)."""
    if not order_ids:
        return
    Order.objects.filter(pk__in=order_ids, late_sweep_done_at__isnull=True).update(
        late_sweep_done_at=now
    )
