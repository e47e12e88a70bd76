"""The delay cause (L-3.3): the service, the seller API, the seller portal, admin and the
buyer's order page."""

import re

import pytest

from core.errors import DomainError
from orders.models import Order, OrderEvent
from orders.services.cancellation import order_cancel_by_buyer
from orders.services.delays import order_set_delay_cause
from tests.conftest import advance, place_order, token_client

pytestmark = pytest.mark.django_db


def delay_url(order_id: int) -> str:
    return f"/api/seller/orders/{order_id}/delay/"


def _snapshot(order: Order) -> tuple:
    order.refresh_from_db()
    return order.delay_cause, order.status, order.events.count()


# -- the service ---------------------------------------------------------------------------


def test_partner_sets_the_cause_with_an_event_naming_who_and_the_clause(buyer, partner, restaurant):
    order = advance(place_order(buyer, restaurant), "accept", "start_preparation")

    result = order_set_delay_cause(order_id=order.pk, actor=partner, delay_cause="weather")

    assert result.delay_cause == "weather"
    assert Order.objects.get(pk=order.pk).delay_cause == "weather"
    event = order.events.order_by("-pk").first()
    assert (event.kind, event.name, event.actor, event.actor_role) == (
        "note", "set_delay_cause", partner, "restaurant",
    )  # fmt: skip
    assert (event.message, event.reason, event.clauses) == (
        "Delay cause: weather (was none).", "weather", ["L-3.3"],
    )  # fmt: skip
    assert (event.from_status, event.to_status) == ("", "")


def test_support_sets_it_for_the_restaurant_citing_k_ov(buyer, agent, restaurant):
    order = advance(place_order(buyer, restaurant), "accept", "start_preparation", "mark_ready",
                    "dispatch")  # fmt: skip

    order_set_delay_cause(order_id=order.pk, actor=agent, delay_cause="courier")

    event = order.events.order_by("-pk").first()
    assert (event.actor, event.actor_role, event.clauses) == (agent, "support", ["L-3.3", "K-OV"])
    assert Order.objects.get(pk=order.pk).delay_cause == "courier"


def test_the_same_cause_again_changes_nothing(buyer, partner, restaurant):
    order = advance(place_order(buyer, restaurant), "accept")
    order_set_delay_cause(order_id=order.pk, actor=partner, delay_cause="traffic")
    before = _snapshot(order)

    order_set_delay_cause(order_id=order.pk, actor=partner, delay_cause="traffic")

    assert _snapshot(order) == before


@pytest.mark.parametrize(
    ("case", "fulfillment", "actions", "cause", "code", "kind"),
    [
        ("unknown cause", "delivery", ("accept",), "rain", "invalid_delay_cause", "invalid"),
        ("pickup", "pickup", ("accept",), "weather", "not_a_delivery", "conflict"),
        ("dine-in", "dine_in", ("accept",), "weather", "not_a_delivery", "conflict"),
        ("delivered", "delivery",
         ("accept", "start_preparation", "mark_ready", "dispatch", "deliver"), "weather",
         "order_not_open", "conflict"),
    ],
)  # fmt: skip
def test_refusals_change_nothing(
    buyer, partner, restaurant, case, fulfillment, actions, cause, code, kind
):
    order = advance(place_order(buyer, restaurant, fulfillment=fulfillment), *actions)
    before = _snapshot(order)

    with pytest.raises(DomainError) as refused:
        order_set_delay_cause(order_id=order.pk, actor=partner, delay_cause=cause)

    assert (refused.value.code, refused.value.kind) == (code, kind)
    assert refused.value.clauses == (("L-3.3",))
    assert _snapshot(order) == before


def test_a_cancelled_order_is_refused(buyer, partner, restaurant):
    order = place_order(buyer, restaurant)
    order_id = order.pk
    order_cancel_by_buyer(order_id=order_id, actor=buyer)
    before = _snapshot(order)
    with pytest.raises(DomainError) as refused:
        order_set_delay_cause(order_id=order_id, actor=partner, delay_cause="weather")
    assert refused.value.code == "order_not_open"
    assert _snapshot(order) == before


def test_a_partner_of_another_restaurant_or_a_buyer_is_not_found(buyer, other_partner, restaurant):
    order = advance(place_order(buyer, restaurant), "accept")
    before = _snapshot(order)
    for actor in (other_partner, buyer):
        with pytest.raises(DomainError) as refused:
            order_set_delay_cause(order_id=order.pk, actor=actor, delay_cause="weather")
        assert refused.value.code == "not_found"
    assert _snapshot(order) == before


# -- the API -------------------------------------------------------------------------------


def test_api_sets_the_cause_and_the_buyer_sees_it_in_the_order_detail(
    api_as, buyer, partner, restaurant
):
    order = advance(place_order(buyer, restaurant), "accept")

    response = api_as(partner).post(delay_url(order.pk), {"delay_cause": "weather"}, format="json")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["delay_cause"]) == (order.pk, "weather")
    detail = api_as(buyer).get(f"/api/orders/{order.pk}/")
    assert detail.json()["delay_cause"] == "weather"
    assert detail.json()["timeline"][-1]["message"] == "Delay cause: weather (was none)."


@pytest.mark.parametrize(
    ("case", "body", "fulfillment", "status", "code"),
    [
        ("unknown cause", {"delay_cause": "rain"}, "delivery", 400, "invalid_delay_cause"),
        ("no cause", {}, "delivery", 400, "missing_field"),
        ("pickup", {"delay_cause": "weather"}, "pickup", 409, "not_a_delivery"),
    ],
)
def test_api_refusals_change_nothing(
    api_as, buyer, partner, restaurant, case, body, fulfillment, status, code
):
    order = advance(place_order(buyer, restaurant, fulfillment=fulfillment), "accept")
    before = _snapshot(order)

    response = api_as(partner).post(delay_url(order.pk), body, format="json")

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert _snapshot(order) == before


def test_api_on_a_delivered_order_is_a_409(api_as, buyer, partner, restaurant):
    order = advance(place_order(buyer, restaurant), "accept", "start_preparation", "mark_ready",
                    "dispatch", "deliver")  # fmt: skip
    response = api_as(partner).post(delay_url(order.pk), {"delay_cause": "weather"}, format="json")
    assert response.status_code == 409
    assert response.json() == {
        "code": "order_not_open",
        "detail": "The delay cause can only be set while the delivery is on its way (L-3.3).",
        "clauses": ["L-3.3"],
    }


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 403),
        ("other_buyer", 403),
        ("partner", 200),
        ("other_partner", 404),
        ("agent", 403),
        ("supervisor", 403),
    ],
)
def test_matrix_seller_delay(users, restaurant, role, expected):
    order = advance(place_order(users["buyer"], restaurant), "accept")
    before = _snapshot(order)

    response = token_client(users[role]).post(
        delay_url(order.pk), {"delay_cause": "traffic"}, format="json"
    )

    assert response.status_code == expected
    order.refresh_from_db()
    if expected == 200:
        assert order.delay_cause == "traffic"
        assert order.events.count() == before[2] + 1
    else:
        assert _snapshot(order) == before


def test_api_on_a_missing_order_id_is_a_404(api_as, partner, restaurant):
    response = api_as(partner).post(delay_url(987654), {"delay_cause": "weather"}, format="json")
    assert response.status_code == 404


# -- the seller portal ---------------------------------------------------------------------


def test_portal_form_on_the_order_page_sets_the_cause(client, buyer, partner, restaurant):
    order = advance(place_order(buyer, restaurant), "accept")
    client.force_login(partner)

    page = client.get(f"/seller/orders/{order.pk}/")
    assert page.status_code == 200
    assert f'action="/seller/orders/{order.pk}/delay/"' in page.content.decode()

    response = client.post(f"/seller/orders/{order.pk}/delay/", {"delay_cause": "restaurant"})

    assert (response.status_code, response["Location"]) == (302, f"/seller/orders/{order.pk}/")
    assert Order.objects.get(pk=order.pk).delay_cause == "restaurant"
    shown = client.get(response["Location"]).content.decode()
    assert f"Order #{order.pk}: delay cause restaurant." in shown
    assert '<dd class="delay-cause">Restaurant</dd>' in shown


def test_portal_has_no_form_on_a_pickup_and_refuses_it(client, buyer, partner, restaurant):
    order = advance(place_order(buyer, restaurant, fulfillment="pickup"), "accept")
    client.force_login(partner)
    assert "delay-form" not in client.get(f"/seller/orders/{order.pk}/").content.decode()
    before = _snapshot(order)

    response = client.post(f"/seller/orders/{order.pk}/delay/", {"delay_cause": "weather"})

    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Only a delivery order can be delayed (L-3.3)." in re.sub(r"<[^>]+>", "", page)
    assert 'href="/policy/#L-3.3"' in page  # the message links its clause (D-9)
    assert _snapshot(order) == before


def test_portal_refuses_an_unknown_cause_and_another_restaurants_order(
    client, buyer, partner, other_partner, restaurant
):
    order = advance(place_order(buyer, restaurant), "accept")
    before = _snapshot(order)
    client.force_login(partner)
    assert (
        client.post(f"/seller/orders/{order.pk}/delay/", {"delay_cause": "rain"}).status_code == 302
    )
    client.force_login(other_partner)
    assert (
        client.post(f"/seller/orders/{order.pk}/delay/", {"delay_cause": "weather"}).status_code
        == 404
    )
    assert _snapshot(order) == before


# -- the buyer's page and admin ------------------------------------------------------------


def test_buyer_page_says_why_the_order_is_late(client, buyer, partner, restaurant):
    order = advance(place_order(buyer, restaurant), "accept")
    client.force_login(buyer)
    assert "Delayed:" not in client.get(f"/orders/{order.pk}/").content.decode()

    order_set_delay_cause(order_id=order.pk, actor=partner, delay_cause="weather")

    assert "Delayed: weather" in client.get(f"/orders/{order.pk}/").content.decode()


def test_admin_action_sets_the_cause_through_the_service(client, agent, buyer, restaurant):
    delivery = advance(place_order(buyer, restaurant), "accept")
    pickup = advance(place_order(buyer, restaurant, fulfillment="pickup"), "accept")
    pickup_before = _snapshot(pickup)
    client.force_login(agent)

    response = client.post(
        "/admin/orders/order/",
        {"action": "set_delay_cause_weather", "_selected_action": [delivery.pk, pickup.pk]},
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert shown == [
        f"Order #{pickup.pk}: Only a delivery order can be delayed (L-3.3).",
        "Delay cause weather set on 1 order(s).",
    ]
    assert Order.objects.get(pk=delivery.pk).delay_cause == "weather"
    assert delivery.events.order_by("-pk").first().actor_role == OrderEvent.Role.SUPPORT
    assert _snapshot(pickup) == pickup_before
