"""Row locks for orders, always taken first: order, then request, then refund (D-3)."""

from core.errors import DomainError
from orders.models import MenuItem, Order, PolicyVersion, Restaurant


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


def restaurant_for_update_skip_locked(restaurant_id: int) -> Restaurant | None:
    """Lock a restaurant row for a sweep (weekly payouts, L-9), skipping it (None) while
    another transaction holds it. Call inside a transaction."""
    return Restaurant.objects.select_for_update(skip_locked=True).filter(pk=restaurant_id).first()


def order_for_update_skip_locked(order_id: int) -> Order | None:
    """Lock an order row for a sweep, skipping it (None) while another transaction holds it, so
    two sweeps at once never wait on each other nor act on one order twice. Call inside a
    transaction; re-check the order's state under the lock."""
    return (
        Order.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("restaurant", "policy_version")
        .filter(pk=order_id)
        .first()
    )


def orders_for_update_skip_locked(order_ids) -> list[Order]:
    """`order_for_update_skip_locked` for a batch (D-8): the orders another transaction holds
    are left out. Two statements however many: the rows (with the buyer), then their few policy
    versions, shared between the orders that pin each. Call inside a transaction."""
    orders = list(
        Order.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("buyer")
        .filter(pk__in=order_ids)
        .order_by("pk")
    )
    versions = PolicyVersion.objects.in_bulk({order.policy_version_id for order in orders})
    for order in orders:
        order.policy_version = versions[order.policy_version_id]
    return orders


def menu_item_for_update(menu_item_id: int) -> MenuItem | None:
    """Lock a menu item row (its name, price, allergens, availability); None if there is none.
    Call inside a transaction."""
    return MenuItem.objects.select_for_update().filter(pk=menu_item_id).first()
