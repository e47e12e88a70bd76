"""The seller API (D-10): a partner's orders and their lifecycle actions, and who may use it."""

import pytest

from orders.models import Order, OrderEvent
from tests.conftest import advance, place_order, token_client
from tests.factories import MenuItemFactory, RestaurantFactory

pytestmark = pytest.mark.django_db

SELLER_ORDERS = "/api/seller/orders/"


def action_url(order_id, action: str) -> str:
    return f"{SELLER_ORDERS}{order_id}/{action}/"


# -- the list ------------------------------------------------------------------------------


def test_list_shows_what_the_kitchen_needs_and_no_payment_details(
    api_as, partner, buyer, restaurant, menu
):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2, menu["Lemonade"]: 1})

    response = api_as(partner).get(SELLER_ORDERS)

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["id"] == order.pk
    assert (row["status"], row["fulfillment"], row["buyer_first_name"]) == (
        "placed", "delivery", "Ada",
    )  # fmt: skip
    assert row["delivery_address"] == "7 Harbour Road"
    assert row["subtotal"] == "28.25"
    assert [(i["name"], i["quantity"], i["unit_price"]) for i in row["items"]] == [
        ("Margherita", 2, "12.50"),
        ("Lemonade", 1, "3.25"),
    ]
    assert row["next_actions"] == ["accept"]
    assert set(row) == {
        "id", "status", "fulfillment", "restaurant", "buyer_first_name", "delivery_address",
        "items", "subtotal", "placed_at", "accepted_at", "preparation_started_at", "ready_at",
        "estimated_ready_at", "estimated_delivery_at", "delay_cause", "next_actions",
    }  # fmt: skip
    for secret in ["payments", "amount_charged", "amount_paid", "account_credit_applied"]:
        assert secret not in row
    assert "ada@example.com" not in response.content.decode()


def test_list_shows_only_the_partners_restaurants(api_as, other_partner, buyer, restaurant):
    place_order(buyer, restaurant)
    theirs = RestaurantFactory(slug="theirs", members=[other_partner])
    MenuItemFactory(restaurant=theirs)
    their_order = place_order(buyer, theirs)

    rows = api_as(other_partner).get(SELLER_ORDERS).json()["results"]

    assert [row["id"] for row in rows] == [their_order.pk]


def test_address_is_hidden_once_the_order_is_done(api_as, partner, buyer, restaurant):
    order = place_order(buyer, restaurant)
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    [row] = api_as(partner).get(SELLER_ORDERS).json()["results"]
    assert (row["status"], row["delivery_address"], row["next_actions"]) == ("delivered", "", [])


def test_list_filters_by_status(api_as, partner, buyer, restaurant):
    placed = place_order(buyer, restaurant)
    accepted = advance(place_order(buyer, restaurant), "accept")
    client = api_as(partner)
    assert [r["id"] for r in client.get(SELLER_ORDERS, {"status": "placed"}).json()["results"]] == [
        placed.pk
    ]
    rows = client.get(SELLER_ORDERS, {"status": "accepted"}).json()["results"]
    assert [(r["id"], r["next_actions"]) for r in rows] == [(accepted.pk, ["start-preparation"])]


def test_list_query_count_does_not_grow_with_orders(
    api_as, partner, buyer, restaurant, menu, django_assert_num_queries
):
    client = api_as(partner)
    place_order(buyer, restaurant)
    # membership check, count, page with restaurant and buyer, items
    with django_assert_num_queries(4):
        assert len(client.get(SELLER_ORDERS).json()["results"]) == 1
    for _ in range(5):
        advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 2}), "accept")
    with django_assert_num_queries(4):
        assert len(client.get(SELLER_ORDERS).json()["results"]) == 6


# -- lifecycle actions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fulfillment", "steps"),
    [
        pytest.param(
            "delivery",
            [
                ("accept", "accepted", ["start-preparation"]),
                ("start-preparation", "preparing", ["mark-ready"]),
                ("mark-ready", "ready", ["dispatch"]),
                ("dispatch", "out_for_delivery", ["deliver"]),
                ("deliver", "delivered", []),
            ],
            id="delivery",
        ),
        pytest.param(
            "pickup",
            [
                ("accept", "accepted", ["start-preparation"]),
                ("start-preparation", "preparing", ["mark-ready"]),
                ("mark-ready", "ready", ["hand-over"]),
                ("hand-over", "picked_up", []),
            ],
            id="pickup",
        ),
        pytest.param(
            "dine_in",
            [
                ("accept", "accepted", ["start-preparation"]),
                ("start-preparation", "preparing", ["mark-ready"]),
                ("mark-ready", "ready", ["serve"]),
                ("serve", "served", ["close"]),
                ("close", "closed", []),
            ],
            id="dine-in",
        ),
    ],
)
def test_partner_takes_an_order_through_its_lifecycle(
    api_as, partner, buyer, restaurant, fulfillment, steps
):
    order = place_order(buyer, restaurant, fulfillment=fulfillment)
    client = api_as(partner)

    for action, status, next_actions in steps:
        response = client.post(action_url(order.pk, action))
        assert response.status_code == 200, (action, response.content)
        assert (response.json()["status"], response.json()["next_actions"]) == (
            status,
            next_actions,
        )

    order.refresh_from_db()
    assert order.status == steps[-1][1]
    events = order.events.filter(kind=OrderEvent.Kind.TRANSITION).order_by("created_at", "pk")
    assert [(e.name, e.actor, e.actor_role) for e in events][1:] == [
        (action.replace("-", "_"), partner, "restaurant") for action, _, _ in steps
    ]


@pytest.mark.parametrize(
    ("fulfillment", "done", "action"),
    [
        pytest.param("delivery", [], "deliver", id="deliver a placed order"),
        pytest.param("delivery", [], "mark-ready", id="mark ready before preparing"),
        pytest.param("delivery", ["accept"], "accept", id="accept twice"),
        pytest.param(
            "delivery", ["accept", "start_preparation", "mark_ready"], "hand-over",
            id="hand over a delivery order",
        ),
        pytest.param(
            "pickup", ["accept", "start_preparation", "mark_ready"], "dispatch",
            id="dispatch a pickup order",
        ),
        pytest.param(
            "dine_in", ["accept", "start_preparation", "mark_ready"], "close",
            id="close before serving",
        ),
    ],
)  # fmt: skip
def test_an_action_the_state_does_not_allow_is_a_409(
    api_as, partner, buyer, restaurant, fulfillment, done, action
):
    order = advance(place_order(buyer, restaurant, fulfillment=fulfillment), *done)
    events_before = OrderEvent.objects.count()

    response = api_as(partner).post(action_url(order.pk, action))

    assert response.status_code == 409
    assert response.json()["code"] == "transition_not_allowed"
    assert response.json()["detail"].startswith(f"Cannot {action.replace('-', ' ')} an order")
    assert Order.objects.get(pk=order.pk).status == order.status
    assert OrderEvent.objects.count() == events_before


def test_another_restaurants_order_is_a_404(api_as, other_partner, buyer, restaurant):
    order = place_order(buyer, restaurant)
    response = api_as(other_partner).post(action_url(order.pk, "accept"))
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "detail": f"Your restaurants have no order {order.pk}.",
    }
    assert Order.objects.get(pk=order.pk).status == "placed"


def test_an_unknown_action_is_a_404(api_as, partner, buyer, restaurant):
    order = place_order(buyer, restaurant)
    for action in ["cancel_by_restaurant", "give-up", "start_preparation", "ACCEPT"]:
        assert api_as(partner).post(action_url(order.pk, action)).status_code == 404
    assert Order.objects.get(pk=order.pk).status == "placed"


def test_repeating_an_action_with_its_idempotency_key_replays_it(
    api_as, partner, buyer, restaurant
):
    order = place_order(buyer, restaurant)
    client = api_as(partner)

    first = client.post(action_url(order.pk, "accept"), HTTP_IDEMPOTENCY_KEY="tap-1")
    again = client.post(action_url(order.pk, "accept"), HTTP_IDEMPOTENCY_KEY="tap-1")
    without_key = client.post(action_url(order.pk, "accept"))

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert without_key.status_code == 409
    assert order.events.filter(name="accept").count() == 1


# -- who may do what: role x endpoint ------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 403),
        ("other_buyer", 403),
        ("partner", 200),
        ("other_partner", 200),
        ("agent", 403),
    ],
)
def test_matrix_seller_list(users, restaurant, role, expected):
    order = place_order(users["buyer"], restaurant)
    response = token_client(users[role]).get(SELLER_ORDERS)
    assert response.status_code == expected
    if expected == 200:
        rows = response.json()["results"]
        assert [r["id"] for r in rows] == ([order.pk] if role == "partner" else [])
    elif expected == 403:
        assert response.json() == {
            "code": "not_a_partner",
            "detail": "Only restaurant partners may use the seller API.",
        }


@pytest.mark.parametrize("action", ["accept", "start-preparation", "mark-ready", "dispatch",
                                    "deliver", "hand-over", "serve", "close"])  # fmt: skip
@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 403),
        ("other_buyer", 403),
        ("partner", None),  # 200 for the action the order is ready for, else 409
        ("other_partner", 404),
        ("agent", 403),
    ],
)
def test_matrix_seller_actions(users, restaurant, role, expected, action):
    order = place_order(users["buyer"], restaurant)  # placed: only `accept` is allowed
    events_before = OrderEvent.objects.count()

    response = token_client(users[role]).post(action_url(order.pk, action))

    if role == "partner":
        expected = 200 if action == "accept" else 409
    assert response.status_code == expected
    status = Order.objects.get(pk=order.pk).status
    if expected == 200:
        assert status == "accepted"
        assert OrderEvent.objects.count() == events_before + 1
    else:
        assert status == "placed"
        assert OrderEvent.objects.count() == events_before


def test_matrix_seller_action_on_a_missing_order_is_a_404(api_as, partner, restaurant):
    response = api_as(partner).post(action_url(987654, "accept"))
    assert response.status_code == 404


def test_an_unknown_status_filter_is_a_400(api_as, partner, restaurant):
    response = api_as(partner).get(SELLER_ORDERS, {"status": "bogus"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_choice"
    assert response.json()["detail"].startswith("status: Select a valid choice.")
