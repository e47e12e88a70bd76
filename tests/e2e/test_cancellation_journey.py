"""JOURNEYS buyer 3 and partner 3 in Chromium: on an accepted order the buyer sees the fee, the
refund and the clause, watches the window count down, asks to cancel, the partner approves in
the seller portal, and the buyer finds the refund on the timeline and a notification."""

import re
from decimal import Decimal as D

import pytest
from playwright.sync_api import expect

from orders.models import Order
from refunds.models import Refund
from tests.conftest import advance, place_order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_buyer_asks_to_cancel_partner_approves_buyer_sees_the_refund(
    live_server, browser, sign_in, buyer, partner, restaurant, menu
):
    # 2 x 12.50 + 2.99 delivery = 27.99 to the card; 15 % fee = 4.20; 23.79 back.
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2})
    advance(order, "accept")

    diner = browser.new_context().new_page()
    sign_in(diner, buyer)
    diner.goto(f"{live_server.url}{order.get_absolute_url()}")
    panel = diner.locator("#cancellation")
    expect(panel).to_contain_text(
        "Cancelling now costs 15 % = 4.20 USD; you get 23.79 USD back. Why? K-B1, L-2.1"
    )
    expect(panel.get_by_role("link", name="K-B1")).to_have_attribute("href", "/policy/#K-B1")
    clock = panel.locator("[data-countdown-to]")
    expect(clock).to_have_text(re.compile(r"^[1-5] min \d\d s$"))
    shown = clock.inner_text()
    expect(clock).not_to_have_text(shown, timeout=3000)  # the window counts down live

    panel.get_by_role("link", name="Ask to cancel").click()
    expect(diner).to_have_url(re.compile(rf"/orders/{order.pk}/cancel/$"))
    expect(diner.locator("main")).to_contain_text("Cancelling now costs 15 % = 4.20 USD")
    diner.get_by_role("button", name="Ask to cancel").click()

    expect(diner).to_have_url(re.compile(rf"/orders/{order.pk}/$"))
    expect(diner.locator(".messages")).to_contain_text(
        "Waiting for the restaurant: if it agrees, you get 23.79 USD back (4.20 USD fee)."
    )
    expect(panel).to_contain_text("Waiting for the restaurant.")
    expect(diner.locator("h1")).to_contain_text(re.compile("Cancellation requested", re.I))

    seller = browser.new_context().new_page()
    sign_in(seller, partner)
    seller.goto(f"{live_server.url}/seller/cancellation-requests/")
    request = seller.locator(f"#request-{order.pk}")
    expect(request).to_contain_text("4.20 USD")
    request.get_by_role("button", name="Approve").click()
    expect(seller.locator(f"#request-{order.pk}")).to_have_count(0)

    diner.reload()
    expect(diner.locator("h1")).to_contain_text("Cancelled")
    timeline = diner.locator(".timeline")
    expect(timeline).to_contain_text("Cancellation approved; a fee of 4.20 USD applies.")
    expect(timeline).to_contain_text(
        re.compile(
            r"Refund of 23\.79 USD sent to your card; expected at your bank "
            r"between \w{3} \d{1,2} \w{3}"
        )
    )
    expect(diner.locator("#cancellation")).to_contain_text("Cancelled on")
    notifications = diner.get_by_role("link", name="Notifications (2)")  # cancelled; refund sent
    notifications.click()
    unread = diner.locator(".notification.unread")
    expect(unread.filter(has_text=f"Order #{order.pk} cancelled")).to_have_count(1)
    expect(unread.filter(has_text=f"Order #{order.pk}: refund sent")).to_have_count(1)

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert list(Refund.objects.filter(order=order).values_list("destination", "amount")) == [
        ("card", D("23.79"))
    ]
