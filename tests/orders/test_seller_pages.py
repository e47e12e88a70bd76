"""Seller portal (D-9, journey "Restaurant partner" 1): the live queue, its fragment and the
lifecycle buttons, as a restaurant partner, a stranger and an anonymous visitor see them."""

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.contrib.staticfiles import finders
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.fsm import apply_transition
from orders.events import order_event_record
from orders.lock_objects import order_for_update
from orders.models import SELLER_ACTIONS, Order, OrderEvent
from tests.conftest import advance, place_order
from tests.factories import MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = pytest.mark.django_db

QUEUE = reverse("seller:queue")
FRAGMENT = reverse("seller:queue-fragment")
# What htmx sends with every request it makes (django-htmx sets request.htmx from it).
HTMX = {"HX-Request": "true"}
TIMES = "\N{MULTIPLICATION SIGN}"

LIFECYCLES = {
    "delivery": [
        ("accept", "Accept", "accepted"),
        ("start_preparation", "Start preparing", "preparing"),
        ("mark_ready", "Ready", "ready"),
        ("dispatch", "Hand to courier", "out_for_delivery"),
        ("deliver", "Delivered", "delivered"),
    ],
    "pickup": [
        ("accept", "Accept", "accepted"),
        ("start_preparation", "Start preparing", "preparing"),
        ("mark_ready", "Ready", "ready"),
        ("hand_over", "Picked up", "picked_up"),
    ],
    "dine_in": [
        ("accept", "Accept", "accepted"),
        ("start_preparation", "Start preparing", "preparing"),
        ("mark_ready", "Ready", "ready"),
        ("serve", "Served", "served"),
        ("close", "Close", "closed"),
    ],
}


@pytest.fixture
def luigi(client, partner, restaurant):
    """The test client signed in as the partner of Trattoria Roma."""
    client.force_login(partner)
    return client


@pytest.fixture
def other_restaurant(db):
    """A restaurant the partner is not a member of, with its own partner and menu."""
    restaurant = RestaurantFactory(
        name="Sushi Kyo", slug="kyo", members=[UserFactory(username="kenji")]
    )
    MenuItemFactory(restaurant=restaurant, name="Nigiri", price=Decimal("9.00"))
    return restaurant


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def advance_url(order, action) -> str:
    return reverse("seller:advance", args=[order.pk, action])


def card(response, order) -> str:
    """The HTML of the order's card on the queue, or "" when the order is not on it."""
    match = re.search(
        rf'<article class="[^"]*" id="order-{order.pk}".*?</article>',
        response.content.decode(),
        re.S,
    )
    return match.group(0) if match else ""


def buttons(card_html) -> list[tuple[str, str]]:
    """(form action, button label) of every form in a card."""
    return re.findall(
        r'<form method="post" action="([^"]+)".*?<button[^>]*>([^<]+)</button>', card_html, re.S
    )


def force_transition(order, name, actor) -> Order:
    """Reach a state whose service belongs to a later issue (cancellation request, missing)
    through the services' own locking and transition helpers."""
    with transaction.atomic():
        locked = order_for_update(order.pk)
        from_status = locked.status
        apply_transition(locked, getattr(locked, name), at=timezone.now())
        order_event_record(
            order=locked,
            kind=OrderEvent.Kind.TRANSITION,
            name=name,
            from_status=from_status,
            to_status=locked.status,
            actor=actor,
            role=OrderEvent.Role.BUYER,
            message=f"Test set-up: {name.replace('_', ' ')}.",
        )
    return locked


# -- the queue ----------------------------------------------------------------------------


def test_queue_shows_only_the_partners_restaurants_orders(
    luigi, buyer, other_buyer, restaurant, menu, other_restaurant
):
    mine = place_order(buyer, restaurant, {menu["Margherita"]: 2, menu["Lemonade"]: 1})
    theirs = place_order(other_buyer, other_restaurant)

    response = luigi.get(QUEUE)

    assert response.status_code == 200
    assert [o.pk for o in response.context["incoming"]] == [mine.pk]
    assert response.context["in_progress"] == []
    assert card(response, theirs) == ""
    assert "Sushi Kyo" not in response.content.decode()
    mine_card = card(response, mine)
    assert f"Order #{mine.pk}" in mine_card
    assert "Trattoria Roma" in mine_card
    assert "Delivery" in mine_card
    assert "for Ada" in mine_card
    assert "Deliver to: 7 Harbour Road" in mine_card
    assert f"<strong>2 {TIMES}</strong> Margherita" in mine_card
    assert f"<strong>1 {TIMES}</strong> Lemonade" in mine_card
    placed = timezone.localtime(mine.placed_at)
    ready = timezone.localtime(mine.estimated_ready_at)
    delivery = timezone.localtime(mine.estimated_delivery_at)
    assert f'<time datetime="{placed.isoformat()}">{placed:%H:%M}</time>' in mine_card
    assert "<dt>Ready by</dt>" in mine_card
    assert f'<time datetime="{ready.isoformat()}">{ready:%H:%M}</time>' in mine_card
    assert "<dt>Delivery by</dt>" in mine_card
    assert f'<time datetime="{delivery.isoformat()}">{delivery:%H:%M}</time>' in mine_card


def test_incoming_orders_come_first_with_the_visual_alert(luigi, buyer, restaurant):
    older = place_order(buyer, restaurant)
    advance(older, "accept")
    newer = place_order(buyer, restaurant)

    response = luigi.get(QUEUE)

    html = response.content.decode()
    assert html.index(f'id="order-{newer.pk}"') < html.index(f'id="order-{older.pk}"')
    assert [o.pk for o in response.context["incoming"]] == [newer.pk]
    assert [o.pk for o in response.context["in_progress"]] == [older.pk]
    assert 'class="card order-card alert-new"' in card(response, newer)
    assert "alert-new" not in card(response, older)
    assert 'data-incoming="1"' in html
    assert "<audio" not in html


def test_each_card_has_exactly_its_one_next_action(luigi, buyer, restaurant):
    placed = place_order(buyer, restaurant)
    preparing = advance(place_order(buyer, restaurant), "accept", "start_preparation")
    ready_pickup = advance(
        place_order(buyer, restaurant, fulfillment="pickup", delivery_address=""),
        "accept",
        "start_preparation",
        "mark_ready",
    )
    served = advance(
        place_order(buyer, restaurant, fulfillment="dine_in", delivery_address=""),
        "accept",
        "start_preparation",
        "mark_ready",
        "serve",
    )

    response = luigi.get(QUEUE)

    assert buttons(card(response, placed)) == [(advance_url(placed, "accept"), "Accept")]
    assert buttons(card(response, preparing)) == [(advance_url(preparing, "mark_ready"), "Ready")]
    assert buttons(card(response, ready_pickup)) == [
        (advance_url(ready_pickup, "hand_over"), "Picked up")
    ]
    assert buttons(card(response, served)) == [(advance_url(served, "close"), "Close")]
    assert "Deliver to" not in card(response, ready_pickup)
    assert "Deliver to" not in card(response, served)


def test_cards_show_no_payment_details(luigi, buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2})
    payment = order.payments.get()

    html = luigi.get(QUEUE).content.decode()

    assert order.total == Decimal("27.99")
    for secret in ["27.99", "12.50", "25.00", payment.gateway_reference, payment.idempotency_key]:
        assert secret not in html


def test_cancellation_requested_and_missing_orders_show_their_status_and_next_step(
    luigi, buyer, restaurant
):
    requested = force_transition(
        advance(place_order(buyer, restaurant), "accept"), "request_cancellation", buyer
    )
    out = advance(
        place_order(buyer, restaurant), "accept", "start_preparation", "mark_ready", "dispatch"
    )
    missing = force_transition(out, "report_missing", buyer)

    response = luigi.get(QUEUE)

    requested_card, missing_card = card(response, requested), card(response, missing)
    assert "Cancellation requested" in requested_card
    assert "The buyer asked to cancel this order." in requested_card
    assert buttons(requested_card) == []
    assert "Missing" in missing_card
    assert "The buyer reported this order missing." in missing_card
    # L-6.2 (issue 8): the restaurant says when it has found and delivered it.
    assert buttons(missing_card) == [
        (reverse("seller:locate", args=[missing.pk]), "Found and delivered")
    ]


def test_recently_finished_orders_are_listed_read_only(luigi, buyer, restaurant):
    with time_machine.travel(timezone.now() - dt.timedelta(hours=25)):
        old = advance(place_order(buyer, restaurant), "accept", "start_preparation", "mark_ready")
        old = advance(old, "dispatch", "deliver")
    delivered = advance(
        place_order(buyer, restaurant), "accept", "start_preparation", "mark_ready", "dispatch"
    )
    delivered = advance(delivered, "deliver")
    open_order = place_order(buyer, restaurant)

    response = luigi.get(QUEUE)

    html = response.content.decode()
    assert [o.pk for o in response.context["recent"]] == [delivered.pk]
    assert f'id="recent-order-{delivered.pk}"' in html
    assert f'id="recent-order-{old.pk}"' not in html
    assert card(response, delivered) == ""
    assert card(response, open_order) != ""
    recent_section = html[html.index('id="queue-recent"') :]
    assert "<form" not in recent_section
    assert "7 Harbour Road" not in recent_section


# -- several restaurants ----------------------------------------------------------------


def test_partner_of_two_restaurants_sees_both_and_can_filter(
    luigi, partner, buyer, restaurant, other_restaurant
):
    other_restaurant.members.add(partner)
    roma = place_order(buyer, restaurant)
    kyo = place_order(buyer, other_restaurant)

    everything = luigi.get(QUEUE)
    only_kyo = luigi.get(QUEUE, {"restaurant": other_restaurant.pk})

    assert "Trattoria Roma" in card(everything, roma)
    assert "Sushi Kyo" in card(everything, kyo)
    assert '<select name="restaurant"' in everything.content.decode()
    assert [o.pk for o in only_kyo.context["incoming"]] == [kyo.pk]
    assert card(only_kyo, roma) == ""
    assert only_kyo.context["fragment_url"] == f"{FRAGMENT}?restaurant={other_restaurant.pk}"
    assert f'<input type="hidden" name="restaurant" value="{other_restaurant.pk}">' in card(
        only_kyo, kyo
    )


def test_filter_keeps_after_an_action(luigi, partner, buyer, restaurant, other_restaurant):
    other_restaurant.members.add(partner)
    kyo = place_order(buyer, other_restaurant)

    response = luigi.post(advance_url(kyo, "accept"), {"restaurant": other_restaurant.pk})

    assert response.status_code == 302
    assert response.url == f"{QUEUE}?restaurant={other_restaurant.pk}"


def test_filtering_by_a_restaurant_that_is_not_the_partners_is_a_404(
    luigi, other_restaurant, other_buyer
):
    place_order(other_buyer, other_restaurant)

    assert luigi.get(QUEUE, {"restaurant": other_restaurant.pk}).status_code == 404
    assert luigi.get(FRAGMENT, {"restaurant": other_restaurant.pk}, headers=HTMX).status_code == 404
    assert luigi.get(QUEUE, {"restaurant": "roma"}).status_code == 404


def test_single_restaurant_partner_gets_no_filter(luigi, buyer, restaurant):
    place_order(buyer, restaurant)

    assert '<select name="restaurant"' not in luigi.get(QUEUE).content.decode()


# -- lifecycle buttons --------------------------------------------------------------------


@pytest.mark.parametrize("fulfillment", ["delivery", "pickup", "dine_in"])
def test_each_lifecycle_step_through_the_buttons(luigi, partner, buyer, restaurant, fulfillment):
    order = place_order(
        buyer,
        restaurant,
        fulfillment=fulfillment,
        delivery_address="7 Harbour Road" if fulfillment == "delivery" else "",
    )
    page = luigi.get(QUEUE)
    expected_events = [("place", "", "placed", buyer.pk, "buyer")]

    for action, label, to_status in LIFECYCLES[fulfillment]:
        assert buttons(card(page, order)) == [(advance_url(order, action), label)]
        from_status = Order.objects.get(pk=order.pk).status
        page = luigi.post(advance_url(order, action), follow=True)
        assert page.redirect_chain == [(QUEUE, 302)]
        assert messages_of(page) == [f"Order #{order.pk}: {SELLER_ACTIONS[action]}"]
        assert Order.objects.get(pk=order.pk).status == to_status
        expected_events.append((action, from_status, to_status, partner.pk, "restaurant"))

    assert card(page, order) == ""
    assert [o.pk for o in page.context["recent"]] == [order.pk]
    assert [
        (e.name, e.from_status, e.to_status, e.actor_id, e.actor_role)
        for e in order.events.filter(kind="transition").order_by("pk")
    ] == expected_events


def test_a_button_shows_a_success_message(luigi, buyer, restaurant):
    order = place_order(buyer, restaurant)

    response = luigi.post(advance_url(order, "accept"), follow=True)

    assert messages_of(response) == [f"Order #{order.pk}: Accepted by the restaurant."]
    assert buttons(card(response, order)) == [
        (advance_url(order, "start_preparation"), "Start preparing")
    ]


def test_a_stale_action_shows_the_error_and_changes_nothing(luigi, buyer, restaurant):
    order = advance(place_order(buyer, restaurant), "accept")
    accepted_at = Order.objects.get(pk=order.pk).accepted_at
    events = OrderEvent.objects.count()

    response = luigi.post(advance_url(order, "accept"), follow=True)

    assert response.status_code == 200
    assert messages_of(response) == [f"Order #{order.pk}: Cannot accept an order that is Accepted."]
    order.refresh_from_db()
    assert order.status == "accepted"
    assert order.accepted_at == accepted_at
    assert OrderEvent.objects.count() == events


def test_an_action_outside_the_lifecycle_is_refused(luigi, buyer, restaurant):
    order = place_order(buyer, restaurant)
    events = OrderEvent.objects.count()

    response = luigi.post(advance_url(order, "approve"), follow=True)

    assert messages_of(response) == [f"Order #{order.pk}: Unknown order action 'approve'."]
    order.refresh_from_db()
    assert order.status == "placed"
    assert OrderEvent.objects.count() == events


def test_advancing_another_restaurants_order_is_a_404_and_changes_nothing(
    luigi, other_buyer, other_restaurant
):
    theirs = place_order(other_buyer, other_restaurant)
    events = OrderEvent.objects.count()

    response = luigi.post(advance_url(theirs, "accept"))

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "placed"
    assert theirs.accepted_at is None
    assert OrderEvent.objects.count() == events


def test_advancing_an_order_that_does_not_exist_is_a_404(luigi):
    assert luigi.post(reverse("seller:advance", args=[999999, "accept"])).status_code == 404


def test_the_buttons_only_take_post(luigi, buyer, restaurant):
    order = place_order(buyer, restaurant)

    assert luigi.get(advance_url(order, "accept")).status_code == 405
    order.refresh_from_db()
    assert order.status == "placed"


def test_the_buttons_need_the_csrf_token(partner, buyer, restaurant):
    client = Client(enforce_csrf_checks=True)
    client.force_login(partner)
    order = place_order(buyer, restaurant)

    assert client.post(advance_url(order, "accept")).status_code == 403
    order.refresh_from_db()
    assert order.status == "placed"
    assert 'name="csrfmiddlewaretoken"' in card(client.get(QUEUE), order)


# -- access -------------------------------------------------------------------------------


def test_a_user_of_no_restaurant_gets_a_403_explaining_the_portal(client, buyer, restaurant):
    order = place_order(buyer, restaurant)
    client.force_login(buyer)

    page = client.get(QUEUE)
    fragment = client.get(FRAGMENT, headers=HTMX)
    post = client.post(advance_url(order, "accept"))

    assert page.status_code == 403
    assert "The seller portal is for restaurant partners." in page.content.decode()
    assert fragment.status_code == 403
    assert post.status_code == 404
    order.refresh_from_db()
    assert order.status == "placed"


def test_anonymous_visitors_are_sent_to_sign_in(client, buyer, restaurant):
    order = place_order(buyer, restaurant)
    login = reverse("login")

    for response in [
        client.get(QUEUE),
        client.get(FRAGMENT),
        client.post(advance_url(order, "accept")),
    ]:
        assert response.status_code == 302
        assert response.url.startswith(f"{login}?next=/seller/")
    order.refresh_from_db()
    assert order.status == "placed"
    assert OrderEvent.objects.filter(order=order, name="accept").count() == 0


# -- the fragment and live refresh -----------------------------------------------------


def test_the_fragment_is_the_list_only(luigi, buyer, restaurant):
    order = place_order(buyer, restaurant)

    response = luigi.get(FRAGMENT, headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert response.templates[0].name == "seller/_queue.html"
    assert "base.html" not in [t.name for t in response.templates]
    assert html.lstrip().startswith('<div class="seller-queue" data-incoming="1">')
    assert "<html" not in html
    assert "site-header" not in html
    assert "Refresh" not in html
    assert buttons(card(response, order)) == [(advance_url(order, "accept"), "Accept")]
    assert "no-store" in response["Cache-Control"]


def test_the_fragment_opened_as_a_page_goes_to_the_queue(luigi, buyer, restaurant):
    place_order(buyer, restaurant)

    response = luigi.get(FRAGMENT, {"restaurant": restaurant.pk})

    assert response.status_code == 302
    assert response.url == f"{QUEUE}?restaurant={restaurant.pk}"


def test_the_page_polls_the_fragment_through_htmx_and_keeps_a_refresh_link(
    luigi, buyer, restaurant
):
    place_order(buyer, restaurant)

    html = luigi.get(QUEUE).content.decode()

    assert (
        f'<div id="seller-queue" hx-get="{FRAGMENT}" hx-trigger="every 10s" hx-swap="innerHTML">'
        in html
    )
    assert f'<a href="{QUEUE}" class="button secondary" id="seller-queue-refresh">Refresh</a>' in (
        html
    )
    assert "Updates itself every 10 seconds" in html


def test_htmx_is_served_from_static_and_no_script_is_inline(luigi, buyer, restaurant):
    place_order(buyer, restaurant)

    html = luigi.get(QUEUE).content.decode()

    sources = re.findall(r'<script src="([^"]+)"', html)
    assert "/static/django_htmx/htmx-2.min.js" in sources
    assert all(src.startswith("/static/") for src in sources)
    assert len(re.findall(r"<script\b", html)) == len(sources)
    assert "seller-queue.js" not in html
    assert finders.find("django_htmx/htmx-2.min.js") is not None
    assert finders.find("js/seller-queue.js") is None
    # htmx would otherwise add an inline <style> for its indicators (the coming CSP).
    assert '"includeIndicatorStyles": false' in html


def test_a_polled_fragment_marks_orders_it_already_showed_as_seen(luigi, buyer, restaurant, now):
    earlier = place_order(buyer, restaurant)
    now.shift(dt.timedelta(seconds=30))
    just_now = place_order(buyer, restaurant)

    response = luigi.get(FRAGMENT, headers=HTMX)

    assert 'class="card order-card alert-new seen"' in card(response, earlier)
    assert 'class="card order-card alert-new"' in card(response, just_now)
    # A full page load shows every incoming order as new.
    page = luigi.get(QUEUE)
    assert 'class="card order-card alert-new"' in card(page, earlier)


def test_signed_out_htmx_polls_are_sent_to_sign_in_as_a_whole_page(client, buyer, restaurant):
    order = place_order(buyer, restaurant)
    headers = {**HTMX, "HX-Current-URL": "http://testserver/seller/?restaurant=1"}

    poll = client.get(FRAGMENT, headers=headers)
    button = client.post(advance_url(order, "accept"), headers=headers)

    for response in (poll, button):
        assert response.status_code == 200
        assert response["HX-Redirect"] == f"{reverse('login')}?next=/seller/%3Frestaurant%3D1"
        assert response.content == b""
    order.refresh_from_db()
    assert order.status == "placed"


# -- the queue's buttons through htmx ---------------------------------------------------------


def test_an_htmx_button_answers_with_the_card_in_its_new_state(luigi, buyer, restaurant):
    order = place_order(buyer, restaurant)

    response = luigi.post(advance_url(order, "accept"), {"restaurant": restaurant.pk}, headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert [t.name for t in response.templates] == ["seller/_order_card.html"]
    assert html.lstrip().startswith(f'<article class="card order-card" id="order-{order.pk}"')
    assert f"Order #{order.pk}: Accepted by the restaurant." in html
    assert buttons(html) == [(advance_url(order, "start_preparation"), "Start preparing")]
    assert f'hx-post="{advance_url(order, "start_preparation")}"' in html
    assert f'hx-target="#order-{order.pk}"' in html
    assert f'<input type="hidden" name="restaurant" value="{restaurant.pk}">' in html
    order.refresh_from_db()
    assert order.status == "accepted"
    # The card said it: nothing is left over for the next page.
    assert messages_of(response) == []


def test_an_htmx_button_refused_shows_the_reason_on_the_card(luigi, buyer, restaurant):
    order = advance(place_order(buyer, restaurant), "accept")

    response = luigi.post(advance_url(order, "accept"), headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="message error card-message" role="alert"' in html
    assert f"Order #{order.pk}: " in html
    assert buttons(html) == [(advance_url(order, "start_preparation"), "Start preparing")]
    order.refresh_from_db()
    assert order.status == "accepted"
    assert OrderEvent.objects.filter(order=order, name="accept").count() == 1


def test_the_last_htmx_step_leaves_a_card_without_buttons(luigi, buyer, restaurant):
    order = advance(
        place_order(buyer, restaurant), "accept", "start_preparation", "mark_ready", "dispatch"
    )

    response = luigi.post(advance_url(order, "deliver"), headers=HTMX)

    html = response.content.decode()
    assert buttons(html) == []
    assert f"Order #{order.pk}: Delivered." in html
    assert "Delivered" in html


def test_an_htmx_button_on_another_restaurants_order_is_a_404(luigi, other_restaurant, other_buyer):
    order = place_order(other_buyer, other_restaurant)

    response = luigi.post(advance_url(order, "accept"), headers=HTMX)

    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == "placed"


# -- query counts -------------------------------------------------------------------------


def _fill_queue(buyer, restaurant, menu, count):
    """`count` open orders of two lines each, in every open state the queue shows."""
    steps = [
        (),
        ("accept",),
        ("accept", "start_preparation"),
        ("accept", "start_preparation", "mark_ready"),
        ("accept", "start_preparation", "mark_ready", "dispatch"),
    ]
    for n in range(count):
        order = place_order(buyer, restaurant, {menu["Margherita"]: 1, menu["Tiramisu"]: 2})
        advance(order, *steps[n % len(steps)])
    delivered = place_order(buyer, restaurant)
    advance(delivered, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


@pytest.mark.parametrize("count", [1, 12])
def test_queue_query_count_is_constant(
    luigi, buyer, restaurant, menu, django_assert_num_queries, count
):
    _fill_queue(buyer, restaurant, menu, count)

    # user (the session is in Redis), the partner's restaurants, open orders, their items, recently
    # finished, and the header's "is a partner" check in base.html
    with django_assert_num_queries(6):
        response = luigi.get(QUEUE)

    assert len(response.context["incoming"]) + len(response.context["in_progress"]) == count


@pytest.mark.parametrize("count", [1, 12])
def test_fragment_query_count_is_constant(
    luigi, buyer, restaurant, menu, django_assert_num_queries, count
):
    _fill_queue(buyer, restaurant, menu, count)

    with django_assert_num_queries(5):
        response = luigi.get(FRAGMENT, headers=HTMX)

    assert response.content.decode().count('class="card order-card') == count
