"""JOURNEYS support 4 in Chromium, on a real Celery worker: a supervisor enters an outage in
admin, reads its dry run (the affected orders, the money, the split per restaurant; nothing
written), starts the bulk refund and watches its progress until the summary (L-10)."""

import datetime as dt
import re
import time
from decimal import Decimal as D

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from disputes.models import Incident
from refunds.models import Refund
from tests.conftest import place_order
from tests.factories import MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
CUR = settings.LOJIX_CURRENCY


def test_a_supervisor_dry_runs_an_outage_then_refunds_it_and_watches_the_progress(
    live_server, browser, worker, settings, buyer, supervisor, restaurant, menu
):
    settings.LOJIX_OUTAGE_BATCH_SIZE = 2  # a few batches, so there is progress to watch
    started = timezone.now() - dt.timedelta(minutes=10)
    affected = [place_order(buyer, restaurant, {menu["Margherita"]: 1}) for _ in range(5)]
    elsewhere = RestaurantFactory(name="Osteria Blu", members=[UserFactory()])
    MenuItemFactory(restaurant=elsewhere, name="Risotto", price=D("14.00"))
    not_affected = place_order(buyer, elsewhere)
    time.sleep(1)  # the outage ends on a whole second after the orders
    ended = timezone.now().replace(microsecond=0)
    total = sum((order.amount_paid for order in affected), D("0"))

    desk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    desk.goto(f"{live_server.url}/admin/login/")
    desk.get_by_label("Username").fill(supervisor.username)
    desk.get_by_label("Password").fill("pass-word-123")
    desk.get_by_role("button", name="Log in").click()
    desk.goto(f"{live_server.url}/admin/disputes/incident/add/")
    desk.locator("#id_kind").select_option("outage")
    desk.locator("#id_title").fill("Card payments down")
    desk.locator("#id_starts_at_0").fill(f"{started:%Y-%m-%d}")
    desk.locator("#id_starts_at_1").fill(f"{started:%H:%M:%S}")
    desk.locator("#id_ends_at_0").fill(f"{ended:%Y-%m-%d}")
    desk.locator("#id_ends_at_1").fill(f"{ended:%H:%M:%S}")
    desk.locator("#id_restaurants").select_option(label="Trattoria Roma")
    desk.get_by_role("button", name="Save", exact=True).click()

    incident = Incident.objects.get()
    expect(desk).to_have_url(re.compile(rf"/admin/disputes/incident/{incident.pk}/change/$"))
    dry_run = desk.locator("#dry-run")
    expect(dry_run).to_contain_text("5 affected orders")
    expect(dry_run).to_contain_text(f"{total:.2f} {CUR}")
    expect(desk.locator("table.dry-run-split")).to_contain_text("Trattoria Roma")
    assert not Refund.objects.exists()  # the dry run wrote nothing

    desk.get_by_role("button", name="Start the bulk refund").click()
    expect(desk.locator(".messagelist")).to_contain_text("bulk refund started for 5 orders")
    # The page reloads itself every 2 s while the worker refunds batch after batch.
    expect(desk.locator("#outage-progress")).to_contain_text(
        f"Finished: 5 of 5 orders refunded, {total:.2f} {CUR}", timeout=30_000
    )
    expect(desk.locator("progress")).to_have_attribute("value", "5")
    expect(desk.locator("table.refunded-split")).to_contain_text("Trattoria Roma")
    expect(desk.locator("body")).to_contain_text("nothing deducted from the restaurants (L-9)")

    incident.refresh_from_db()
    assert (incident.status, incident.refunded_orders, incident.refunded_amount) == (
        "closed",
        5,
        total,
    )
    for order in affected:
        assert Refund.objects.filter(order=order).count() == 1
    assert not Refund.objects.filter(order=not_affected).exists()
