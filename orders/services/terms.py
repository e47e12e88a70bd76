"""A restaurant's own cancellation terms (K-B1, L-2.1), inside the policy version's bounds."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core.errors import DomainError, InvalidInput
from core.roles import User
from orders import policy
from orders.lock_objects import restaurant_for_update
from orders.models import Restaurant, is_restaurant_member
from orders.selectors import restaurant_terms_bounds


@transaction.atomic
def restaurant_update_terms(
    *, restaurant_id: int, actor: User, window_minutes: int, fee_percent: Decimal
) -> Restaurant:
    """A partner sets the restaurant's cancellation window (minutes, K-B1) and fee (percent of
    what was paid, L-2.1), inside the bounds of the policy version in force. Orders already
    accepted keep the terms pinned at acceptance, and those asked to cancel the fee they were
    quoted. Takes the restaurant's row lock.

    Errors: `not_found` (404) for a restaurant that does not exist or the actor is not a member
    of; `terms_out_of_bounds` (400, with `errors` by field)."""
    restaurant = restaurant_for_update(restaurant_id)
    if restaurant is None or not is_restaurant_member(restaurant_id, actor):
        raise DomainError("not_found", f"There is no restaurant {restaurant_id}.", kind="not_found")
    errors = policy.restaurant_terms_errors(
        window_minutes=window_minutes,
        fee_percent=fee_percent,
        bounds=restaurant_terms_bounds(timezone.now()),
    )
    if errors:
        raise InvalidInput(
            "terms_out_of_bounds",
            " ".join(errors.values()),
            clauses=["K-B1", "L-2.1"],
            extra={"errors": errors},
        )
    restaurant.cancellation_window_minutes = window_minutes
    restaurant.cancellation_fee_percent = fee_percent
    restaurant.save(update_fields=["cancellation_window_minutes", "cancellation_fee_percent"])
    return restaurant
