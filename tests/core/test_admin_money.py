"""Money in admin (D-9): every money field admin shows read-only has two decimals and the
currency (`core.admin.MoneyDisplayMixin`); money a person may edit stays a form input."""

import re
from decimal import Decimal as D

import pytest

from core.admin import money
from tests.conftest import place_order
from tests.factories import DiscountCodeFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def readonly_value(html: str, name: str) -> str:
    """The shown value of the read-only field `name` on a change page."""
    match = re.search(
        rf'class="[^"]*field-{name}\b.*?<div class="readonly">(.*?)</div>', html, re.S
    )
    assert match, f"no read-only field {name}"
    return match.group(1).strip()


def test_money_helper_writes_two_decimals_and_the_currency():
    assert (money(D("47.76")), money(D("1234.5")), money(None)) == (
        "47.76 USD",
        "1,234.50 USD",
        "-",
    )


def test_an_orders_money_is_shown_with_its_currency_and_cannot_be_edited(
    admin_client, buyer, restaurant, menu
):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2})

    html = admin_client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    assert readonly_value(html, "subtotal_money") == "25.00 USD"
    assert readonly_value(html, "amount_paid_money") == "27.99 USD"  # a computed amount too
    assert readonly_value(html, "discount_amount_money") == "0.00 USD"
    assert 'name="subtotal"' not in html
    assert 'name="amount_charged"' not in html
    assert "12.50 USD" in html  # the line's unit price, in the inline


def test_the_order_list_shows_money_with_its_currency(admin_client, buyer, restaurant, menu):
    place_order(buyer, restaurant, {menu["Margherita"]: 1})

    html = admin_client.get("/admin/orders/order/").content.decode()

    assert re.search(r'<td class="field-total_money">15.49 USD</td>', html)


def test_money_a_person_edits_stays_an_input(admin_client, restaurant, menu):
    item = menu["Margherita"]
    code = DiscountCodeFactory(code="WELCOME5", amount_off=D("5.00"))

    item_page = admin_client.get(f"/admin/orders/menuitem/{item.pk}/change/").content.decode()
    code_page = admin_client.get(f"/admin/credits/discountcode/{code.pk}/change/").content.decode()
    add_page = admin_client.get("/admin/credits/discountcode/add/").content.decode()

    assert 'name="price" value="12.50"' in item_page
    assert "field-price_money" not in item_page
    assert 'name="amount_off"' in code_page
    assert 'name="amount_off"' in add_page
    assert "12.50 USD" in admin_client.get("/admin/orders/menuitem/").content.decode()
