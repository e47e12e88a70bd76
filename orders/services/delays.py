"""The delay cause of a delivery (L-3.3): who said why an order is late."""

from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from core.roles import User
from orders.events import actor_role, order_event_record, stepping_in
from orders.lock_objects import order_for_update
from orders.models import Order, OrderEvent, is_restaurant_member, is_support
from orders.policy import delay_cause_error


@transaction.atomic
def order_set_delay_cause(*, order_id: int, actor: User, delay_cause: str) -> Order:
    """Record why an open delivery order is late (L-3.3): the restaurant's partner, or support
    for it (K-OV). The buyer sees it on the order; a weather or traffic cause changes the
    buyer's late-delivery claims (L-3.3, L-6.1). Writes an order event naming who and the cause;
    setting the cause it already has changes nothing and writes no event. Takes the order's row
    lock.

    Errors, changing nothing: `invalid_delay_cause` (400) for a cause not in
    `Order.DelayCause`; `not_found` (404) for an order that does not exist or that the actor
    is neither a partner of nor support for; `not_a_delivery` (409) for pickup and dine-in;
    `order_not_open` (409) once the order has ended (delivered, missing, cancelled...).
    """
    order = order_for_update(order_id)
    if not (is_restaurant_member(order.restaurant_id, actor) or is_support(actor)):
        raise DomainError("not_found", f"There is no order {order_id}.", kind="not_found")
    code, kind, detail = delay_cause_error(
        fulfillment=order.fulfillment, status=order.status, delay_cause=delay_cause
    )
    if code:
        raise DomainError(code, detail, clauses=("L-3.3",), kind=kind)
    if order.delay_cause == delay_cause:
        return order
    previous = order.get_delay_cause_display()
    order.delay_cause = delay_cause
    order.save(update_fields=["delay_cause"])
    role = actor_role(order, actor)
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.NOTE,
        name="set_delay_cause",
        actor=actor,
        role=role,
        message=(
            f"Delay cause: {order.get_delay_cause_display().lower()} (was {previous.lower()})."
        ),
        reason=delay_cause,
        clauses=("L-3.3", *stepping_in(role)),
        at=timezone.now(),
    )
    return order
