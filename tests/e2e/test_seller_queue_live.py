"""JOURNEYS partner 1 in Chromium, live: the partner signs in and lands on the queue; a new order
shows up on its own (htmx polls the fragment every 10 s), and its Accept button swaps the card
in place, without reloading the page. Nothing is fetched from outside the server."""

import re

import pytest
from playwright.sync_api import expect

from orders.models import Order
from tests.conftest import place_order, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_queue_shows_a_new_order_by_itself_and_accepts_it_in_place(
    live_server, browser, sign_in, buyer, partner, restaurant
):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    outside = []

    def only_the_server(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    sign_in(page, partner)
    expect(page).to_have_url(f"{live_server.url}/seller/")
    expect(page.locator("#queue-incoming")).to_contain_text("0")
    # A mark that survives only as long as the page is not reloaded.
    page.evaluate("window.sameDocument = true")

    order = place_order(buyer, restaurant)

    card = page.locator(f"#order-{order.pk}")
    expect(card).to_be_visible(timeout=20_000)
    expect(card).to_have_class(re.compile("alert-new"))
    expect(page.locator("#queue-incoming")).to_contain_text("1")

    card.get_by_role("button", name="Accept").click()

    expect(card.get_by_role("button", name="Start preparing")).to_be_visible()
    expect(card).to_contain_text(f"Order #{order.pk}: Accepted by the restaurant.")
    assert wait_for(lambda: Order.objects.get(pk=order.pk).status == "accepted", 10)
    assert page.evaluate("window.sameDocument") is True
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert outside == []
    context.close()
