"""`POST /api/orders/{id}/report-missing/` and `POST /api/seller/orders/{id}/locate/` (D-10,
L-6.2): what they answer, refusals as 409 with the clause, and every role x endpoint."""

import pytest

from core.models import Notification
from disputes.models import Intervention
from orders.models import Order, OrderEvent
from orders.services.missing import order_report_missing
from refunds.models import Refund
from tests.conftest import advance, place_order, token_client

pytestmark = pytest.mark.django_db


def report_url(order_id):
    return f"/api/orders/{order_id}/report-missing/"


def locate_url(order_id):
    return f"/api/seller/orders/{order_id}/locate/"


def out_for_delivery(buyer, restaurant):
    order = place_order(buyer, restaurant)
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch")


def reported(buyer, restaurant):
    order = out_for_delivery(buyer, restaurant)
    return order_report_missing(order_id=order.pk, actor=buyer)


def unchanged(order, status, events):
    return Order.objects.get(pk=order.pk).status == status and (
        OrderEvent.objects.filter(order=order).count() == events
    )


def test_buyer_reports_missing_and_reads_the_order_back(api_as, buyer, restaurant):
    order = out_for_delivery(buyer, restaurant)

    response = api_as(buyer).post(report_url(order.pk))

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"]) == (order.pk, "missing")
    assert (
        Intervention.objects.filter(order=order, kind="missing_order", status="open").count() == 1
    )


def test_a_refused_report_is_a_409_with_the_clause(api_as, buyer, restaurant):
    order = advance(place_order(buyer, restaurant), "accept")
    events = OrderEvent.objects.filter(order=order).count()

    response = api_as(buyer).post(report_url(order.pk))

    assert response.status_code == 409
    assert response.json() == {
        "code": "not_out_for_delivery",
        "detail": "An order can be reported missing once it is out for delivery.",
        "clauses": ["L-6.2"],
    }
    assert unchanged(order, "accepted", events)
    assert not Intervention.objects.exists()


def test_a_repeated_report_with_its_idempotency_key_replays_it(api_as, buyer, restaurant):
    order = out_for_delivery(buyer, restaurant)
    client = api_as(buyer)

    first = client.post(report_url(order.pk), HTTP_IDEMPOTENCY_KEY="never-came-1")
    again = client.post(report_url(order.pk), HTTP_IDEMPOTENCY_KEY="never-came-1")

    assert (first.status_code, again.status_code) == (200, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert order.events.filter(name="report_missing").count() == 1


def test_partner_locates_a_missing_order(api_as, buyer, partner, restaurant):
    order = reported(buyer, restaurant)

    response = api_as(partner).post(locate_url(order.pk))

    assert response.status_code == 200
    assert response.json()["status"] == "delivered"
    assert Intervention.objects.get(order=order).status == "resolved"
    assert Refund.objects.count() == 0


def test_locating_an_order_that_is_not_missing_is_a_409(api_as, buyer, partner, restaurant):
    order = out_for_delivery(buyer, restaurant)

    response = api_as(partner).post(locate_url(order.pk))

    assert response.status_code == 409
    assert response.json()["code"] == "not_missing"
    assert response.json()["clauses"] == ["L-6.2"]
    assert Order.objects.get(pk=order.pk).status == "out_for_delivery"


# -- who may do what: role x endpoint ------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 200),
        ("other_buyer", 404),
        ("partner", 404),
        ("other_partner", 404),
        ("agent", 404),
        ("supervisor", 404),
    ],
)
def test_matrix_report_missing(users, restaurant, role, expected):
    order = out_for_delivery(users["buyer"], restaurant)
    events = OrderEvent.objects.filter(order=order).count()
    notifications = Notification.objects.count()

    response = token_client(users[role]).post(report_url(order.pk))

    assert response.status_code == expected
    if expected == 200:
        assert Order.objects.get(pk=order.pk).status == "missing"
    else:
        assert unchanged(order, "out_for_delivery", events)
        assert Notification.objects.count() == notifications
        assert not Intervention.objects.exists()


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
def test_matrix_locate(users, restaurant, role, expected):
    order = reported(users["buyer"], restaurant)
    events = OrderEvent.objects.filter(order=order).count()

    response = token_client(users[role]).post(locate_url(order.pk))

    assert response.status_code == expected
    if expected == 200:
        assert Order.objects.get(pk=order.pk).status == "delivered"
        assert Intervention.objects.get(order=order).status == "resolved"
    else:
        assert unchanged(order, "missing", events)
        assert Intervention.objects.get(order=order).status == "open"


@pytest.mark.parametrize("url", [report_url(987654), locate_url(987654)])
def test_an_order_that_does_not_exist_is_a_404(users, restaurant, url):
    client = token_client(users["partner" if "seller" in url else "buyer"])
    assert client.post(url).status_code == 404
