"""The order's timeline: every step written with who, when, from, to, why and the clauses."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from core.fsm import apply_transition
from orders.models import Order, OrderEvent, is_restaurant_member


def order_event(
    *,
    order: Order,
    kind: str,
    actor,
    role: str,
    message: str,
    name: str = "",
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    clauses=(),
    amount: Decimal | None = None,
    at: dt.datetime | None = None,
) -> OrderEvent:
    """A line for the order's timeline, not yet saved: `order_event_record` saves one, a batch
    saves many with `OrderEvent.objects.bulk_create` (the late sweep, D-8)."""
    return OrderEvent(
        order=order,
        kind=kind,
        name=name,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        actor_role=role,
        message=message,
        reason=reason,
        clauses=list(clauses),
        amount=amount,
        created_at=at or timezone.now(),
    )


def order_event_record(**fields) -> OrderEvent:
    """Add a line to the order's timeline: who did what, when, why, under which clauses (the
    fields of `order_event`)."""
    event = order_event(**fields)
    event.save(force_insert=True)
    return event


def order_step(
    order: Order,
    transition,
    *,
    actor,
    role: str,
    message: str,
    clauses=(),
    at: dt.datetime,
    reason: str = "",
    amount: Decimal | None = None,
    **changes,
) -> OrderEvent:
    """Move an order along its state machine and put the step on its timeline (named after the
    transition, from and to its statuses). The caller holds the order's row lock; `changes`
    are saved with the new status."""
    from_status = order.status
    apply_transition(order, transition, at=at, **changes)
    return order_event_record(
        order=order,
        kind=OrderEvent.Kind.TRANSITION,
        name=transition.__name__,
        from_status=from_status,
        to_status=order.status,
        actor=actor,
        role=role,
        message=message,
        reason=reason,
        clauses=clauses,
        amount=amount,
        at=at,
    )


def actor_role(order: Order, actor) -> str:
    """How a restaurant-side step is attributed: the restaurant's partner, or support acting
    for it (K-OV)."""
    if is_restaurant_member(order.restaurant_id, actor):
        return OrderEvent.Role.RESTAURANT
    return OrderEvent.Role.SUPPORT


def stepping_in(role: str) -> tuple[str, ...]:
    """K-OV is cited when support acted in the restaurant's place."""
    return ("K-OV",) if role == OrderEvent.Role.SUPPORT else ()


def by_whom(role: str) -> str:
    """The words the timeline adds when support acted for the restaurant."""
    return " by support on the restaurant's behalf (K-OV)" if stepping_in(role) else ""
