"""The buyer's orders API (D-10): listing, placing and reading orders, who may see what,
bad input that changes nothing, token sign-in and the schema."""

import datetime as dt
import json
from decimal import Decimal as D

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from credits.models import CreditGrant, CreditTransaction, DiscountCode
from orders.models import Order, OrderEvent, OrderItem, Payment
from refunds.services.execution import refund_order
from tests.conftest import (
    advance,
    give_credit,
    place_order,
    processor_charges,
    processor_refunds,
    refunds_processed,
    token_client,
)
from tests.factories import DiscountCodeFactory, MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = pytest.mark.django_db

ORDERS = "/api/orders/"
ROLES = ["anonymous", "buyer", "other_buyer", "partner", "other_partner", "agent"]


def order_url(order_id) -> str:
    return f"{ORDERS}{order_id}/"


def order_body(restaurant, menu, **overrides) -> dict:
    body = {
        "restaurant": restaurant.pk,
        "items": [{"menu_item": menu["Margherita"].pk, "quantity": 2}],
        "fulfillment": "delivery",
        "delivery_address": "7 Harbour Road",
    }
    return body | overrides


def counts() -> dict:
    models = [Order, OrderItem, OrderEvent, Payment, CreditTransaction]
    counts = {model.__name__: model.objects.count() for model in models}
    return counts | {"processor": len(processor_charges()) + len(processor_refunds())}


# -- listing -------------------------------------------------------------------------------


def test_list_shows_the_buyers_own_orders_newest_first(
    api_as, buyer, other_buyer, restaurant, menu
):
    first = place_order(buyer, restaurant, {menu["Margherita"]: 2})
    second = place_order(buyer, restaurant, {menu["Tiramisu"]: 1}, fulfillment="pickup")
    place_order(other_buyer, restaurant, {menu["Lemonade"]: 1})

    response = api_as(buyer).get(ORDERS)

    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert response.json()["results"] == [
        {
            "id": second.pk,
            "status": "placed",
            "fulfillment": "pickup",
            "restaurant": {"id": restaurant.pk, "name": "Trattoria Roma", "slug": "roma"},
            "total": "6.00",
            "amount_paid": "6.00",
            "placed_at": _iso(second.placed_at),
            "estimated_ready_at": _iso(second.estimated_ready_at),
            "estimated_delivery_at": None,
        },
        {
            "id": first.pk,
            "status": "placed",
            "fulfillment": "delivery",
            "restaurant": {"id": restaurant.pk, "name": "Trattoria Roma", "slug": "roma"},
            "total": "27.99",
            "amount_paid": "27.99",
            "placed_at": _iso(first.placed_at),
            "estimated_ready_at": _iso(first.estimated_ready_at),
            "estimated_delivery_at": _iso(first.estimated_delivery_at),
        },
    ]


def _iso(moment: dt.datetime) -> str:
    return timezone.localtime(moment).isoformat().replace("+00:00", "Z")


def test_list_query_count_does_not_grow_with_orders(
    api_as, buyer, restaurant, menu, django_assert_num_queries
):
    client = api_as(buyer)
    place_order(buyer, restaurant)
    with django_assert_num_queries(2):  # count + one page with its restaurants
        assert len(client.get(ORDERS).json()["results"]) == 1
    for _ in range(6):
        place_order(buyer, restaurant, {menu["Tiramisu"]: 3})
    with django_assert_num_queries(2):
        assert len(client.get(ORDERS).json()["results"]) == 7


def test_restaurant_list_query_count_does_not_grow_with_restaurants(
    api_client, restaurant, django_assert_num_queries
):
    with django_assert_num_queries(2):  # count + one page, `is_open` computed in the query
        assert len(api_client.get("/api/restaurants/").json()["results"]) == 1
    for _ in range(8):
        RestaurantFactory()
    with django_assert_num_queries(2):
        assert len(api_client.get("/api/restaurants/").json()["results"]) == 9


def test_menu_query_count_does_not_grow_with_items(
    api_client, restaurant, django_assert_num_queries
):
    url = f"/api/restaurants/{restaurant.pk}/menu/"
    with django_assert_num_queries(3):  # the restaurant, count, one page
        assert len(api_client.get(url).json()["results"]) == 3
    for _ in range(12):
        MenuItemFactory(restaurant=restaurant, allergens=["milk", "nuts"])
    with django_assert_num_queries(3):
        assert len(api_client.get(url).json()["results"]) == 15


# -- placing ---------------------------------------------------------------------------------


def test_place_order_answers_201_with_the_order_detail(api_as, buyer, restaurant, menu):
    response = api_as(buyer).post(
        ORDERS,
        order_body(
            restaurant,
            menu,
            items=[
                {"menu_item": menu["Margherita"].pk, "quantity": 2},
                {"menu_item": menu["Tiramisu"].pk, "quantity": 1},
            ],
        ),
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    order = Order.objects.get()
    assert (order.buyer, order.total) == (buyer, D("33.99"))
    assert body["id"] == order.pk
    assert (body["status"], body["fulfillment"], body["delivery_address"]) == (
        "placed", "delivery", "7 Harbour Road",
    )  # fmt: skip
    assert {name: body[name] for name in MONEY_FIELDS} == {
        "subtotal": "31.00",
        "delivery_fee": "2.99",
        "discount_amount": "0.00",
        "promo_credit_applied": "0.00",
        "account_credit_applied": "0.00",
        "amount_charged": "33.99",
        "total": "33.99",
        "amount_paid": "33.99",
    }
    assert [
        (i["name"], i["unit_price"], i["quantity"], i["line_total"]) for i in body["items"]
    ] == [
        ("Margherita", "12.50", 2, "25.00"),
        ("Tiramisu", "6.00", 1, "6.00"),
    ]
    assert [(p["amount"], p["status"]) for p in body["payments"]] == [("33.99", "succeeded")]
    assert body["refunds"] == []
    assert [
        (e["kind"], e["name"], e["from_status"], e["to_status"], e["actor_role"], e["amount"])
        for e in body["timeline"]
    ] == [
        ("transition", "place", "", "placed", "buyer", "33.99"),
        ("payment", "charge", "", "", "system", "33.99"),
    ]
    assert body["timeline"][0]["message"] == "Order placed at Trattoria Roma."
    assert body["policy_version"] == "1"
    assert body["discount_code"] is None


MONEY_FIELDS = [
    "subtotal",
    "delivery_fee",
    "discount_amount",
    "promo_credit_applied",
    "account_credit_applied",
    "amount_charged",
    "total",
    "amount_paid",
]


def test_place_order_with_code_and_credit(api_as, buyer, restaurant, menu):
    DiscountCodeFactory(code="WELCOME5", amount_off=D("5.00"))
    give_credit(buyer, "3.00", kind="promo")
    give_credit(buyer, "4.00", kind="account")

    response = api_as(buyer).post(
        ORDERS,
        order_body(
            restaurant,
            menu,
            items=[
                {"menu_item": menu["Margherita"].pk, "quantity": 2},
                {"menu_item": menu["Tiramisu"].pk, "quantity": 1},
            ],
            discount_code="welcome5",
            use_credit=True,
        ),
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert [body[name] for name in MONEY_FIELDS] == [
        "31.00", "2.99", "5.00", "3.00", "4.00", "21.99", "28.99", "25.99",
    ]  # fmt: skip
    assert body["discount_code"] == "WELCOME5"
    assert DiscountCode.objects.get().redeemed_by == buyer


def test_pickup_order_needs_no_address(api_as, buyer, restaurant, menu):
    body = order_body(restaurant, menu, fulfillment="pickup")
    del body["delivery_address"]
    response = api_as(buyer).post(ORDERS, body, format="json")
    assert response.status_code == 201
    assert (response.json()["delivery_fee"], response.json()["total"]) == ("0.00", "25.00")


# -- the detail ------------------------------------------------------------------------------


def test_detail_shows_times_refunds_and_the_timeline(api_as, buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2})
    order = advance(order, "accept")
    refund_order(
        order_id=order.pk,
        amount=D("5.00"),
        method="original",
        idempotency_key="goodwill-1",
        actor=None,
        role="policy",
        reason="Sorry for the wait",
        clauses=["L-6.1"],
    )
    refunds_processed()

    response = api_as(buyer).get(order_url(order.pk))

    assert response.status_code == 200
    body = response.json()
    order.refresh_from_db()
    assert body["status"] == "accepted"
    assert body["accepted_at"] == _iso(order.accepted_at)
    assert body["estimated_delivery_at"] == _iso(order.estimated_delivery_at)
    assert (body["delivered_at"], body["cancelled_at"]) == (None, None)
    assert [
        (r["amount"], r["destination"], r["status"], r["clauses"]) for r in body["refunds"]
    ] == [("5.00", "card", "succeeded", ["L-6.1"])]
    assert [(e["name"], e["from_status"], e["to_status"]) for e in body["timeline"]][:3] == [
        ("place", "", "placed"),
        ("charge", "", ""),
        ("accept", "placed", "accepted"),
    ]
    assert body["timeline"][2]["actor_role"] == "restaurant"
    assert set(body["timeline"][0]) == {
        "at", "kind", "name", "from_status", "to_status", "actor_role", "message", "clauses",
        "amount",
    }  # fmt: skip


def test_detail_query_count_does_not_grow_with_lines_and_events(
    api_as, buyer, restaurant, menu, django_assert_num_queries
):
    client = api_as(buyer)
    small = place_order(buyer, restaurant)
    big = place_order(buyer, restaurant, {item: 2 for item in menu.values()})
    advance(big, "accept", "start_preparation", "mark_ready")
    with django_assert_num_queries(5):  # order, items, payments, refunds, events
        client.get(order_url(small.pk))
    with django_assert_num_queries(5):
        client.get(order_url(big.pk))


# -- who may do what: role x endpoint ------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 200),
        ("other_buyer", 200),
        ("partner", 200),
        ("other_partner", 200),
        ("agent", 200),
    ],
)
def test_matrix_list_orders(users, restaurant, role, expected):
    order = place_order(users["buyer"], restaurant)
    response = token_client(users[role]).get(ORDERS)
    assert response.status_code == expected
    if expected == 200:
        visible = [o["id"] for o in response.json()["results"]]
        assert visible == ([order.pk] if role == "buyer" else [])


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 201),
        ("other_buyer", 201),
        ("partner", 201),
        ("other_partner", 201),
        ("agent", 201),
    ],
)
def test_matrix_place_order(users, restaurant, menu, role, expected):
    response = token_client(users[role]).post(ORDERS, order_body(restaurant, menu), format="json")
    assert response.status_code == expected
    if expected == 201:
        assert Order.objects.get().buyer == users[role]
    else:
        assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 200),
        ("other_buyer", 404),
        ("partner", 404),
        ("other_partner", 404),
        ("agent", 404),
    ],
)
def test_matrix_order_detail(users, restaurant, role, expected):
    order = place_order(users["buyer"], restaurant)
    response = token_client(users[role]).get(order_url(order.pk))
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["id"] == order.pk
    else:
        assert set(response.json()) == {"code", "detail"}
        assert "total" not in response.json()


@pytest.mark.parametrize("role", ROLES)
def test_matrix_restaurants(users, restaurant, role):
    """Browsing needs no account: everyone, anonymous included, sees every restaurant."""
    response = token_client(users[role]).get("/api/restaurants/")
    assert response.status_code == 200
    names = [r["name"] for r in response.json()["results"]]
    assert names == ["Osteria Blu", "Trattoria Roma"]


@pytest.mark.parametrize("role", ROLES)
def test_matrix_restaurant_menu(users, restaurant, menu, role):
    """Every role reads every restaurant's menu, its own partners' or not; no one writes
    (partners change their menus in the seller portal)."""
    client = token_client(users[role])
    response = client.get(f"/api/restaurants/{restaurant.pk}/menu/")
    assert response.status_code == 200
    assert {item["id"] for item in response.json()["results"]} == {i.pk for i in menu.values()}
    response = client.post(f"/api/restaurants/{restaurant.pk}/menu/", {}, format="json")
    assert response.status_code == 405


def test_anonymous_is_asked_for_a_token(restaurant):
    order = place_order(UserFactory(username="zoe"), restaurant)
    response = APIClient().get(order_url(order.pk))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["code"] == "not_authenticated"


def test_unknown_order_is_404(api_as, buyer):
    response = api_as(buyer).get(order_url(987654))
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "You have no order 987654."}


# -- bad input: a clear 400 that changes nothing (D-11) -------------------------------------


def _closed_now(ctx):
    now = timezone.localtime()
    ctx.restaurant.opens_at = (now + dt.timedelta(hours=1)).time()
    ctx.restaurant.closes_at = (now + dt.timedelta(hours=2)).time()
    ctx.restaurant.save(update_fields=["opens_at", "closes_at"])


def _no_dine_in(ctx):
    ctx.restaurant.offers_dine_in = False
    ctx.restaurant.save(update_fields=["offers_dine_in"])


def _code_already_used(ctx):
    DiscountCodeFactory(code="ONCE")
    place_order(ctx.other_buyer, ctx.restaurant, discount_code="ONCE")


def _code_used_by_the_buyer(ctx):
    DiscountCodeFactory(code="MANY", is_multi_use=True)
    place_order(ctx.buyer, ctx.restaurant, discount_code="MANY")


def _lemonade_unavailable(ctx):
    ctx.menu["Lemonade"].is_available = False
    ctx.menu["Lemonade"].save(update_fields=["is_available"])


def _line(ctx, name="Margherita", quantity=1):
    return {"menu_item": ctx.menu[name].pk, "quantity": quantity}


BAD_INPUT = [
    # (case, setup, body from ctx, expected code)
    ("unknown menu item", None, lambda c: {"items": [{"menu_item": 999999, "quantity": 1}]},
     "unknown_menu_item"),
    ("negative menu item", None, lambda c: {"items": [{"menu_item": -3, "quantity": 1}]},
     "unknown_menu_item"),
    ("huge menu item id", None, lambda c: {"items": [{"menu_item": 10**20, "quantity": 1}]},
     "unknown_menu_item"),
    ("item from another restaurant", None,
     lambda c: {"items": [{"menu_item": c.foreign_item.pk, "quantity": 1}]},
     "item_from_other_restaurant"),
    ("unavailable item", _lemonade_unavailable, lambda c: {"items": [_line(c, "Lemonade")]},
     "item_unavailable"),
    ("quantity 0", None, lambda c: {"items": [_line(c, quantity=0)]}, "invalid_quantity"),
    ("quantity 10000", None, lambda c: {"items": [_line(c, quantity=10000)]}, "invalid_quantity"),
    ("negative quantity", None, lambda c: {"items": [_line(c, quantity=-2)]}, "invalid_quantity"),
    ("same item over the limit in two lines", None,
     lambda c: {"items": [_line(c, quantity=30), _line(c, quantity=30)]}, "invalid_quantity"),
    ("fractional quantity", None, lambda c: {"items": [_line(c, quantity=1.5)]}, "wrong_type"),
    ("quantity as words", None, lambda c: {"items": [_line(c, quantity="two")]}, "wrong_type"),
    ("line without quantity", None,
     lambda c: {"items": [{"menu_item": c.menu["Margherita"].pk}]}, "missing_field"),
    ("line that is not an object", None, lambda c: {"items": [5]}, "wrong_type"),
    ("no items", None, lambda c: {"items": []}, "empty_order"),
    ("items not a list", None, lambda c: {"items": "pizza"}, "wrong_type"),
    ("too many lines", None, lambda c: {"items": [_line(c)] * 31}, "too_many_lines"),
    ("missing items", None, lambda c: {"items": None}, "missing_field"),
    ("missing restaurant", None, lambda c: {"restaurant": None}, "missing_field"),
    ("missing fulfillment", None, lambda c: {"fulfillment": None}, "missing_field"),
    ("unknown restaurant", None, lambda c: {"restaurant": 999999}, "unknown_restaurant"),
    ("negative restaurant", None, lambda c: {"restaurant": -1}, "unknown_restaurant"),
    ("huge restaurant id", None, lambda c: {"restaurant": 10**20}, "unknown_restaurant"),
    ("restaurant as words", None, lambda c: {"restaurant": "roma"}, "wrong_type"),
    ("closed restaurant", _closed_now, lambda c: {}, "restaurant_closed"),
    ("unknown fulfillment", None, lambda c: {"fulfillment": "drone"}, "invalid_fulfillment"),
    ("fulfillment not offered", _no_dine_in, lambda c: {"fulfillment": "dine_in"},
     "fulfillment_not_offered"),
    ("delivery without address", None, lambda c: {"delivery_address": "  "}, "address_required"),
    ("address too long", None, lambda c: {"delivery_address": "x" * 241}, "too_long"),
    ("use_credit not a boolean", None, lambda c: {"use_credit": "maybe"}, "wrong_type"),
    ("unknown discount code", None, lambda c: {"discount_code": "NOPE"}, "code_unknown"),
    ("discount code used by someone", _code_already_used, lambda c: {"discount_code": "ONCE"},
     "code_used"),
    ("discount code used before by the buyer", _code_used_by_the_buyer,
     lambda c: {"discount_code": "MANY"}, "code_used"),
    ("discount code too long", None, lambda c: {"discount_code": "X" * 33}, "too_long"),
]  # fmt: skip


class Ctx:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


@pytest.mark.parametrize(
    ("setup", "make_changes", "code"),
    [pytest.param(setup, changes, code, id=case) for case, setup, changes, code in BAD_INPUT],
)
def test_bad_input_is_a_400_that_changes_nothing(
    api_as, buyer, other_buyer, restaurant, menu, setup, make_changes, code
):
    foreign_item = MenuItemFactory(name="Sushi", restaurant=RestaurantFactory(slug="sushi"))
    ctx = Ctx(buyer=buyer, other_buyer=other_buyer, restaurant=restaurant, menu=menu,
              foreign_item=foreign_item)  # fmt: skip
    if setup:
        setup(ctx)
    credit = give_credit(buyer, "5.00")
    codes_before = list(DiscountCode.objects.values_list("code", "redeemed_on_order"))
    before = counts()
    body = order_body(restaurant, menu, use_credit=True)
    for name, value in make_changes(ctx).items():
        if value is None:
            body.pop(name)
        else:
            body[name] = value

    response = api_as(buyer).post(ORDERS, body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert isinstance(response.json()["detail"], str)
    assert response.json()["detail"]
    assert counts() == before
    assert CreditGrant.objects.get(pk=credit.pk).remaining == D("5.00")
    assert list(DiscountCode.objects.values_list("code", "redeemed_on_order")) == codes_before


def test_bad_input_names_the_field(api_as, buyer, restaurant, menu):
    body = order_body(
        restaurant, menu, items=[_line(Ctx(menu=menu)), _line(Ctx(menu=menu), quantity=0)]
    )
    response = api_as(buyer).post(ORDERS, body, format="json")
    assert response.json() | {"errors": None} == {
        "code": "invalid_quantity",
        "detail": "items[1].quantity: Quantity must be between 1 and 50.",
        "field": "items[1].quantity",
        "errors": None,
    }


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        pytest.param(b'{"restaurant": 1, "items": [', "parse_error", id="malformed json"),
        pytest.param(b"", "missing_field", id="empty body"),
        pytest.param(b"[1, 2]", "wrong_type", id="a list, not an object"),
        pytest.param(b'"pizza"', "wrong_type", id="a string, not an object"),
    ],
)
def test_malformed_bodies_are_a_400(api_as, buyer, restaurant, payload, code):
    before = counts()
    response = api_as(buyer).post(ORDERS, payload, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert counts() == before


def test_a_form_post_is_unsupported(api_as, buyer, restaurant, menu):
    response = api_as(buyer).post(ORDERS, {"restaurant": restaurant.pk, "fulfillment": "pickup"})
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert not Order.objects.exists()


# -- signing in: POST /api/auth/token/ ------------------------------------------------------


def test_token_for_the_right_password_works_on_the_api(buyer, restaurant):
    response = APIClient().post(
        "/api/auth/token/", {"username": "ada", "password": "pass-word-123"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=buyer).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(ORDERS).status_code == 200


def test_wrong_password_gets_no_token(buyer):
    response = APIClient().post(
        "/api/auth/token/", {"username": "ada", "password": "guess"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credentials"
    assert response.json()["detail"] == "Unable to log in with provided credentials."
    assert not Token.objects.exists()


# -- the schema ------------------------------------------------------------------------------


def test_schema_builds_and_lists_the_endpoints(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = response.content.decode()
    for path in [
        "/api/orders/:",
        "/api/orders/{id}/:",
        "/api/credits/:",
        "/api/seller/orders/:",
        "/api/seller/orders/{id}/start-preparation/:",
    ]:
        assert path in schema
    assert "Idempotency-Key" in schema


def test_bodies_are_json(api_as, buyer, restaurant):
    order = place_order(buyer, restaurant)
    response = api_as(buyer).get(order_url(order.pk))
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["total"] == "15.49"
