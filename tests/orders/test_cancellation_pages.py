"""The buyer's side of cancellation (JOURNEYS buyer 2 and 3): the panel on the order page in
every state, the confirmation page, and what confirming does."""

import datetime as dt
import html as html_lib
import re
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.urls import reverse

from core.models import Notification
from orders.models import Order
from orders.services.cancellation import (
    order_cancel_by_buyer,
    order_cancel_by_restaurant,
    order_cancellation_approve,
    order_cancellation_deny,
)
from orders.services.terms import restaurant_update_terms
from refunds.models import Refund
from refunds.services.execution import refund_order
from tests.conftest import NOW, advance, give_credit, place_order, refunds_processed
from tests.factories import MenuItemFactory, RestaurantFactory

pytestmark = pytest.mark.django_db

MINUTE = dt.timedelta(minutes=1)
WINDOW_PASSED = (
    "The restaurant's 5-minute cancellation window has passed. It closed at 12:05. Why? K-B1"
)
PREPARATION_STARTED = (
    "The restaurant has started preparing this order, so it can no longer be cancelled and no "
    "refund is issued; it will be delivered or handed over as planned. Why? L-2.1"
)


@pytest.fixture
def clock():
    """NOW, standing still until the test moves it (`clock.shift(...)`)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def ada(client, buyer):
    client.force_login(buyer)
    return client


@pytest.fixture
def order(clock, buyer, restaurant, menu):
    """2 Margherita + 2.99 delivery = 27.99, all charged to the card, placed at 12:00."""
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2})
    assert (order.amount_charged, order.amount_paid) == (D("27.99"), D("27.99"))
    return order


def words(html: str) -> str:
    """HTML as read: inline tags vanish (a link inside a sentence stays in it), other tags
    separate words; entities decoded, whitespace collapsed."""
    html = re.sub(r"</?(a|span|strong|time|b|em)\b[^>]*>", "", html)
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())


def text(response) -> str:
    return words(response.content.decode())


def panel(response) -> str:
    """The words of the cancellation panel alone."""
    match = re.search(
        r'<section class="card cancellation".*?</section>', response.content.decode(), re.S
    )
    assert match, "the page has no cancellation panel"
    return words(match.group(0))


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def cancel_url(order) -> str:
    return reverse("orders:cancel", args=[order.pk])


def nothing_moved(order, status):
    order.refresh_from_db()
    assert order.status == status
    assert not Refund.objects.filter(order=order).exists()


# -- the panel, state by state -------------------------------------------------------------


def test_placed_order_is_free_to_cancel_with_a_full_refund_to_the_card(ada, order):
    response = ada.get(order.get_absolute_url())

    assert panel(response) == (
        "Cancellation Free to cancel until the restaurant accepts. "
        "Full refund of 27.99 USD to your card. Why? L-2.1, K-B3 Cancel"
    )
    html = response.content.decode()
    assert f'<a class="button" href="/orders/{order.pk}/cancel/">Cancel</a>' in html
    # Each clause links to its anchor on /policy/ with its text (D-9).
    assert re.search(
        r'<a class="clause" href="/policy/#L-2\.1" title="L-2\.1 · Customer-Initiated [^"]*"'
        r' data-clause-text="[^"]*">L-2\.1</a>, <a class="clause" href="/policy/#K-B3"',
        html,
    )
    assert "cancel-countdown.js" not in html


def test_a_refund_is_shown_split_the_way_the_order_was_paid(clock, ada, buyer, restaurant, menu):
    give_credit(buyer, "5.00", kind="account")
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2}, use_credit=True)
    assert (order.amount_charged, order.account_credit_applied) == (D("22.99"), D("5.00"))

    assert "Full refund of 27.99 USD: 22.99 USD to your card and 5.00 USD as account credit." in (
        panel(ada.get(order.get_absolute_url()))
    )

    advance(order, "accept")
    # 15 % of 27.99 = 4.20; 23.79 back by origin: 23.79 x 22.99 / 27.99 = 19.54 to the card.
    assert (
        "The restaurant must agree. You get 23.79 USD: 19.54 USD to your card and 4.25 USD as "
        "account credit if it does."
    ) in panel(ada.get(order.get_absolute_url()))


def test_accepted_order_inside_the_window_counts_down_and_shows_the_fee(clock, ada, order):
    advance(order, "accept")
    clock.shift(MINUTE + dt.timedelta(seconds=30))

    response = ada.get(order.get_absolute_url())

    assert panel(response) == (
        "Cancellation You can still ask to cancel for 3 min 30 s (until 12:05:00). "
        "Cancelling now costs 15 % = 4.20 USD; you get 23.79 USD back. Why? K-B1, L-2.1 "
        "The restaurant must agree. You get 23.79 USD to your card if it does. Ask to cancel "
        "The cancellation window has closed; reload the page to see what that means for your "
        "order."
    )
    html = response.content.decode()
    ends_at = int((NOW + 5 * MINUTE).timestamp())
    now = int((NOW + MINUTE + dt.timedelta(seconds=30)).timestamp())
    assert f'data-countdown-to="{ends_at}" data-countdown-now="{now}"' in html
    assert "js/cancel-countdown.js" in html
    assert '<p class="muted" data-countdown-expired hidden>' in html


@pytest.mark.parametrize(
    ("fee_percent", "shown"),
    [
        ("12.5", "12.5 % = 3.50 USD; you get 24.49 USD back"),  # 3.49875 -> 3.50
        ("25", "20 % = 5.60 USD; you get 22.39 USD back"),  # held to the version's 20 % maximum
        ("5", "10 % = 2.80 USD; you get 25.19 USD back"),  # held to the 10 % minimum
    ],
)
def test_the_percent_shown_is_the_restaurants_held_to_the_bounds(
    clock, ada, buyer, partner, fee_percent, shown
):
    restaurant = RestaurantFactory(cancellation_fee_percent=D(fee_percent), members=[partner])
    pizza = MenuItemFactory(restaurant=restaurant, price=D("12.50"))
    order = place_order(buyer, restaurant, {pizza: 2})
    advance(order, "accept")

    assert f"Cancelling now costs {shown}. Why? K-B1, L-2.1" in panel(
        ada.get(order.get_absolute_url())
    )


def test_after_the_window_the_panel_says_when_it_closed_and_why(clock, ada, order):
    advance(order, "accept")
    clock.shift(5 * MINUTE)

    response = ada.get(order.get_absolute_url())

    assert panel(response) == f"Cancellation {WINDOW_PASSED}"
    assert "cancel-countdown.js" not in response.content.decode()


def test_once_preparation_started_the_panel_says_cancelling_is_no_longer_possible(
    clock, ada, order
):
    advance(order, "accept", "start_preparation")

    assert panel(ada.get(order.get_absolute_url())) == f"Cancellation {PREPARATION_STARTED}"


def test_a_waiting_request_counts_an_earlier_refund_in_what_comes_back(clock, ada, buyer, order):
    advance(order, "accept")
    refund_order(order_id=order.pk, amount=D("5.00"), method="original",
                 idempotency_key="earlier", actor=None, role="policy", reason="Test")  # fmt: skip
    order_cancel_by_buyer(order_id=order.pk, actor=buyer, quote=D("4.20"))

    assert "If the restaurant agrees, you get 18.79 USD back (it keeps the 4.20 USD fee)." in (
        panel(ada.get(order.get_absolute_url()))
    )


def test_a_request_waiting_for_the_restaurant_says_when_support_takes_over(
    clock, ada, buyer, order
):
    advance(order, "accept")
    clock.shift(MINUTE)
    order_cancel_by_buyer(order_id=order.pk, actor=buyer, quote=D("4.20"))

    assert panel(ada.get(order.get_absolute_url())) == (
        "Cancellation Waiting for the restaurant. You asked to cancel at 12:01. "
        "If the restaurant agrees, you get 23.79 USD back (it keeps the 4.20 USD fee). "
        "If it has not answered by 12:11, support decides instead. Why? L-2.1, K-OV"
    )


def test_an_unanswered_request_says_support_decides(clock, ada, buyer, order):
    advance(order, "accept")
    order_cancel_by_buyer(order_id=order.pk, actor=buyer, quote=D("4.20"))
    clock.shift(10 * MINUTE)

    assert panel(ada.get(order.get_absolute_url())).endswith(
        "The restaurant did not answer by 12:10, so support decides instead. Why? L-2.1, K-OV"
    )


def test_a_denied_request_shows_the_refusal(clock, ada, buyer, partner, order):
    advance(order, "accept")
    order_cancel_by_buyer(order_id=order.pk, actor=buyer, quote=D("4.20"))
    order_cancellation_deny(order_id=order.pk, actor=partner, reason="Already in the oven.")

    assert panel(ada.get(order.get_absolute_url())) == (
        "Cancellation The restaurant already declined to cancel this order. Why? K-B1, L-2.1"
    )


def test_a_request_support_denied_says_support_decided(clock, ada, buyer, agent, order):
    advance(order, "accept")
    order_cancel_by_buyer(order_id=order.pk, actor=buyer, quote=D("4.20"))
    order_cancellation_deny(order_id=order.pk, actor=agent, reason="Already in the oven.")

    response = ada.get(order.get_absolute_url())

    assert panel(response) == (
        "Cancellation Support already declined to cancel this order, deciding in the "
        "restaurant's place. Why? K-B1, L-2.1, K-OV"
    )
    assert "Support denied your cancellation request" in words(response.content.decode())
    assert "The restaurant denied" not in words(response.content.decode())
    assert Notification.objects.get(user=buyer, title__contains="denied").title == (
        f"Order #{order.pk}: cancellation denied by support"
    )


@pytest.mark.parametrize(
    ("steps", "what"),
    [
        (["dispatch", "deliver"], "delivered"),
        (["serve"], "served"),
        (["serve", "close"], "served"),
    ],
)
def test_a_received_order_says_so_and_points_to_reporting_a_problem(
    clock, ada, buyer, restaurant, menu, steps, what
):
    fulfillment = Order.Fulfillment.DELIVERY if "deliver" in steps else Order.Fulfillment.DINE_IN
    order = place_order(buyer, restaurant, {menu["Margherita"]: 1}, fulfillment=fulfillment)
    advance(order, "accept", "start_preparation", "mark_ready", *steps)

    response = ada.get(order.get_absolute_url())
    text = panel(response)

    assert text == (
        f"Cancellation This order was {what}, so it can no longer be cancelled. If something was "
        "wrong with it, report a problem instead. Why? L-2.1, L-4.1"
    )
    assert "prepar" not in text
    assert f'href="/refunds/new/{order.pk}/">Report a problem</a>' in response.content.decode()


def test_a_cancelled_order_says_what_happened_and_its_refund_shows_the_bank_dates(
    clock, ada, buyer, order
):
    order_cancel_by_buyer(order_id=order.pk, actor=buyer, quote=D("0"))
    refunds_processed()

    response = ada.get(order.get_absolute_url())

    assert panel(response) == (
        "Cancellation Cancelled on Fri 20 Nov 2026, 12:00. You cancelled the order before the "
        "restaurant accepted it: free. Why? L-2.1, K-B3 What comes back is listed under Refunds, "
        "with the dates it should reach you."
    )
    refund = Refund.objects.get(order=order)
    assert (refund.expected_in_bank_from, refund.expected_in_bank_by) == (
        dt.date(2026, 12, 1),  # Thanksgiving (26 Nov) is not a business day
        dt.date(2026, 12, 10),
    )
    page = text(response)
    assert (
        "Refunds Date To Status Amount Fri 20 Nov 2026, 12:00 Card expected at your bank between "
        "Tue 1 Dec and Thu 10 Dec 2026 Why? L-2.1, K-B3 Succeeded 27.99 USD"
    ) in page
    assert (
        "Refund of 27.99 USD sent to your card; expected at your bank between Tue 1 Dec and "
        "Thu 10 Dec "
        "2026."
    ) in page


def test_an_order_cancelled_by_the_restaurant_shows_its_reason_and_explanation(
    clock, ada, partner, order
):
    advance(order, "accept")
    order_cancel_by_restaurant(
        order_id=order.pk,
        actor=partner,
        reason="item_unavailable",
        explanation="We ran out of mozzarella.",
    )

    assert panel(ada.get(order.get_absolute_url())).startswith(
        "Cancellation Cancelled on Fri 20 Nov 2026, 12:00. Cancelled by the restaurant "
        "(a menu item is unavailable): We ran out of mozzarella. Why? L-2.2, K-S1, K-S2, K-S3"
    )


# -- the confirmation page -------------------------------------------------------------------


def test_confirmation_shows_the_consequence_again_with_the_quote(clock, ada, order):
    advance(order, "accept")

    response = ada.get(cancel_url(order))

    page = text(response)
    assert "Ask to cancel order #" in page
    assert "Cancelling now costs 15 % = 4.20 USD; you get 23.79 USD back. Why? K-B1, L-2.1" in page
    html = response.content.decode()
    assert '<input type="hidden" name="quote" value="4.20"' in html
    assert "csrfmiddlewaretoken" in html
    assert re.search(r'<button type="submit" class="danger">Ask to cancel</button>', html)


def test_confirmation_of_a_placed_order_quotes_no_fee(clock, ada, order):
    response = ada.get(cancel_url(order))

    assert "Full refund of 27.99 USD to your card." in text(response)
    assert '<input type="hidden" name="quote" value="0.00"' in response.content.decode()


def test_confirmation_of_an_order_that_cannot_be_cancelled_goes_back_with_the_reason(
    clock, ada, order
):
    advance(order, "accept", "start_preparation")

    response = ada.get(cancel_url(order))

    assert response.status_code == 302
    assert response["Location"] == order.get_absolute_url()
    assert messages_of(response) == [PREPARATION_STARTED]


def test_confirming_a_placed_order_cancels_it_with_one_refund_and_a_notification(
    clock, ada, buyer, partner, order
):
    response = ada.post(cancel_url(order), {"quote": "0.00"})

    assert response.status_code == 302
    assert response["Location"] == order.get_absolute_url()
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    refunds = list(Refund.objects.filter(order=order))
    assert [(r.destination, r.amount, r.status) for r in refunds] == [
        ("card", D("27.99"), "pending")  # on its way: the processor is called after commit
    ]
    assert messages_of(response) == [
        f"Order #{order.pk} cancelled. 27.99 USD comes back: 27.99 USD to your card, expected at "
        "your bank between Tue 1 Dec and Thu 10 Dec 2026."
    ]
    assert [(n.user, n.title) for n in Notification.objects.order_by("pk")] == [
        (buyer, f"Order #{order.pk} cancelled"),
        (partner, f"Order #{order.pk} cancelled"),
    ]


def test_confirming_a_split_refund_says_where_each_part_goes(clock, ada, buyer, restaurant, menu):
    give_credit(buyer, "5.00", kind="account")
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2}, use_credit=True)

    response = ada.post(cancel_url(order), {"quote": "0.00"})

    assert messages_of(response) == [
        f"Order #{order.pk} cancelled. 27.99 USD comes back: 22.99 USD to your card, expected at "
        "your bank between Tue 1 Dec and Thu 10 Dec 2026; 5.00 USD as account credit, in your "
        "wallet "
        "now."
    ]
    assert Refund.objects.filter(order=order).count() == 2


def test_asking_to_cancel_inside_the_window_waits_for_the_restaurant(
    clock, ada, buyer, partner, order
):
    advance(order, "accept")
    clock.shift(2 * MINUTE)

    response = ada.post(cancel_url(order), {"quote": "4.20"}, follow=True)

    order.refresh_from_db()
    assert (order.status, order.cancellation_fee) == ("cancellation_requested", D("4.20"))
    assert not Refund.objects.filter(order=order).exists()
    page = text(response)
    assert (
        f"You asked to cancel order #{order.pk}. Waiting for the restaurant: if it agrees, you "
        "get 23.79 USD back (4.20 USD fee). If it has not answered by Fri 20 Nov 2026, 12:12, "
        "support decides."
    ) in page
    assert "Waiting for the restaurant. You asked to cancel at 12:02." in page
    assert list(Notification.objects.values_list("user", "title")) == [
        (partner.pk, f"Cancellation request for order #{order.pk}")
    ]


def test_terms_changed_after_acceptance_leave_the_page_quote_alone(
    clock, ada, partner, restaurant, order
):
    """K-B1, L-2.1: the order keeps the window and fee it was accepted with."""
    advance(order, "accept")
    restaurant_update_terms(
        restaurant_id=restaurant.pk, actor=partner, window_minutes=30, fee_percent=D("20")
    )

    assert (
        '<input type="hidden" name="quote" value="4.20"'
        in ada.get(cancel_url(order)).content.decode()
    )
    assert "Cancelling now costs 15 % = 4.20 USD; you get 23.79 USD back." in panel(
        ada.get(order.get_absolute_url())
    )


def test_a_stale_quote_changes_nothing_and_shows_the_new_terms(
    clock, ada, buyer, partner, restaurant, order
):
    # The buyer was quoted 15 % (4.20); the terms changed before the restaurant accepted.
    restaurant_update_terms(
        restaurant_id=restaurant.pk, actor=partner, window_minutes=5, fee_percent=D("20")
    )
    advance(order, "accept")

    response = ada.post(cancel_url(order), {"quote": "4.20"})

    assert response["Location"] == order.get_absolute_url()
    assert messages_of(response) == [
        "The terms changed: The restaurant must approve; cancelling costs 5.60 USD, you get "
        "22.39 USD back."
    ]
    nothing_moved(order, Order.Status.ACCEPTED)
    assert order.cancellation_fee is None
    assert not Notification.objects.exists()
    assert "Cancelling now costs 20 % = 5.60 USD; you get 22.39 USD back." in panel(
        ada.get(order.get_absolute_url())
    )


def test_a_quote_for_a_placed_order_is_stale_once_the_restaurant_accepted(clock, ada, order):
    advance(order, "accept")

    response = ada.post(cancel_url(order), {"quote": "0.00"})

    assert messages_of(response) == [
        "The terms changed: The restaurant must approve; cancelling costs 4.20 USD, you get "
        "23.79 USD back."
    ]
    nothing_moved(order, Order.Status.ACCEPTED)


def test_a_quote_sent_after_the_window_closed_is_refused_with_the_reason(clock, ada, order):
    advance(order, "accept")
    clock.shift(6 * MINUTE)

    response = ada.post(cancel_url(order), {"quote": "4.20"})

    assert messages_of(response) == [
        "The terms changed: The restaurant's 5-minute cancellation window has passed."
    ]
    nothing_moved(order, Order.Status.ACCEPTED)


def test_a_second_confirmation_is_refused_and_refunds_once(clock, ada, order):
    ada.post(cancel_url(order), {"quote": "0.00"}, follow=True)

    response = ada.post(cancel_url(order), {"quote": "0.00"})

    assert messages_of(response) == ["The terms changed: This order can no longer be cancelled."]
    assert Refund.objects.filter(order=order).count() == 1


def test_a_missing_or_broken_quote_changes_nothing(clock, ada, order):
    for data in ({}, {"quote": "abc"}, {"quote": "-1"}):
        response = ada.post(cancel_url(order), data, follow=True)
        assert response.redirect_chain == [(order.get_absolute_url(), 302)]
        assert "Open the cancellation again to see its current terms." in text(response)
    nothing_moved(order, Order.Status.PLACED)


def test_another_buyers_order_is_a_404_and_stays_as_it_was(clock, client, other_buyer, order):
    client.force_login(other_buyer)

    assert client.get(order.get_absolute_url()).status_code == 404
    assert client.get(cancel_url(order)).status_code == 404
    assert client.post(cancel_url(order), {"quote": "0.00"}).status_code == 404
    assert client.post(cancel_url(order), {}).status_code == 404
    assert (
        client.post(reverse("orders:cancel", args=[order.pk + 1000]), {"quote": "0"}).status_code
        == 404
    )
    nothing_moved(order, Order.Status.PLACED)
    assert not Notification.objects.exists()


def test_signed_out_visitors_are_sent_to_sign_in(clock, client, order):
    response = client.post(cancel_url(order), {"quote": "0.00"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    nothing_moved(order, Order.Status.PLACED)


# -- query counts --------------------------------------------------------------------------


def _order_of_size(size, buyer, restaurant, menu) -> Order:
    """Small: one item, placed. Large: every item three times, paid partly with account credit,
    accepted (more events, more payments to split a refund over)."""
    if size == "small":
        return place_order(buyer, restaurant, {menu["Margherita"]: 1})
    give_credit(buyer, "5.00", kind="account")
    order = place_order(buyer, restaurant, {item: 3 for item in menu.values()}, use_credit=True)
    return advance(order, "accept")


@pytest.mark.parametrize("size", ["small", "large"])
def test_order_page_with_the_panel_has_a_constant_query_count(
    clock, ada, buyer, partner, restaurant, menu, size, django_assert_num_queries
):
    order = _order_of_size(size, buyer, restaurant, menu)
    if size == "large":  # cancelled after a request: two refunds, seven events
        # 3 x (12.50 + 6.00 + 3.25) + 2.99 = 68.24 paid; 15 % = 10.236 -> 10.24
        order_cancel_by_buyer(order_id=order.pk, actor=buyer, quote=D("10.24"))
        order_cancellation_approve(order_id=order.pk, actor=partner)
        assert Refund.objects.filter(order=order).count() == 2

    # user (the session is in Redis), the order, items, payments, refunds, events with actors, the
    # header; the large order's kept fee may be contested (K-DR): one more for its escalation
    with django_assert_num_queries(8 if size == "large" else 7):
        response = ada.get(order.get_absolute_url())
    assert response.status_code == 200


@pytest.mark.parametrize("size", ["small", "large"])
def test_confirmation_page_has_a_constant_query_count(
    clock, ada, buyer, restaurant, menu, size, django_assert_num_queries
):
    order = _order_of_size(size, buyer, restaurant, menu)

    with django_assert_num_queries(7):
        response = ada.get(cancel_url(order))
    assert response.status_code == 200
