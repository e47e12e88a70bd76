"""A suspended buyer on the pages (L-8.2, D-4): signed in, they read their orders, requests and
wallet, with a clear explanation where the forms that start something new would be; a form
posted anyway is refused with the same reason and changes nothing; reinstated, they act again."""

import re
import uuid

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from disputes.services.suspensions import buyer_reinstate, buyer_suspend
from orders.models import Order
from refunds.models import RefundMessage, RefundRequest
from refunds.services.requests import refund_request_submit
from tests.conftest import advance, place_order

pytestmark = pytest.mark.django_db

DELIVER = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")
SUSPENDED = "Your account is suspended"


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).strip()


def instead(response) -> int:
    return response.content.decode().count("data-suspended-instead")


def claim(order) -> dict:
    """The report-a-problem form's POST data for a non-delivery claim."""
    data = {f"qty_{item.pk}": "0" for item in order.items.all()}
    return data | {
        "reason": "not_delivered",
        "description": "",
        "preferred_method": "original",
        "action": "submit",
    }


@pytest.fixture
def ada(client, buyer):
    client.force_login(buyer)
    return client


@pytest.fixture
def orders(now, buyer, restaurant, menu):
    """A placed order (cancellable), a delivered one (report a problem, report missing) and a
    request under review (reply)."""
    placed = place_order(buyer, restaurant)
    delivered = advance(place_order(buyer, restaurant), *DELIVER)
    reviewed = advance(place_order(buyer, restaurant), *DELIVER)
    request = refund_request_submit(
        order_id=reviewed.pk,
        actor=buyer,
        reason="missing_items",
        items=[(reviewed.items.get().pk, 1)],
        description="No pizza.",
    )
    return {"placed": placed, "delivered": delivered, "request": request}


@pytest.fixture
def suspended(buyer, supervisor):
    return buyer_suspend(buyer_id=buyer.pk, actor=supervisor, reason="Chargeback filed.")


def test_the_pages_explain_instead_of_showing_the_forms(ada, orders, suspended, menu):
    ada.post(reverse("orders:cart_add"), {"menu_item": menu["Margherita"].pk, "quantity": 1})
    pages = {
        "placed order": (orders["placed"].get_absolute_url(), 'href="/orders/'),
        "delivered order": (orders["delivered"].get_absolute_url(), "Report a problem</a>"),
        "report a problem": (
            reverse("refunds:new", args=[orders["delivered"].pk]),
            'name="reason"',
        ),
        "request": (orders["request"].get_absolute_url(), 'id="reply-form"'),
        "cart": (reverse("orders:cart"), 'class="checkout"'),
    }
    for name, (url, form_marker) in pages.items():
        response = ada.get(url)
        assert response.status_code == 200, name
        assert "data-account-suspended" in response.content.decode(), name
        assert SUSPENDED in text(response), name
        assert instead(response) >= 1, name
        if name != "placed order":
            assert form_marker not in response.content.decode(), name
    placed_page = ada.get(orders["placed"].get_absolute_url()).content.decode()
    assert reverse("orders:cancel", args=[orders["placed"].pk]) not in placed_page
    delivered_page = ada.get(orders["delivered"].get_absolute_url()).content.decode()
    assert reverse("orders:missing", args=[orders["delivered"].pk]) not in delivered_page


def test_reading_still_works(ada, orders, suspended):
    for url in (
        reverse("orders:list"),
        reverse("refunds:list"),
        reverse("credits:wallet"),
        orders["delivered"].get_absolute_url(),
        orders["request"].get_absolute_url(),
    ):
        response = ada.get(url)
        assert response.status_code == 200, url
    assert f"#{orders['delivered'].pk}" in text(ada.get(reverse("orders:list")))


def test_forms_posted_anyway_are_refused_and_change_nothing(ada, orders, suspended, menu):
    before = (
        list(Order.objects.values_list("pk", "status")),
        RefundRequest.objects.count(),
        RefundMessage.objects.count(),
    )
    ada.post(reverse("orders:cart_add"), {"menu_item": menu["Margherita"].pk, "quantity": 1})
    posts = [
        (
            reverse("orders:cart"),
            {
                "token": uuid.uuid4().hex,
                "fulfillment": "delivery",
                "delivery_address": "7 Harbour Road",
                "discount_code": "",
                "action": "place",
                f"qty_{menu['Margherita'].pk}": 1,
            },
        ),
        (reverse("orders:cancel", args=[orders["placed"].pk]), {"quote": "0.00"}),
        (reverse("orders:missing", args=[orders["delivered"].pk]), {}),
        (reverse("refunds:new", args=[orders["delivered"].pk]), claim(orders["delivered"])),
        (reverse("refunds:reply", args=[orders["request"].pk]), {"body": "Hello?"}),
    ]
    for url, data in posts:
        response = ada.post(url, data)
        assert response.status_code in (200, 302, 409), url
        said = [str(m) for m in get_messages(response.wsgi_request)]
        assert any(SUSPENDED in m and "L-8.2" in m for m in said), (url, said)

    after = (
        list(Order.objects.values_list("pk", "status")),
        RefundRequest.objects.count(),
        RefundMessage.objects.count(),
    )
    assert after == before


def test_reinstated_the_forms_come_back(ada, buyer, supervisor, orders, suspended):
    buyer_reinstate(buyer_id=buyer.pk, actor=supervisor)

    response = ada.get(orders["delivered"].get_absolute_url())

    assert "data-account-suspended" not in response.content.decode()
    assert instead(response) == 0
    assert "Report a problem</a>" in response.content.decode()
    submitted = ada.post(
        reverse("refunds:new", args=[orders["delivered"].pk]), claim(orders["delivered"])
    )
    assert submitted.status_code == 302
    assert RefundRequest.objects.filter(order=orders["delivered"]).count() == 1
