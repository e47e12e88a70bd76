"""Force majeure in admin (L-10, L-6.1; issue 8 item 1): the late deliveries an open
force-majeure incident holds back from the automatic refund are listed for agents on the
incident and by an order list filter, the same orders the sweep holds, in a constant number of
queries."""

import datetime as dt
import re

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from disputes.models import Incident
from orders.models import PolicyVersion
from orders.services.delays import order_set_delay_cause
from refunds.models import Refund
from refunds.services.decisions import refund_request_approve
from refunds.services.requests import refund_request_submit
from refunds.tasks import auto_refund_late_orders
from tests.conftest import NOW, advance, place_order
from tests.factories import IncidentFactory, MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = pytest.mark.django_db

OUT = ("accept", "start_preparation", "mark_ready", "dispatch")
SWEPT_AT = NOW + dt.timedelta(hours=6)


def force_majeure(**kwargs) -> Incident:
    kwargs.setdefault("starts_at", NOW - dt.timedelta(hours=1))
    kwargs.setdefault("ends_at", NOW + dt.timedelta(hours=1))
    return IncidentFactory(kind=Incident.Kind.FORCE_MAJEURE, title="Flooding", **kwargs)


def late_on_its_way(buyer, restaurant):
    return advance(place_order(buyer, restaurant), *OUT)


def delivered_late(now, buyer, restaurant, minutes):
    order = late_on_its_way(buyer, restaurant)
    with_estimate = order.estimated_delivery_at
    now.move_to(with_estimate + dt.timedelta(minutes=minutes))
    order = advance(order, "deliver")
    now.move_to(NOW)
    return order


def held_on_page(response) -> list[int]:
    """The order ids in the incident page's held-orders table, top to bottom."""
    html = response.content.decode()
    table = re.search(r'<table class="held-orders">.*?</table>', html, re.S)
    if table is None:
        return []
    return [int(pk) for pk in re.findall(r"/admin/orders/order/(\d+)/change/", table.group(0))]


def estimate_order(order):
    return (order.estimated_delivery_at, order.pk)


def incident_page(client, incident):
    response = client.get(reverse("admin:disputes_incident_change", args=[incident.pk]))
    assert response.status_code == 200
    return response


def test_the_incident_lists_the_late_deliveries_it_holds_as_the_sweep_holds_them(
    now, admin_client, buyer, agent, partner, restaurant, menu
):
    incident = force_majeure()
    held_delivered = delivered_late(now, buyer, restaurant, minutes=130)
    held_on_its_way = late_on_its_way(buyer, restaurant)
    delivered_on_time = delivered_late(now, buyer, restaurant, minutes=10)
    pickup = advance(place_order(buyer, restaurant, fulfillment="pickup"), "accept")
    refunded = late_on_its_way(buyer, restaurant)
    now.move_to(refunded.estimated_delivery_at + dt.timedelta(minutes=30))
    claim = refund_request_submit(order_id=refunded.pk, actor=buyer, reason="not_delivered")
    refund_request_approve(request_id=claim.pk, actor=agent)
    PolicyVersion.objects.create(
        status="published",  # K-UP: only a published version applies
        label="2",
        effective_from=NOW + dt.timedelta(minutes=1),
        text="Weather and traffic delays are left to a request.",
        weather_blocks_automatic=True,
    )
    now.move_to(NOW + dt.timedelta(minutes=2))
    weather = late_on_its_way(buyer, restaurant)
    order_set_delay_cause(order_id=weather.pk, actor=partner, delay_cause="weather")
    now.move_to(incident.ends_at + dt.timedelta(minutes=1))
    after_the_window = late_on_its_way(buyer, restaurant)
    now.move_to(SWEPT_AT)

    listed = held_on_page(incident_page(admin_client, incident))
    swept = auto_refund_late_orders()

    oldest_estimate_first = sorted([held_delivered, held_on_its_way], key=estimate_order)
    assert listed == [order.pk for order in oldest_estimate_first]
    assert sorted(swept["held_for_agents"]) == sorted(listed)
    assert not Refund.objects.filter(order_id__in=listed).exists()
    assert Refund.objects.filter(order=after_the_window).count() == 1  # not covered: refunded
    assert {delivered_on_time.pk, pickup.pk, refunded.pk, weather.pk}.isdisjoint(listed)
    # Still held after the sweep ran: agents decide.
    page = incident_page(admin_client, incident)
    assert held_on_page(page) == listed
    row = re.search(rf"Order #{held_delivered.pk}</a>.*?</tr>", page.content.decode(), re.S)
    assert "130 minutes late" in row.group(0)
    assert f"{held_delivered.amount_paid} {settings.LOJIX_CURRENCY}" in row.group(0)


def test_the_order_list_filters_the_orders_held_for_agents(now, admin_client, buyer, restaurant):
    force_majeure(restaurants=[restaurant])
    held = late_on_its_way(buyer, restaurant)
    elsewhere = RestaurantFactory(name="Osteria Blu", members=[UserFactory()])
    MenuItemFactory(restaurant=elsewhere)
    not_held = late_on_its_way(buyer, elsewhere)
    now.move_to(SWEPT_AT)
    changelist = reverse("admin:orders_order_changelist")

    everything = admin_client.get(changelist).context["cl"].result_list
    filtered = admin_client.get(changelist, {"held": "yes"}).context["cl"].result_list

    assert {order.pk for order in everything} == {held.pk, not_held.pk}
    assert [order.pk for order in filtered] == [held.pk]


@pytest.mark.parametrize("case", ["closed", "another_restaurant"])
def test_an_incident_that_does_not_cover_the_order_lists_none(
    now, admin_client, buyer, restaurant, other_partner, case
):
    incident = force_majeure(
        status=Incident.Status.CLOSED if case == "closed" else Incident.Status.OPEN,
        restaurants=[other_partner.restaurants.first()] if case == "another_restaurant" else [],
    )
    late_on_its_way(buyer, restaurant)
    now.move_to(SWEPT_AT)

    page = incident_page(admin_client, incident)

    assert held_on_page(page) == []
    assert "None: no late delivery is waiting for an agent." in page.content.decode()


def test_only_a_force_majeure_incident_lists_held_orders(now, admin_client):
    outage = Incident.objects.create(kind=Incident.Kind.OUTAGE, title="Checkout down")

    page = incident_page(admin_client, outage)

    assert "Orders held for agents" not in page.content.decode()


def test_the_held_list_costs_the_same_queries_for_one_order_as_for_three(
    now, admin_client, buyer, restaurant
):
    incident = force_majeure()
    late_on_its_way(buyer, restaurant)
    now.move_to(SWEPT_AT)
    incident_page(admin_client, incident)  # warm up the session
    with CaptureQueriesContext(connection) as one_order:
        assert len(held_on_page(incident_page(admin_client, incident))) == 1
    now.move_to(NOW)
    for _ in range(2):
        late_on_its_way(UserFactory(), restaurant)
    now.move_to(SWEPT_AT)

    with CaptureQueriesContext(connection) as three_orders:
        assert len(held_on_page(incident_page(admin_client, incident))) == 3

    assert len(three_orders) == len(one_order)
