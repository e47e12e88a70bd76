"""A restaurant's menu as its partners keep it: names, prices and allergens, and dishes sold out
for the day. Placed orders are never touched: each of their lines copied the name and price at
placement (OrderItem), so an edit applies to new orders only."""

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from core.display import money_text
from core.errors import DomainError, InvalidInput
from core.money import to_cents
from core.roles import User
from orders.lock_objects import menu_item_for_update
from orders.models import MenuItem, is_restaurant_member

MAX_PRICE = Decimal("9999.99")
MAX_NAME_LENGTH = MenuItem._meta.get_field("name").max_length
MAX_ALLERGENS = 20
MAX_ALLERGEN_LENGTH = 40


def menu_item_edit_errors(*, name: str, price, allergens: list[str]) -> dict[str, str]:
    """What is wrong with a menu item's new name, price and allergens, by field ({} if nothing).

    `price` must be a Decimal above zero with at most two decimals (the currency's cents), at
    most MAX_PRICE; `name` 1 to 120 characters; `allergens` at most MAX_ALLERGENS names of at
    most MAX_ALLERGEN_LENGTH characters each."""
    errors = {}
    if not name.strip():
        errors["name"] = "Give the dish a name."
    elif len(name.strip()) > MAX_NAME_LENGTH:
        errors["name"] = f"A dish name has at most {MAX_NAME_LENGTH} characters."
    price_error = _price_error(price)
    if price_error:
        errors["price"] = price_error
    if len(allergens) > MAX_ALLERGENS:
        errors["allergens"] = f"List at most {MAX_ALLERGENS} allergens."
    elif any(len(allergen) > MAX_ALLERGEN_LENGTH for allergen in allergens):
        errors["allergens"] = f"An allergen has at most {MAX_ALLERGEN_LENGTH} characters."
    return errors


def _price_error(price) -> str:
    try:
        price = Decimal(price)
    except (InvalidOperation, TypeError, ValueError):
        return "Enter a price such as 12.50."
    if not price.is_finite():
        return "Enter a price such as 12.50."
    if price <= 0:
        return f"A price must be more than {money_text(0)}."
    if price != to_cents(price):
        return "A price has at most two decimals (cents), such as 12.50."
    if price > MAX_PRICE:
        return f"A price is at most {money_text(MAX_PRICE)}."
    return ""


def allergens_normalised(allergens: list[str]) -> list[str]:
    """Allergen names trimmed, lower-cased, without blanks or repeats, in the order given."""
    seen: list[str] = []
    for allergen in allergens:
        cleaned = " ".join(str(allergen).split()).lower()
        if cleaned and cleaned not in seen:
            seen.append(cleaned)
    return seen


@transaction.atomic
def menu_item_update(
    *, menu_item_id: int, actor: User, name: str, price: Decimal, allergens: list[str]
) -> MenuItem:
    """A partner renames a dish, changes its price (Decimal, the deployment's currency) or its
    allergens. New orders use the new values; placed orders keep the name and price their lines
    copied. Takes the menu item's row lock.

    Errors: `not_found` (404) for an item that does not exist or whose restaurant the actor is
    not a member of; `invalid_menu_item` (400, with `errors` by field: `name`, `price`,
    `allergens`)."""
    item = _member_item_for_update(menu_item_id, actor)
    allergens = allergens_normalised(allergens)
    errors = menu_item_edit_errors(name=name, price=price, allergens=allergens)
    if errors:
        raise InvalidInput("invalid_menu_item", " ".join(errors.values()), extra={"errors": errors})
    item.name = name.strip()
    item.price = to_cents(price)
    item.allergens = allergens
    item.save(update_fields=["name", "price", "allergens"])
    return item


@transaction.atomic
def menu_item_set_sold_out_today(
    *, menu_item_id: int, actor: User, sold_out: bool, now: dt.datetime | None = None
) -> MenuItem:
    """A partner marks a dish sold out for today (`sold_out=True`) or back on sale: buyers
    cannot order it until the restaurants' local day (TIME_ZONE) ends, then it is back on its
    own. Orders already placed are not affected. Takes the menu item's row lock.

    Errors: `not_found` (404) as for `menu_item_update`."""
    item = _member_item_for_update(menu_item_id, actor)
    item.unavailable_on = timezone.localdate(now or timezone.now()) if sold_out else None
    item.save(update_fields=["unavailable_on"])
    return item


def _member_item_for_update(menu_item_id: int, actor: User) -> MenuItem:
    item = menu_item_for_update(menu_item_id)
    if item is None or not is_restaurant_member(item.restaurant_id, actor):
        raise DomainError(
            "not_found", f"There is no dish {menu_item_id} on your menus.", kind="not_found"
        )
    return item
