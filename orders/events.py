"""The order's timeline: every step written with who, when, from, to, why and the clauses."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from orders.models import Order, OrderEvent, is_restaurant_member


def order_event_record(
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
    """Add a line to the order's timeline: who did what, when, why, under which clauses."""
    return OrderEvent.objects.create(
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
