"""The order's lifecycle (D-5): the restaurant's steps from acceptance to fulfilment."""

from django.db import transaction
from django.utils import timezone
from django_fsm import has_transition_perm

from core.errors import DomainError, InvalidInput
from core.roles import User
from orders.events import actor_role, order_step, stepping_in
from orders.lock_objects import order_for_update
from orders.models import SELLER_ACTIONS, Order
from refunds.services.ledger import restaurant_record_sale


@transaction.atomic
def order_advance(*, order_id: int, action: str, actor: User) -> Order:
    """Move an order one step along its lifecycle (D-5): its restaurant's partners do, and
    support may step in for them (K-OV). Acceptance pins the restaurant's cancellation window
    and fee to the order (K-B1, L-2.1); a completed order books the restaurant's sale (L-9).
    Takes the order's row lock.

    Errors, changing nothing: `unknown_action` (400) for an action not in SELLER_ACTIONS;
    `not_found` (404) for an order that does not exist; `transition_not_allowed` (409) for an
    action the state machine does not allow from the order's state or the actor may not take.
    """
    if action not in SELLER_ACTIONS:
        raise InvalidInput("unknown_action", f"Unknown order action {action!r}.")
    order = order_for_update(order_id)
    transition_method = getattr(order, action)
    if not has_transition_perm(transition_method, actor):
        raise DomainError(
            "transition_not_allowed",
            f"Cannot {action.replace('_', ' ')} an order that is {order.get_status_display()}.",
        )
    now = timezone.now()
    role = actor_role(order, actor)
    stepped_in = " Support stepped in for the restaurant." if stepping_in(role) else ""
    order_step(
        order,
        transition_method,
        actor=actor,
        role=role,
        message=f"{SELLER_ACTIONS[action]}{stepped_in}",
        clauses=stepping_in(role),
        at=now,
        **_pinned_at_acceptance(order, action),
    )
    if order.status in Order.COMPLETED_STATUSES:
        restaurant_record_sale(order)
    return order


def _pinned_at_acceptance(order: Order, action: str) -> dict:
    """K-B1, L-2.1: the cancellation window and fee the order summary shows at acceptance stay
    the order's, whatever the restaurant sets later."""
    if action != "accept":
        return {}
    return {
        "accepted_cancellation_window_minutes": order.restaurant.cancellation_window_minutes,
        "accepted_cancellation_fee_percent": order.restaurant.cancellation_fee_percent,
    }
