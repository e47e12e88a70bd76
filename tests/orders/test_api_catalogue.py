"""The catalogue API (D-10): restaurants, open ones first, with their hours and cancellation
terms, and their menus; open to anyone, read-only. The role x endpoint matrix and the query
counts of these endpoints are in tests/orders/test_api.py with the other orders endpoints."""

import datetime as dt
from decimal import Decimal as D

import pytest
from rest_framework.pagination import PageNumberPagination
from rest_framework.test import APIClient

from orders.models import Restaurant
from orders.selectors import restaurant_catalogue
from tests.conftest import NOW
from tests.factories import MenuItemFactory, RestaurantFactory

pytestmark = pytest.mark.django_db

RESTAURANTS = "/api/restaurants/"


def menu_url(restaurant_id) -> str:
    return f"{RESTAURANTS}{restaurant_id}/menu/"


def _hours(restaurant, opens, closes):
    restaurant.opens_at, restaurant.closes_at = opens, closes
    restaurant.save(update_fields=["opens_at", "closes_at"])


def test_restaurants_open_ones_first_with_hours_and_terms(now, restaurant):
    """At noon UTC (the test time zone's noon too): Roma is open around the clock, Aurora
    opens in the evening, Zeno's hours are 09:00-15:00, Nocturne runs past midnight."""
    aurora = RestaurantFactory(name="Aurora", slug="aurora", offers_dine_in=False)
    _hours(aurora, dt.time(18, 0), dt.time(23, 0))
    zeno = RestaurantFactory(name="Zeno", slug="zeno", cancellation_window_minutes=12,
                             cancellation_fee_percent=D("12.5"), delivery_fee=D("1.5"))  # fmt: skip
    _hours(zeno, dt.time(9, 0), dt.time(15, 0))
    nocturne = RestaurantFactory(name="Nocturne", slug="nocturne")
    _hours(nocturne, dt.time(20, 0), dt.time(2, 0))

    response = APIClient().get(RESTAURANTS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert [(r["name"], r["is_open"]) for r in body["results"]] == [
        ("Trattoria Roma", True), ("Zeno", True), ("Aurora", False), ("Nocturne", False),
    ]  # fmt: skip
    assert body["results"][1] == {
        "id": zeno.pk,
        "name": "Zeno",
        "slug": "zeno",
        "description": "",
        "address": "1 Market Street",
        "is_open": True,
        "opening_hours": {"opens_at": "09:00", "closes_at": "15:00", "around_the_clock": False},
        "fulfillment": ["delivery", "pickup", "dine_in"],
        "delivery_fee": "1.50",
        "cancellation": {
            "window_minutes": 12,
            "fee_percent": "12.50",
            "clauses": ["K-B1", "L-2.1"],
        },
        "menu": f"/api/restaurants/{zeno.pk}/menu/",
    }
    assert body["results"][0]["opening_hours"]["around_the_clock"] is True
    assert body["results"][2]["fulfillment"] == ["delivery", "pickup"]


@pytest.mark.parametrize(
    ("opens", "closes", "local_time", "expected"),
    [
        pytest.param(dt.time(0), dt.time(0), dt.time(3, 0), True, id="around the clock"),
        pytest.param(dt.time(9), dt.time(15), dt.time(9, 0), True, id="at opening"),
        pytest.param(dt.time(9), dt.time(15), dt.time(14, 59), True, id="before closing"),
        pytest.param(dt.time(9), dt.time(15), dt.time(15, 0), False, id="at closing"),
        pytest.param(dt.time(9), dt.time(15), dt.time(8, 59), False, id="before opening"),
        pytest.param(dt.time(20), dt.time(2), dt.time(23, 0), True, id="late evening"),
        pytest.param(dt.time(20), dt.time(2), dt.time(1, 59), True, id="after midnight"),
        pytest.param(dt.time(20), dt.time(2), dt.time(2, 0), False, id="closed past midnight"),
        pytest.param(dt.time(20), dt.time(2), dt.time(12, 0), False, id="closed at noon"),
    ],
)
def test_the_catalogue_says_open_as_the_restaurant_does(opens, closes, local_time, expected):
    """The database's `is_open` agrees with `Restaurant.is_open_at`, which placing an order
    checks: the catalogue never shows open a restaurant that refuses the order."""
    restaurant = RestaurantFactory()
    _hours(restaurant, opens, closes)
    moment = dt.datetime.combine(NOW.date(), local_time, tzinfo=dt.UTC)

    assert restaurant_catalogue(moment).get().is_open is expected
    assert Restaurant.objects.get(pk=restaurant.pk).is_open_at(moment) is expected


def test_restaurants_are_paginated_like_the_other_lists(monkeypatch):
    monkeypatch.setattr(PageNumberPagination, "page_size", 2)
    for name in ["Cedro", "Alba", "Brace"]:
        RestaurantFactory(name=name)

    first = APIClient().get(RESTAURANTS).json()
    assert first["next"] == "http://testserver/api/restaurants/?page=2"
    second = APIClient().get(RESTAURANTS, {"page": 2}).json()

    assert first["count"] == 3
    assert [r["name"] for r in first["results"]] == ["Alba", "Brace"]
    assert [r["name"] for r in second["results"]] == ["Cedro"]
    assert second["next"] is None


def test_menu_lists_the_dishes_available_first(restaurant, menu):
    MenuItemFactory(restaurant=restaurant, name="Bruschetta", price=D("4.5"),
                    allergens=["gluten"], description="Tomato and basil on toast")  # fmt: skip
    menu["Lemonade"].is_available = False
    menu["Lemonade"].save(update_fields=["is_available"])
    MenuItemFactory(restaurant=RestaurantFactory(), name="Elsewhere")

    response = APIClient().get(menu_url(restaurant.pk))

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(i["name"], i["price"], i["available"]) for i in results] == [
        ("Bruschetta", "4.50", True),
        ("Margherita", "12.50", True),
        ("Tiramisu", "6.00", True),
        ("Lemonade", "3.25", False),
    ]
    assert results[0] == {
        "id": results[0]["id"],
        "name": "Bruschetta",
        "description": "Tomato and basil on toast",
        "price": "4.50",
        "allergens": ["gluten"],
        "available": True,
        "promotional": False,
    }


def test_a_dish_sold_out_today_is_unavailable_until_tomorrow(now, restaurant, menu):
    """The partner's "sold out today" (`unavailable_on`) counts for this local day only: the
    same as placing an order checks (`MenuItem.is_available_on`)."""
    today = NOW.date()
    menu["Tiramisu"].unavailable_on = today
    menu["Tiramisu"].save(update_fields=["unavailable_on"])
    menu["Lemonade"].unavailable_on = today - dt.timedelta(days=1)
    menu["Lemonade"].save(update_fields=["unavailable_on"])

    results = APIClient().get(menu_url(restaurant.pk)).json()["results"]

    assert [(i["name"], i["available"]) for i in results] == [
        ("Lemonade", True), ("Margherita", True), ("Tiramisu", False),
    ]  # fmt: skip
    for item in restaurant.menu.all():
        assert item.is_available_on(today) is (item.name != "Tiramisu")


@pytest.mark.parametrize("restaurant_id", [987654, 10**20], ids=["unknown", "beyond bigint"])
def test_menu_of_an_unknown_restaurant_is_a_404(restaurant_id):
    response = APIClient().get(menu_url(restaurant_id))
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "detail": f"There is no restaurant {restaurant_id}.",
    }


@pytest.mark.parametrize("url", [RESTAURANTS, "MENU"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_catalogue_is_read_only(api_as, partner, restaurant, url, method):
    url = menu_url(restaurant.pk) if url == "MENU" else url
    before = list(Restaurant.objects.values()), list(restaurant.menu.values())

    response = getattr(api_as(partner), method)(url, {"name": "Mine"}, format="json")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert (list(Restaurant.objects.values()), list(restaurant.menu.values())) == before


def test_a_wrong_token_is_a_401_even_where_anonymous_may_read(restaurant):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = client.get(RESTAURANTS)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
