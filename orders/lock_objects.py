"""Row locks for orders, always taken first: order, then request, then refund (D-3)."""

from core.errors import DomainError
from orders.models import Order, Restaurant


def order_for_update(order_id: int, *, buyer=None) -> Order:
    """Lock an order row (with its restaurant loaded) for a decision.

    Call inside a transaction; the order is always the first row locked. With `buyer`, another
    buyer's order is not found. Raises DomainError `not_found` (404).
    """
    order = (
        Order.objects.select_for_update(of=("self",))
        .select_related("restaurant")
        .filter(pk=order_id)
        .first()
    )
    if order is None or (buyer is not None and order.buyer_id != buyer.pk):
        raise DomainError("not_found", f"There is no order {order_id}.", kind="not_found")
    return order


def restaurant_for_update(restaurant_id: int) -> Restaurant | None:
    """Lock a restaurant row (its terms); None if there is none. Call inside a transaction."""
    return Restaurant.objects.select_for_update().filter(pk=restaurant_id).first()


def order_for_update_skip_locked(order_id: int) -> Order | None:
    """Lock an order row unless another transaction holds it: None then (or if there is none),
    so a sweep moves on to the next order instead of waiting (D-8). Call inside a transaction."""
    return (
        Order.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("restaurant", "policy_version")
        .filter(pk=order_id)
        .first()
    )
