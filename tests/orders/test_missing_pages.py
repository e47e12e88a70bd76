"""Non-delivery on the pages (L-6.2, D-9): the buyer's "it never came" button with its
consequence, the seller portal's "found and delivered", and support's buttons in admin."""

import datetime as dt

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from disputes.models import Intervention
from orders.models import Order
from orders.services.missing import order_report_missing
from refunds.models import Refund
from tests.conftest import NOW, advance, place_order

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def out_for_delivery(buyer, restaurant):
    return advance(place_order(buyer, restaurant), "accept", "start_preparation", "mark_ready",
                   "dispatch")  # fmt: skip


def reported(buyer, restaurant):
    order = out_for_delivery(buyer, restaurant)
    return order_report_missing(order_id=order.pk, actor=buyer)


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_order_page_shows_the_consequence_before_the_buyer_reports(now, buyer, restaurant):
    order = out_for_delivery(buyer, restaurant)

    page = signed_in(buyer).get(order.get_absolute_url()).content.decode()

    assert "It never came: report it missing" in page
    assert reverse("orders:missing", args=[order.pk]) in page
    assert "The restaurant then has 60 minutes to find it" in page
    assert f"you get everything you paid back: <strong>{order.amount_paid} USD</strong>" in page
    assert 'href="/policy/#L-6.2"' in page


def test_the_button_is_not_offered_before_the_order_leaves(now, buyer, restaurant):
    order = advance(place_order(buyer, restaurant), "accept")

    page = signed_in(buyer).get(order.get_absolute_url()).content.decode()

    assert "report it missing" not in page


def test_the_buyer_reports_it_from_the_page(buyer, partner, restaurant):
    with time_machine.travel(NOW, tick=False):
        order = out_for_delivery(buyer, restaurant)
        response = signed_in(buyer).post(reverse("orders:missing", args=[order.pk]))

    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).status == "missing"
    assert texts(response) == [
        f"Order #{order.pk} reported missing. The restaurant is looking for it; if it is not "
        "found by Fri 20 Nov 2026, 13:00, you are refunded in full."
    ]
    with time_machine.travel(NOW + dt.timedelta(minutes=5), tick=False):
        page = signed_in(buyer).get(order.get_absolute_url()).content.decode()
    assert "If it is not found by <strong>13:00</strong>" in page


def test_a_refused_report_on_the_page_says_why_and_changes_nothing(now, buyer, restaurant):
    order = advance(place_order(buyer, restaurant), "accept")

    response = signed_in(buyer).post(reverse("orders:missing", args=[order.pk]))

    assert texts(response) == [
        "An order can be reported missing once it is out for delivery. Why? L-6.2"
    ]
    assert Order.objects.get(pk=order.pk).status == "accepted"
    assert not Intervention.objects.exists()


def test_another_buyers_order_is_a_404(now, buyer, other_buyer, restaurant):
    order = out_for_delivery(buyer, restaurant)

    response = signed_in(other_buyer).post(reverse("orders:missing", args=[order.pk]))

    assert response.status_code == 404
    assert Order.objects.get(pk=order.pk).status == "out_for_delivery"


def test_the_seller_queue_offers_found_and_delivered(now, buyer, partner, restaurant):
    order = reported(buyer, restaurant)
    locate = reverse("seller:locate", args=[order.pk])
    client = signed_in(partner)

    queue = client.get(reverse("seller:queue")).content.decode()
    detail = client.get(reverse("seller:order", args=[order.pk])).content.decode()
    response = client.post(locate)

    assert f'action="{locate}"' in queue
    assert "Found and delivered" in queue
    assert f'action="{locate}"' in detail
    assert texts(response) == [f"Order #{order.pk}: located and delivered."]
    assert Order.objects.get(pk=order.pk).status == "delivered"
    assert Intervention.objects.get(order=order).status == "resolved"


def test_another_restaurants_partner_cannot_locate(now, buyer, other_partner, restaurant):
    order = reported(buyer, restaurant)

    response = signed_in(other_partner).post(reverse("seller:locate", args=[order.pk]))

    assert response.status_code == 404
    assert Order.objects.get(pk=order.pk).status == "missing"


def test_support_sends_a_replacement_from_admin(now, buyer, agent, restaurant):
    order = reported(buyer, restaurant)
    client = signed_in(agent)
    change = reverse("admin:orders_order_change", args=[order.pk])
    replace = reverse("admin:orders_order_missing", args=[order.pk, "replace"])

    page = client.get(change).content.decode()
    response = client.post(replace)

    assert "Send a replacement instead of the refund" in page
    assert reverse("admin:orders_order_missing", args=[order.pk, "locate"]) in page
    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).status == "undeliverable"
    replacement = Order.objects.exclude(pk=order.pk).get()
    assert replacement.amount_charged == 0
    assert Intervention.objects.get(order=order).action_taken == (
        f"Replacement order #{replacement.pk} placed"
    )
    assert Refund.objects.count() == 0
    assert "Send a replacement" not in client.get(change).content.decode()
