"""JOURNEYS buyer 1 and partner 1 in Chromium: a buyer orders with a discount code and credit,
the restaurant takes the order to delivered in the seller portal, the buyer sees every step."""

import re
from decimal import Decimal as D

import pytest
from playwright.sync_api import expect

from orders.models import Order
from tests.conftest import give_credit
from tests.factories import DiscountCodeFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SELLER_STEPS = ["Accept", "Start preparing", "Ready", "Hand to courier", "Delivered"]


def test_buyer_orders_partner_delivers_buyer_sees_the_timeline(
    live_server, browser, sign_in, buyer, partner, restaurant
):
    DiscountCodeFactory(code="WELCOME5", amount_off=D("5.00"))
    give_credit(buyer, "4.00", kind="account")

    diner = browser.new_context().new_page()
    sign_in(diner, buyer)
    diner.get_by_role("link", name="Restaurants").click()
    diner.get_by_role("link", name="Trattoria Roma").click()
    diner.get_by_label("Quantity of Margherita").fill("2")
    diner.locator("li", has_text="Margherita").get_by_role("button", name="Add to cart").click()
    diner.goto(f"{live_server.url}/cart/")
    diner.get_by_label("Delivery address").fill("7 Harbour Road")
    diner.get_by_label("Discount code").fill("welcome5")
    diner.get_by_label(re.compile("Use my credit")).check()
    diner.get_by_role("button", name="Place order").click()

    order = Order.objects.get(buyer=buyer)
    expect(diner).to_have_url(re.compile(rf"/orders/{order.pk}/$"))
    # 25.00 + 2.99 delivery - 5.00 code = 22.99; 4.00 account credit; 18.99 to the card.
    assert (order.total, order.account_credit_applied, order.amount_charged) == (
        D("22.99"),
        D("4.00"),
        D("18.99"),
    )
    expect(diner.get_by_text("18.99 USD").first).to_be_visible()

    seller = browser.new_context().new_page()
    sign_in(seller, partner)
    seller.goto(f"{live_server.url}/seller/")
    card = seller.locator(f"#order-{order.pk}")
    expect(card).to_have_class(re.compile("alert-new"))
    for step in SELLER_STEPS:
        card.get_by_role("button", name=step).click()
        seller.wait_for_load_state()
    expect(seller.locator(f"#order-{order.pk}").get_by_role("button")).to_have_count(0)

    diner.reload()
    timeline = diner.locator(".timeline")
    for message in [
        "Order placed",
        "charged to the card",
        "Accepted by the restaurant",
        "started preparing",
        "The order is ready",
        "Handed to the courier",
        "Delivered",
    ]:
        expect(timeline).to_contain_text(message)
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert order.events.count() == 7
