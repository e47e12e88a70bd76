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
    """Lock an order row for a sweep, skipping it (None) while another transaction holds it, so
    two sweeps at once never wait on each other nor act on one order twice. Call inside a
    transaction; re-check the order's state under the lock."""
    return next(iter(orders_for_update_skip_locked([order_id])), None)


def orders_for_update_skip_locked(order_ids) -> list[Order]:
    """`order_for_update_skip_locked` for a batch, in one statement (with the restaurant, the
    buyer and the pinned policy version loaded): the orders another transaction holds are left
    out. Call inside a transaction."""
    return list(
        Order.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("restaurant", "policy_version", "buyer")
        .filter(pk__in=order_ids)
        .order_by("pk")
    )
