"""The automatic refund of a delivery over 2 hours late (L-6.1, L-3.1, D-8): no request, no
review, once per order. The sweep (`refunds.tasks.auto_refund_late_orders`) and a buyer's late
claim agree: both lock the order, re-check what is still refundable and mark the order, so the
money moves once whichever comes first."""

import datetime as dt

from django.db import transaction

from core.services import notify
from orders.events import order_event_record
from orders.lock_objects import order_for_update_skip_locked
from orders.models import Order, OrderEvent
from refunds import policy
from refunds.selectors import late_order_facts, refund_terms
from refunds.services.completion import refund_message
from refunds.services.execution import refund_order

BUSY = "busy"  # another transaction holds the order: the next tick looks again
HELD = "held"  # force majeure: listed for agents (L-10)
REFUNDED = "refunded"


def late_auto_refund_key(order_id: int) -> str:
    """The refund service's idempotency key of an order's one automatic late refund (D-7)."""
    return f"late-auto:{order_id}"


@transaction.atomic
def late_order_auto_refund(*, order_id: int, now: dt.datetime) -> str:
    """Refund one late delivery in full if the policy says so now (L-6.1, L-3.1): takes the
    order's row lock with SKIP LOCKED (returns "busy" when another transaction holds it),
    re-checks the order against its pinned version and, when due, refunds what is still
    refundable back where it came from under the key `late-auto:<order id>` and tells the buyer
    why. Returns "refunded", "held" (force majeure, L-10: agents decide) or the decision's skip
    code ("not_late_enough", "already_refunded", "weather_blocks_automatic",
    "nothing_to_refund", "not_swept"); a final skip (a delivered order, or one refunded) marks
    the order `late_sweep_done_at` so the sweep no longer reads it. Raises the refund service's
    DomainErrors (e.g. `no_card_payment`), rolling this order back."""
    order = order_for_update_skip_locked(order_id)
    if order is None:
        return BUSY
    decision = policy.late_auto_refund_decision(
        late_order_facts(order), refund_terms(order.policy_version), now=now
    )
    if decision.action == policy.LateAction.HOLD:
        return HELD
    if decision.action == policy.LateAction.SKIP:
        if decision.final:
            _sweep_done(order, now=now)
        return decision.code
    _refund(order, decision, now=now)
    return REFUNDED


def _refund(order: Order, decision: policy.LateAutoDecision, *, now: dt.datetime) -> None:
    order_mark_auto_late_refunded(order, now=now)
    order_event_record(
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
    refunds = refund_order(
        order_id=order.pk,
        amount=decision.amount,
        method="original",
        idempotency_key=late_auto_refund_key(order.pk),
        actor=None,
        role=OrderEvent.Role.POLICY,
        reason=f"Order #{order.pk}: {decision.minutes_late} minutes late",
        clauses=decision.clauses,
    )
    notify(
        user=order.buyer,
        title=f"Order #{order.pk}: refunded in full, {decision.minutes_late} minutes late",
        body=" ".join([decision.detail, *(refund_message(r) for r in refunds)]),
        order=order,
    )


def order_mark_auto_late_refunded(order: Order, *, now: dt.datetime) -> None:
    """Record that the order's one automatic late refund is made (L-6.1), by the sweep or by an
    automatic late claim, so neither makes another; the field is set once (a guarded update)
    and only on a delivery (check constraint `order_auto_late_refund_delivery_only`). Call
    while holding the order's row lock. Raises nothing."""
    Order.objects.filter(pk=order.pk, auto_late_refunded_at__isnull=True).update(
        auto_late_refunded_at=now
    )
    order.auto_late_refunded_at = order.auto_late_refunded_at or now
    _sweep_done(order, now=now)


def _sweep_done(order: Order, *, now: dt.datetime) -> None:
    """The sweep is done with the order for good: it leaves the partial index (D-8)."""
    Order.objects.filter(pk=order.pk, late_sweep_done_at__isnull=True).update(
        late_sweep_done_at=now
    )
