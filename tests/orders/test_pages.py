"""Buyer pages: policy, restaurants and menus, cart and checkout, my orders, order detail."""

import datetime as dt
import re
import uuid
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.urls import reverse

from credits.models import CreditGrant, CreditTransaction, DiscountCode
from orders.models import Order, Payment, PolicyVersion
from refunds.services.execution import refund_order
from tests.conftest import (
    REDIS_DOWN,
    advance,
    give_credit,
    place_order,
    processor_charges,
    refunds_processed,
)
from tests.factories import DiscountCodeFactory, MenuItemFactory, RestaurantFactory

pytestmark = pytest.mark.django_db

NOON = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)  # a Friday
NIGHT = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)
MINUS = "\N{MINUS SIGN}"


@pytest.fixture
def ada(client, buyer):
    client.force_login(buyer)
    return client


def text(response) -> str:
    """The page's text with tags removed and whitespace collapsed, for reading assertions."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).strip()


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def add_to_cart(client, item, quantity=1, **extra):
    """POST an "Add to cart" form and follow to the menu, which shows (and uses up) the
    messages."""
    return client.post(
        reverse("orders:cart_add"),
        {"menu_item": item.pk, "quantity": quantity} | extra,
        follow=True,
    )


def checkout(client, lines, action="place", **fields):
    """POST the cart page; `lines` maps menu items to quantities."""
    data = {
        "token": fields.pop("token", None) or uuid.uuid4().hex,
        "fulfillment": "delivery",
        "delivery_address": "7 Harbour Road",
        "discount_code": "",
        "action": action,
    } | fields
    data |= {f"qty_{item.pk}": quantity for item, quantity in lines.items()}
    if not data.get("use_credit"):
        data.pop("use_credit", None)
    return client.post(reverse("orders:cart"), data)


def assert_nothing_placed():
    assert Order.objects.count() == 0
    assert Payment.objects.count() == 0
    assert [c for c in processor_charges() if c.status == "succeeded"] == []
    assert not CreditTransaction.objects.filter(kind="spend").exists()


# -- policy -------------------------------------------------------------------------------


def test_policy_page_shows_the_version_in_force_and_the_history(client):
    PolicyVersion.objects.create(
        status="published",  # K-UP: only a published version applies
        label="2",
        effective_from=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
        text="Refunds within 48 hours.\nCredits expire after 30 days.",
        summary_of_changes="Clearer credit expiry.",
    )
    PolicyVersion.objects.create(
        status="published",  # K-UP: only a published version applies
        label="3",
        effective_from=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
        text="Future text.",
        summary_of_changes="Longer window.",
    )

    response = client.get(reverse("policy"))

    page = text(response)
    assert "Version 2 · Last updated Sun 1 Jun 2025 in force" in page
    # A plain text (no known title) is its paragraphs, with no contents and no clause ids.
    assert "<p>Refunds within 48 hours.</p><p>Credits expire after 30 days.</p>" in (
        response.content.decode()
    )
    assert "Contents" not in page
    assert "Future text." not in page
    assert (
        "3 upcoming Thu 1 Jan 2099 Longer window. "
        "2 in force Sun 1 Jun 2025 Clearer credit expiry. "
        "1 Wed 20 Nov 2024 First version"
    ) in page


def test_policy_page_shows_both_texts_as_a_reference_with_an_anchor_per_clause(client):
    response = client.get(reverse("policy"))

    html = response.content.decode()
    page = text(response)
    assert "Version 1 · Last updated Wed 20 Nov 2024 in force" in page
    assert "<h2>Refund Policy</h2>" in html
    assert "<h2>Kajet&#x27;s Cancellation Policy</h2>" in html
    assert "This text last updated Wed 20 Nov 2024" in page
    assert "This text last updated Thu 12 Oct 2023" in page
    # The contents list every section and clause, linking to its anchor.
    assert '<a href="#L-2">L-2 · Order Cancellation</a>' in html
    assert '<a href="#L-2.1" title="Customer-Initiated Cancellation"' in html
    assert '<a href="#K-B1" title="Cancellation Window"' in html
    # Each clause is a section with its id, heading and text.
    assert re.search(r'<section id="L-2\.1"[^>]*>\s*<h4[^>]*>.*2\.1 Customer-Initiated', html)
    assert re.search(r'<section id="K-DR"[^>]*>\s*<h3[^>]*>.*Dispute Resolution</span></h3>', html)
    assert "L-2.1 2.1 Customer-Initiated Cancellation Before Restaurant Accepts Order " in page
    assert "<li>You may cancel your order free of charge</li>" in html
    assert "K-B1 1. Cancellation Window Buyers have the option to cancel" in page
    for clause in ("L-1", "L-3.3", "L-8.2", "L-11", "K-B3", "K-S2", "K-OV", "K-UP"):
        assert f'id="{clause}"' in html


def test_policy_page_shows_an_earlier_version_by_its_label(client):
    PolicyVersion.objects.create(
        status="published",
        label="2",
        effective_from=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
        text="Refunds within 48 hours.",
    )

    response = client.get(reverse("policy"), {"version": "1"})

    page = text(response)
    assert "Version 1 · Last updated Wed 20 Nov 2024 replaced" in page
    assert 'id="L-2.1"' in response.content.decode()
    assert "Refunds within 48 hours." not in page


def test_an_order_links_to_the_policy_version_it_pinned(ada, buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 1})

    page = ada.get(order.get_absolute_url()).content.decode()

    assert '<a href="/policy/?version=1">version 1</a> (in force when you ordered)' in page


@pytest.mark.parametrize("label", ["9", "draft"])
def test_policy_page_for_an_unknown_or_unpublished_version_is_a_404(client, label):
    PolicyVersion.objects.create(
        status="draft", label="draft", effective_from=dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    )
    assert client.get(reverse("policy"), {"version": label}).status_code == 404


# -- restaurants and menus ----------------------------------------------------------------


def test_restaurants_open_first_and_closed_ones_say_when_they_open(client, restaurant):
    RestaurantFactory(
        name="Aardvark Grill", slug="aardvark", opens_at=dt.time(18), closes_at=dt.time(23)
    )
    with time_machine.travel(NOON):
        response = client.get(reverse("orders:restaurants"))

    page = text(response)
    assert page.index("Trattoria Roma Open") < page.index("Aardvark Grill Closed")
    assert "Aardvark Grill Closed opens Fri 20 Nov 2026, 18:00" in page
    assert "Delivery 2.99 USD" in page


def test_menu_shows_prices_allergens_promotions_and_add_forms(ada, restaurant, menu):
    MenuItemFactory(
        restaurant=restaurant,
        name="Pesto Gnocchi",
        price=D("9.80"),
        is_promotional=True,
        allergens=["gluten", "nuts"],
    )

    response = ada.get(reverse("orders:restaurant", args=["roma"]))

    page = text(response)
    assert "Pesto Gnocchi Promotion" in page
    assert "Allergens: gluten, nuts 9.80 USD" in page
    assert "Margherita Allergens: none declared 12.50 USD" in page
    assert "Allergens: none declared" in page
    html = response.content.decode()
    assert html.count("Add to cart") == 4
    assert html.count('name="csrfmiddlewaretoken"') == 5  # four items and sign-out


def test_menu_asks_anonymous_visitors_to_sign_in(client, restaurant, menu):
    response = client.get(reverse("orders:restaurant", args=["roma"]))
    assert response.status_code == 200
    assert "Sign in to order" in response.content.decode()
    assert "Add to cart" not in response.content.decode()


def test_unknown_restaurant_is_a_404(client):
    assert client.get(reverse("orders:restaurant", args=["nowhere"])).status_code == 404


# -- the cart -----------------------------------------------------------------------------


def test_adding_to_the_cart_keeps_quantities_in_the_session(ada, restaurant, menu):
    add_to_cart(ada, menu["Margherita"], 2)
    response = add_to_cart(ada, menu["Margherita"], 1)
    add_to_cart(ada, menu["Tiramisu"], 1)

    assert response.redirect_chain == [(reverse("orders:restaurant", args=["roma"]), 302)]
    assert "Added 1 x Margherita to your cart." in text(response)
    assert ada.session["cart"] == {
        "restaurant_id": restaurant.pk,
        "lines": {str(menu["Margherita"].pk): 3, str(menu["Tiramisu"].pk): 1},
    }


@pytest.mark.parametrize(("case", "quantity"), [("zero", 0), ("over the limit", 51), ("text", "x")])
def test_adding_a_bad_quantity_is_refused(ada, restaurant, menu, case, quantity):
    response = add_to_cart(ada, menu["Margherita"], quantity)
    assert response.redirect_chain == [(reverse("orders:restaurant", args=["roma"]), 302)]
    assert "Quantity: " in text(response)
    assert "cart" not in ada.session


def test_adding_more_than_fifty_of_an_item_in_total_is_refused(ada, restaurant, menu):
    add_to_cart(ada, menu["Margherita"], 30)
    response = add_to_cart(ada, menu["Margherita"], 21)
    assert "At most 50 of Margherita per order." in text(response)
    assert ada.session["cart"]["lines"] == {str(menu["Margherita"].pk): 30}


def test_another_restaurants_item_is_refused_unless_the_buyer_replaces_the_cart(
    ada, restaurant, menu
):
    sushi = MenuItemFactory(restaurant=RestaurantFactory(name="Sushi Bar", slug="sushi"))
    add_to_cart(ada, menu["Margherita"], 2)

    response = add_to_cart(ada, sushi, 1)
    assert (
        "Your cart holds items from Trattoria Roma; a cart holds one restaurant&#x27;s items. "
        "Place or empty that order first, or choose “Replace my cart”."
    ) in text(response)
    assert ada.session["cart"]["restaurant_id"] == restaurant.pk

    menu_page = ada.get(reverse("orders:restaurant", args=["sushi"]))
    assert "Your cart holds items from Trattoria Roma" in text(menu_page)
    assert "Replace my cart" in text(menu_page)

    add_to_cart(ada, sushi, 1, replace="on")
    assert ada.session["cart"] == {
        "restaurant_id": sushi.restaurant_id,
        "lines": {str(sushi.pk): 1},
    }


def test_anonymous_add_to_cart_goes_to_sign_in_and_back_to_the_menu(client, restaurant, menu):
    response = add_to_cart(client, menu["Margherita"])
    assert response.redirect_chain == [(f"{reverse('login')}?next=/restaurants/roma/", 302)]


def test_cart_page_shows_lines_fees_and_the_credit_it_would_use(ada, buyer, restaurant, menu):
    give_credit(buyer, "3.00", kind="promo")
    give_credit(buyer, "4.00", kind="account")
    add_to_cart(ada, menu["Margherita"], 2)
    add_to_cart(ada, menu["Tiramisu"], 1)

    response = ada.get(reverse("orders:cart"))

    page = text(response)
    assert "Margherita 12.50 USD Quantity of Margherita 25.00 USD" in page
    assert "Tiramisu 6.00 USD Quantity of Tiramisu 6.00 USD" in page
    assert "Subtotal 31.00 USD Delivery fee 2.99 USD Total 33.99 USD" in page
    assert "Charged to your card 33.99 USD" in page
    assert (
        "You have 3.00 USD promotional credit and 4.00 USD account credit; "
        "on this order it would use 7.00 USD." in page
    )
    html = response.content.decode()
    assert 'value="delivery" required id="id_fulfillment_0" checked>' in html
    assert 'value="pickup" required id="id_fulfillment_1">' in html
    assert html.count('name="csrfmiddlewaretoken"') == 2  # checkout (with Remove), sign-out


def test_preview_recomputes_the_totals_and_places_nothing(ada, buyer, restaurant, menu):
    DiscountCodeFactory(code="WELCOME5", amount_off=D("5.00"))
    give_credit(buyer, "4.00", kind="account")
    add_to_cart(ada, menu["Margherita"], 1)
    add_to_cart(ada, menu["Tiramisu"], 1)

    response = checkout(
        ada,
        {menu["Margherita"]: 2, menu["Tiramisu"]: 1},
        action="preview",
        discount_code="welcome5",
        use_credit="on",
    )

    assert response.status_code == 200
    assert (
        f"Subtotal 31.00 USD Delivery fee 2.99 USD Discount (WELCOME5) {MINUS}5.00 USD "
        f"Total 28.99 USD Account credit {MINUS}4.00 USD Charged to your card 24.99 USD"
    ) in text(response)
    assert ada.session["cart"]["lines"] == {
        str(menu["Margherita"].pk): 2,
        str(menu["Tiramisu"].pk): 1,
    }
    assert_nothing_placed()
    assert DiscountCode.objects.get(code="WELCOME5").redeemed_on_order is None


def test_preview_with_a_used_code_says_why_next_to_the_code(ada, buyer, restaurant, menu):
    DiscountCodeFactory(code="ONCE", amount_off=D("5.00"))
    place_order(buyer, restaurant, {menu["Lemonade"]: 1}, discount_code="ONCE")
    add_to_cart(ada, menu["Margherita"], 1)

    response = checkout(ada, {menu["Margherita"]: 1}, action="preview", discount_code="ONCE")

    page = text(response)
    assert "The code ONCE has already been used. Why? L-7.2" in page
    assert "Subtotal 12.50 USD Delivery fee 2.99 USD Total 15.49 USD" in page


def test_removing_a_line(ada, restaurant, menu):
    add_to_cart(ada, menu["Margherita"], 1)
    add_to_cart(ada, menu["Tiramisu"], 1)
    response = ada.post(reverse("orders:cart"), {"remove": menu["Margherita"].pk})
    assert response["Location"] == reverse("orders:cart")
    assert ada.session["cart"]["lines"] == {str(menu["Tiramisu"].pk): 1}


def test_cart_without_credit_says_so(ada, restaurant, menu):
    add_to_cart(ada, menu["Margherita"], 1)
    assert "Use my credit You have no credit to use." in text(ada.get(reverse("orders:cart")))


def test_empty_cart(ada):
    response = ada.get(reverse("orders:cart"))
    assert "Your cart is empty." in text(response)


# -- placing the order --------------------------------------------------------------------


def test_placing_with_a_discount_code_creates_one_order_with_its_totals(
    ada, buyer, restaurant, menu
):
    DiscountCodeFactory(code="WELCOME5", amount_off=D("5.00"))
    add_to_cart(ada, menu["Margherita"], 2)
    add_to_cart(ada, menu["Tiramisu"], 1)

    response = checkout(ada, {menu["Margherita"]: 2, menu["Tiramisu"]: 1}, discount_code="welcome5")

    order = Order.objects.get()
    assert response["Location"] == f"/orders/{order.pk}/"
    assert (order.buyer, order.restaurant, order.fulfillment) == (buyer, restaurant, "delivery")
    assert order.delivery_address == "7 Harbour Road"
    assert (order.subtotal, order.delivery_fee, order.discount_amount, order.total) == (
        D("31.00"), D("2.99"), D("5.00"), D("28.99"),
    )  # fmt: skip
    assert (order.amount_charged, order.amount_paid) == (D("28.99"), D("28.99"))
    assert [(i.name, i.quantity) for i in order.items.all()] == [
        ("Margherita", 2),
        ("Tiramisu", 1),
    ]
    assert order.discount_code.code == "WELCOME5"
    assert Payment.objects.get().amount == D("28.99")
    assert messages_of(response) == [
        f"Order #{order.pk} placed at Trattoria Roma. 28.99 USD charged to your card."
    ]
    assert "cart" not in ada.session


def test_placing_with_credit_spends_it(ada, buyer, restaurant, menu):
    give_credit(buyer, "3.00", kind="promo")
    give_credit(buyer, "4.00", kind="account")
    add_to_cart(ada, menu["Margherita"], 1)

    checkout(ada, {menu["Margherita"]: 1}, use_credit="on", fulfillment="pickup")

    order = Order.objects.get()
    assert (order.fulfillment, order.delivery_address) == ("pickup", "")
    assert (order.subtotal, order.delivery_fee, order.total) == (D("12.50"), D("0.00"), D("12.50"))
    assert (order.promo_credit_applied, order.account_credit_applied) == (D("3.00"), D("4.00"))
    assert (order.amount_charged, order.amount_paid) == (D("5.50"), D("9.50"))
    assert CreditGrant.objects.filter(buyer=buyer, remaining=0).count() == 2


def test_placing_fully_paid_by_credit_says_nothing_was_charged(ada, buyer, restaurant, menu):
    give_credit(buyer, "50.00", kind="account")
    add_to_cart(ada, menu["Tiramisu"], 1)

    response = checkout(ada, {menu["Tiramisu"]: 1}, use_credit="on")

    order = Order.objects.get()
    assert (order.account_credit_applied, order.amount_charged) == (D("8.99"), D("0.00"))
    assert messages_of(response) == [
        f"Order #{order.pk} placed at Trattoria Roma. "
        "Paid in full with your credit; nothing charged to your card."
    ]


def test_a_double_submission_places_one_order(ada, restaurant, menu):
    token = uuid.uuid4().hex
    add_to_cart(ada, menu["Margherita"], 1)
    checkout(ada, {menu["Margherita"]: 1}, token=token)
    add_to_cart(ada, menu["Margherita"], 1)

    response = checkout(ada, {menu["Margherita"]: 1}, token=token)

    assert Order.objects.count() == 1
    assert response["Location"] == reverse("orders:list")
    assert messages_of(response) == ["This order was already submitted; here are your orders."]


def test_with_redis_down_checkout_places_once_and_pages_link_their_clauses(
    ada, restaurant, menu, settings
):
    settings.CACHES = REDIS_DOWN  # the double-submission token and the clause texts' cache
    token = uuid.uuid4().hex
    add_to_cart(ada, menu["Margherita"], 1)
    first = checkout(ada, {menu["Margherita"]: 1}, token=token)
    add_to_cart(ada, menu["Margherita"], 1)

    again = checkout(ada, {menu["Margherita"]: 1}, token=token)

    order = Order.objects.get()  # the checkout's key places it once
    assert first["Location"] == again["Location"] == order.get_absolute_url()
    assert len(processor_charges()) == 1
    page = ada.get(order.get_absolute_url())
    assert page.status_code == 200
    assert 'class="clause" href="/policy/#L-2.1" title="L-2.1 · ' in page.content.decode()


def test_a_closed_restaurant_refuses_the_order(ada, restaurant, menu):
    restaurant.opens_at, restaurant.closes_at = dt.time(11), dt.time(22)
    restaurant.save()
    add_to_cart(ada, menu["Margherita"], 1)

    with time_machine.travel(NIGHT):
        response = checkout(ada, {menu["Margherita"]: 1})

    assert response.status_code == 200
    assert messages_of(response) == [
        "Trattoria Roma is closed now; it opens on Fri 20 Nov 2026, 11:00."
    ]
    assert "Trattoria Roma is closed now; it opens on Fri 20 Nov 2026, 11:00." in text(response)
    assert_nothing_placed()
    assert ada.session["cart"]["lines"] == {str(menu["Margherita"].pk): 1}


def test_a_used_code_refuses_the_order(ada, buyer, other_buyer, restaurant, menu):
    DiscountCodeFactory(code="ONCE", amount_off=D("5.00"))
    first = place_order(other_buyer, restaurant, {menu["Lemonade"]: 1}, discount_code="ONCE")
    add_to_cart(ada, menu["Margherita"], 1)

    response = checkout(ada, {menu["Margherita"]: 1}, discount_code="ONCE")

    assert response.status_code == 200
    assert messages_of(response) == ["The code ONCE has already been used. Why? L-7.2"]
    assert list(Order.objects.all()) == [first]
    assert Payment.objects.count() == 1
    assert DiscountCode.objects.get(code="ONCE").redeemed_by == other_buyer


@pytest.mark.parametrize(("case", "quantity"), [("zero", 0), ("over the limit", 51)])
def test_a_bad_quantity_refuses_the_order(ada, restaurant, menu, case, quantity):
    add_to_cart(ada, menu["Margherita"], 1)

    response = checkout(ada, {menu["Margherita"]: quantity})

    assert response.status_code == 200
    bound = "greater than or equal to 1" if quantity == 0 else "less than or equal to 50"
    assert messages_of(response) == [f"Quantity of Margherita: Ensure this value is {bound}."]
    assert_nothing_placed()
    assert ada.session["cart"]["lines"] == {str(menu["Margherita"].pk): 1}


def test_a_declined_card_refuses_the_order(ada, buyer, settings):
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"charge": "decline"}
    declining = RestaurantFactory(name="Diner", slug="diner")
    item = MenuItemFactory(restaurant=declining, name="Soup", price=D("7.00"))
    add_to_cart(ada, item, 1)

    response = checkout(ada, {item: 1})

    assert messages_of(response) == ["Card declined."]
    assert_nothing_placed()


def test_a_delivery_needs_an_address(ada, restaurant, menu):
    add_to_cart(ada, menu["Margherita"], 1)
    response = checkout(ada, {menu["Margherita"]: 1}, delivery_address="  ")
    assert messages_of(response) == ["A delivery order needs a delivery address."]
    assert_nothing_placed()


def test_an_unoffered_fulfilment_is_refused_by_the_form(ada, restaurant, menu):
    restaurant.offers_dine_in = False
    restaurant.save()
    add_to_cart(ada, menu["Margherita"], 1)
    response = checkout(ada, {menu["Margherita"]: 1}, fulfillment="dine_in")
    assert messages_of(response)[0].startswith("How do you want it?: Select a valid choice.")
    assert_nothing_placed()


# -- my orders ----------------------------------------------------------------------------


def test_my_orders_newest_first_with_restaurant_status_total_and_date(
    ada, buyer, other_buyer, restaurant, menu
):
    with time_machine.travel(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC), tick=False):
        older = place_order(buyer, restaurant, {menu["Margherita"]: 1})
    with time_machine.travel(dt.datetime(2026, 3, 2, 19, 30, tzinfo=dt.UTC), tick=False):
        newer = place_order(buyer, restaurant, {menu["Tiramisu"]: 2}, fulfillment="pickup")
    advance(older, "accept")
    place_order(other_buyer, restaurant, {menu["Lemonade"]: 1})

    response = ada.get(reverse("orders:list"))

    page = text(response)
    assert (
        f"#{newer.pk} Trattoria Roma Placed Mon 2 Mar 2026, 19:30 12.00 USD "
        f"#{older.pk} Trattoria Roma Accepted Sun 1 Mar 2026, 12:00 15.49 USD"
    ) in page
    assert page.count("Trattoria Roma") == 2


def test_my_orders_are_paginated_by_twenty(ada, buyer, restaurant, menu):
    orders = [place_order(buyer, restaurant) for _ in range(21)]

    first = text(ada.get(reverse("orders:list")))
    second = text(ada.get(reverse("orders:list") + "?page=2"))

    assert first.count("Trattoria Roma") == 20
    assert "Page 1 of 2" in first
    assert f"#{orders[0].pk} " not in first
    assert second.count("Trattoria Roma") == 1
    assert f"#{orders[0].pk} " in second


@pytest.mark.parametrize("how_many", [1, 15])
def test_my_orders_query_count_is_constant(
    ada, buyer, restaurant, menu, how_many, django_assert_num_queries
):
    for _ in range(how_many):
        place_order(buyer, restaurant)
    # user (the session is in Redis), the nav's restaurant membership, count, the page of orders
    with django_assert_num_queries(4):
        response = ada.get(reverse("orders:list"))
    assert text(response).count("Trattoria Roma") == how_many


# -- order detail -------------------------------------------------------------------------


def test_order_detail_shows_status_timeline_items_and_every_figure(ada, buyer, restaurant, menu):
    DiscountCodeFactory(code="WELCOME5", amount_off=D("5.00"))
    give_credit(buyer, "3.00", kind="promo")
    give_credit(buyer, "4.00", kind="account")
    with time_machine.travel(NOON, tick=False):
        order = place_order(
            buyer,
            restaurant,
            {menu["Margherita"]: 2, menu["Tiramisu"]: 1},
            discount_code="welcome5",
            use_credit=True,
        )
    with time_machine.travel(NOON + dt.timedelta(minutes=2), tick=False):
        advance(order, "accept")

    response = ada.get(order.get_absolute_url())

    page = text(response)
    assert f"Order #{order.pk} Accepted" in page
    assert "Delivery from Trattoria Roma , placed Fri 20 Nov 2026, 12:00." in page
    assert "Delivering to 7 Harbour Road." in page
    assert (
        "Estimated ready Fri 20 Nov 2026, 12:22 Estimated delivery Fri 20 Nov 2026, 12:47" in page
    )
    assert (
        "Fri 20 Nov 2026, 12:00 · Buyer Order placed at Trattoria Roma. Why? L-7.2 , L-7.1 "
        "Fri 20 Nov 2026, 12:00 · System 21.99 USD charged to the card. "
        "Fri 20 Nov 2026, 12:02 · Restaurant Accepted by the restaurant."
    ) in page
    assert "Margherita 2 12.50 USD 25.00 USD Tiramisu 1 6.00 USD 6.00 USD" in page
    assert (
        f"Subtotal 31.00 USD Delivery fee 2.99 USD Discount (WELCOME5) {MINUS}5.00 USD "
        f"Total 28.99 USD Promotional credit {MINUS}3.00 USD Account credit {MINUS}4.00 USD "
        "Charged to your card 21.99 USD You paid 25.99 USD"
    ) in page
    assert "21.99 USD to your card, Succeeded, Fri 20 Nov 2026, 12:00" in page
    assert "Refunds" not in page


def test_order_detail_shows_refunds(ada, buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 1})
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    refund_order(
        order_id=order.pk,
        amount=D("15.49"),
        method="original",
        idempotency_key="pages-1",
        actor=None,
        role="policy",
        reason="Never arrived",
    )
    refunds_processed()

    page = text(ada.get(order.get_absolute_url()))

    assert "Delivered" in page
    assert re.search(r"Refunds .* Card .*Succeeded 15\.49 USD", page)


def test_another_buyers_order_is_a_404(ada, other_buyer, restaurant, menu):
    order = place_order(other_buyer, restaurant, {menu["Margherita"]: 1})
    assert ada.get(order.get_absolute_url()).status_code == 404
    assert ada.get(reverse("orders:detail", args=[order.pk + 1000])).status_code == 404


@pytest.mark.parametrize("size", ["small", "large"])
def test_order_detail_query_count_is_constant(
    ada, buyer, restaurant, menu, size, django_assert_num_queries
):
    if size == "small":
        order = place_order(buyer, restaurant, {menu["Margherita"]: 1})
    else:
        order = place_order(buyer, restaurant, {item: 2 for item in menu.values()})
        advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
        for key in ("a", "b"):
            refund_order(
                order_id=order.pk,
                amount=D("1.00"),
                method="original",
                idempotency_key=f"pages-{key}",
                actor=None,
                role="policy",
                reason="Goodwill",
            )
    # user (the session is in Redis), nav membership, the order, items, payments, refunds, events
    # with actors
    with django_assert_num_queries(7):
        response = ada.get(order.get_absolute_url())
    assert response.status_code == 200
