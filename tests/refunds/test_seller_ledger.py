"""Seller portal, ledger (journey "Restaurant partner" 5, L-9): every entry of the partner's
restaurants, newest first, with the total of each weekly payout period (Monday to Sunday in the
site's time zone) and the balance. Entries are booked by the services: a sale when an order is
delivered, the fee kept when the restaurant approves a buyer's cancellation."""

import datetime as dt
import re
import zoneinfo
from decimal import Decimal as D

import pytest
import time_machine
from django.urls import reverse

from orders import seller_views
from orders.services.cancellation import order_cancel_by_buyer, order_cancellation_approve
from refunds.models import RestaurantLedgerEntry
from refunds.selectors import LedgerPeriod
from tests.conftest import advance, place_order
from tests.factories import MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = pytest.mark.django_db

LEDGER = reverse("seller:ledger")
THURSDAY_WEEK_1 = dt.datetime(2026, 11, 12, 10, 0, tzinfo=dt.UTC)  # week of Mon 9 Nov
WEDNESDAY_WEEK_2 = dt.datetime(2026, 11, 18, 15, 0, tzinfo=dt.UTC)  # week of Mon 16 Nov
WEEK_1 = (dt.date(2026, 11, 9), dt.date(2026, 11, 15))
WEEK_2 = (dt.date(2026, 11, 16), dt.date(2026, 11, 22))


@pytest.fixture
def luigi(client, partner, restaurant):
    client.force_login(partner)
    return client


@pytest.fixture
def kyo(db):
    """A restaurant the partner is not a member of (unless a test adds them)."""
    restaurant = RestaurantFactory(
        name="Sushi Kyo", slug="kyo", members=[UserFactory(username="kenji")]
    )
    MenuItemFactory(restaurant=restaurant, name="Nigiri", price=D("9.00"))
    return restaurant


def deliver(order):
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def sold(buyer, restaurant, items=None):
    """An order delivered now: its sale is booked."""
    return deliver(place_order(buyer, restaurant, items))


def fee_kept(buyer, restaurant, items=None):
    """An order the buyer asked to cancel after acceptance and the restaurant let go: the fee
    (15 % of what was paid) is booked."""
    order = advance(place_order(buyer, restaurant, items), "accept")
    order_cancel_by_buyer(order_id=order.pk, actor=buyer)
    return order_cancellation_approve(order_id=order.pk, actor=restaurant.members.first())


def rows(response) -> list[str]:
    """The entry rows' ids, top to bottom."""
    return re.findall(r'<tr id="(entry-\d+)"', response.content.decode())


def visible(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def row(response, element_id) -> str:
    match = re.search(rf'<tr id="{element_id}".*?</tr>', response.content.decode(), re.S)
    return visible(match.group(0)) if match else ""


@pytest.fixture
def two_weeks(buyer, restaurant, menu):
    """Week 1: two Margherita delivered (sale 25.00). Week 2: a tiramisu delivered (sale 6.00)
    and a margherita cancelled at the buyer's request (15 % of 15.49 paid = 2.3235 -> 2.32)."""
    with time_machine.travel(THURSDAY_WEEK_1):
        first = sold(buyer, restaurant, {menu["Margherita"]: 2})
    with time_machine.travel(WEDNESDAY_WEEK_2):
        second = sold(buyer, restaurant, {menu["Tiramisu"]: 1})
        cancelled = fee_kept(buyer, restaurant, {menu["Margherita"]: 1})
    return first, second, cancelled


def test_the_ledger_totals_each_weekly_payout_period_and_the_balance(now, luigi, two_weeks):
    first, second, cancelled = two_weeks
    entry = {e.order_id: e for e in RestaurantLedgerEntry.objects.all()}

    response = luigi.get(LEDGER)

    assert response.status_code == 200
    assert response.context["periods"] == [
        LedgerPeriod(*WEEK_2, total=D("8.32"), entries=2),
        LedgerPeriod(*WEEK_1, total=D("25.00"), entries=1),
    ]
    assert response.context["balance"] == D("33.32")
    assert (
        row(response, "period-2026-11-16")
        == "Mon 16 Nov \N{EN DASH} Sun 22 Nov 2026 2 8.32 USD Open"
    )
    assert (
        row(response, "period-2026-11-09")
        == "Mon 9 Nov \N{EN DASH} Sun 15 Nov 2026 1 25.00 USD Open"
    )
    assert '<p class="big" id="ledger-balance-amount">33.32 USD</p>' in response.content.decode()
    # Newest first, each with its kind, its order and its amount with the currency.
    assert rows(response) == [
        f"entry-{entry[cancelled.pk].pk}",
        f"entry-{entry[second.pk].pk}",
        f"entry-{entry[first.pk].pk}",
    ]
    assert row(response, f"entry-{entry[cancelled.pk].pk}") == (
        f"Wed 18 Nov 2026, 15:00 Cancellation fee kept #{cancelled.pk} "
        f"Cancellation fee kept: order #{cancelled.pk} 2.32 USD"
    )
    assert row(response, f"entry-{entry[first.pk].pk}") == (
        f"Thu 12 Nov 2026, 10:00 Sale #{first.pk} Sale: order #{first.pk} 25.00 USD"
    )
    order_link = reverse("seller:order", args=[cancelled.pk])
    assert f'<a href="{order_link}">#{cancelled.pk}</a>' in response.content.decode()


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Auckland", "America/Los_Angeles"])
def test_a_payout_week_starts_on_monday_at_midnight_in_the_site_s_time_zone(
    settings, luigi, buyer, restaurant, menu, zone
):
    settings.TIME_ZONE = zone
    monday = dt.datetime(2026, 11, 16, 0, 0, tzinfo=zoneinfo.ZoneInfo(zone))
    with time_machine.travel(monday - dt.timedelta(seconds=1), tick=False):
        sold(buyer, restaurant, {menu["Margherita"]: 2})  # Sunday 23:59:59 local: week 1
    with time_machine.travel(monday, tick=False):
        sold(buyer, restaurant, {menu["Tiramisu"]: 1})  # Monday 00:00 local: week 2

    with time_machine.travel(monday + dt.timedelta(days=2)):
        response = luigi.get(LEDGER)

    assert response.context["periods"] == [
        LedgerPeriod(*WEEK_2, total=D("6.00"), entries=1),
        LedgerPeriod(*WEEK_1, total=D("25.00"), entries=1),
    ]
    assert response.context["balance"] == D("31.00")


def test_a_partner_of_two_restaurants_sees_both_or_filters_one(
    now, client, partner, buyer, restaurant, kyo, two_weeks
):
    kyo.members.add(partner)
    client.force_login(partner)
    nigiri = sold(buyer, kyo)  # 9.00, this week
    stranger = RestaurantFactory(name="Chez Other", slug="other", members=[UserFactory()])
    MenuItemFactory(restaurant=stranger, name="Soup", price=D("7.00"))
    sold(buyer, stranger)

    both = client.get(LEDGER)
    only_kyo = client.get(LEDGER, {"restaurant": kyo.pk})

    assert len(rows(both)) == 4
    assert both.context["balance"] == D("42.32")
    assert both.context["periods"][0] == LedgerPeriod(*WEEK_2, total=D("17.32"), entries=3)
    assert "Chez Other" not in both.content.decode()
    assert "<th>Restaurant</th>" in both.content.decode()
    kyo_entry = RestaurantLedgerEntry.objects.get(order=nigiri)
    assert rows(only_kyo) == [f"entry-{kyo_entry.pk}"]
    assert only_kyo.context["periods"] == [LedgerPeriod(*WEEK_2, total=D("9.00"), entries=1)]
    assert only_kyo.context["balance"] == D("9.00")
    assert client.get(LEDGER, {"restaurant": stranger.pk}).status_code == 404


def test_a_partner_never_sees_another_restaurants_entries(now, luigi, other_buyer, kyo):
    sold(other_buyer, kyo)

    response = luigi.get(LEDGER)

    assert rows(response) == []
    assert response.context["periods"] == []
    assert response.context["balance"] == D("0.00")
    assert "Nothing booked yet" in response.content.decode()
    assert luigi.get(LEDGER, {"restaurant": kyo.pk}).status_code == 404


def test_entries_are_paginated_and_the_totals_cover_every_page(monkeypatch, now, luigi, two_weeks):
    monkeypatch.setattr(seller_views, "LEDGER_PER_PAGE", 2)
    newest_first = list(RestaurantLedgerEntry.objects.order_by("-created_at", "-pk"))

    first_page = luigi.get(LEDGER)
    second_page = luigi.get(LEDGER, {"page": 2})

    assert rows(first_page) == [f"entry-{e.pk}" for e in newest_first[:2]]
    assert rows(second_page) == [f"entry-{newest_first[2].pk}"]
    assert '<a href="?page=2">Older →</a>' in first_page.content.decode()
    assert '<a href="?page=1">← Newer</a>' in second_page.content.decode()
    for page in (first_page, second_page):
        assert page.context["balance"] == D("33.32")
        assert len(page.context["periods"]) == 2


def test_pages_keep_the_restaurant_filter(monkeypatch, now, client, partner, buyer, kyo):
    monkeypatch.setattr(seller_views, "LEDGER_PER_PAGE", 1)
    kyo.members.add(partner)
    client.force_login(partner)
    sold(buyer, kyo)
    sold(buyer, kyo)

    response = client.get(LEDGER, {"restaurant": kyo.pk})

    assert f'<a href="?restaurant={kyo.pk}&amp;page=2">Older →</a>' in response.content.decode()


def test_the_ledger_is_for_partners_only(client, buyer):
    anonymous = client.get(LEDGER)
    client.force_login(buyer)

    assert anonymous.status_code == 302
    assert anonymous.url.startswith(f"{reverse('login')}?next=/seller/")
    assert client.get(LEDGER).status_code == 403


@pytest.mark.parametrize("weeks", [1, 6])
def test_ledger_query_count_is_constant(
    luigi, buyer, restaurant, menu, django_assert_num_queries, weeks
):
    for week in range(weeks):
        with time_machine.travel(THURSDAY_WEEK_1 + dt.timedelta(weeks=week)):
            sold(buyer, restaurant, {menu["Margherita"]: 1})
            fee_kept(buyer, restaurant, {menu["Tiramisu"]: 2})

    # user (the session is in Redis), the partner's restaurants, the page's count and rows, the
    # period totals, the navigation's waiting requests, and the header's "is a partner" check in
    # base.html
    with django_assert_num_queries(7):
        response = luigi.get(LEDGER)

    assert len(rows(response)) == 2 * weeks
    assert len(response.context["periods"]) == weeks
