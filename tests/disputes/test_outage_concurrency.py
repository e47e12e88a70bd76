"""An outage's bulk refund exactly once (L-10, issue 9 must show), on PostgreSQL with real
threads and real worker processes: two runs started at the same moment over 500 affected orders
refund each once (and leave the orders outside its window or restaurants untouched); a worker
process killed with SIGKILL part way through leaves whole batches only, and a restarted worker
finishes the rest, each order still refunded once."""

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone

from config.celery import app as celery_app
from core.models import Notification
from disputes.models import Incident
from disputes.selectors import outage_estimate
from disputes.services.outages import incident_create, outage_refund_start
from disputes.tasks import refund_outages
from orders.services.placement import LineRequest, order_checkout
from refunds.models import Refund, RestaurantLedgerEntry
from tests.concurrency import run_concurrently
from tests.conftest import NOW, place_order, refunds_processed, wait_for
from tests.factories import MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
START, END = NOW, NOW + dt.timedelta(minutes=30)
AFTER = NOW + dt.timedelta(hours=1)


def orders_in_window(buyer, restaurant, count: int) -> list:
    item = restaurant.menu.first()
    with time_machine.travel(START + dt.timedelta(minutes=1), tick=False):
        return [
            order_checkout(
                buyer=buyer,
                restaurant=restaurant,
                lines=[LineRequest(item.pk, 1)],
                fulfillment="delivery",
                delivery_address="7 Harbour Road",
                checkout_key=f"checkout:{uuid.uuid4()}",
            )
            for _ in range(count)
        ]


def outage(supervisor, restaurant_ids) -> Incident:
    with time_machine.travel(AFTER, tick=False):
        incident = incident_create(
            actor=supervisor,
            kind="outage",
            title="Payments down",
            starts_at=START,
            ends_at=END,
            restaurant_ids=restaurant_ids,
            now=AFTER,
        )
    return incident


class RunsLogged(logging.Handler):
    """The runs of the bulk refund, as each logs its counts when it ends (any thread)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        if record.getMessage().startswith("outage ") and hasattr(record, "incident"):
            self.records.append(record)


def outage_refunds():
    return Refund.objects.filter(idempotency_key__startswith="outage:")


def assert_each_refunded_once(orders) -> None:
    per_order = {
        row["order"]: (row["n"], row["total"])
        for row in outage_refunds().values("order").annotate(n=Count("pk"), total=Sum("amount"))
    }
    assert per_order == {order.pk: (1, order.amount_paid) for order in orders}


def test_an_outage_started_twice_at_the_same_moment_refunds_each_of_500_orders_once(
    buyer, restaurant, supervisor, settings, monkeypatch
):
    affected = orders_in_window(buyer, restaurant, 500)
    elsewhere = RestaurantFactory(name="Osteria Blu", members=[UserFactory()])
    MenuItemFactory(restaurant=elsewhere)
    other_restaurant = orders_in_window(buyer, elsewhere, 3)
    with time_machine.travel(END + dt.timedelta(minutes=1), tick=False):
        outside = place_order(buyer, restaurant)
    incident = outage(supervisor, [restaurant.pk])
    estimate = outage_estimate(starts_at=START, ends_at=END, restaurant_ids=[restaurant.pk])
    settings.LOJIX_OUTAGE_BATCH_SIZE = 50
    runs = RunsLogged()
    logger = logging.getLogger("disputes.tasks")
    monkeypatch.setattr(logger, "level", logging.INFO)
    monkeypatch.setattr(logger, "disabled", False)  # whatever an earlier worker's setup did
    logger.addHandler(runs)

    # Two supervisors start it at once (admin, API): each start commits and its run goes (the
    # outbox relay, eager in tests, runs `refund_outage` in that thread): two runs overlap.
    with time_machine.travel(AFTER):
        started = run_concurrently(
            lambda: outage_refund_start(incident_id=incident.pk, actor=supervisor, now=AFTER), 2
        )
        refunds_processed()

    assert all(isinstance(r, Incident) for r in started), started
    logger.removeHandler(runs)
    assert len(runs.records) == 2  # both starts ran the bulk refund, side by side
    assert sum(getattr(r, "refunded", 0) for r in runs.records) == 500
    assert [r.finished for r in runs.records].count(True) == 1
    assert_each_refunded_once(affected)
    assert Notification.objects.filter(user=supervisor, title__startswith="Outage").count() == 1
    assert not Refund.objects.filter(order__in=[*other_restaurant, outside]).exists()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.CLOSED
    assert (incident.affected_orders, incident.refunded_orders) == (500, 500)
    assert incident.refunded_amount == estimate.total_amount
    assert set(outage_refunds().values_list("status", flat=True)) == {"succeeded"}
    assert not RestaurantLedgerEntry.objects.filter(kind="refund_deduction").exists()


# -- a worker process killed part way ---------------------------------------------------------


@contextmanager
def worker_process(batch_size: int = 200):
    """A Celery worker in its own process (and process group) on the test database and the
    test's Redis, as in production; yields the Popen. Stopped with SIGTERM on the way out unless
    the test killed it."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "LOJIX_OUTAGE_BATCH_SIZE": str(batch_size),
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
    }
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (the worker writes it until stopped)
        prefix="outage-worker-", suffix=".log", delete=False
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=warning",
            f"--hostname=outage-{uuid.uuid4().hex[:8]}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
        os.unlink(log.name)


def progress(incident) -> int:
    return Incident.objects.values_list("refunded_orders", flat=True).get(pk=incident.pk)


def test_a_worker_killed_mid_run_and_restarted_finishes_the_rest_each_order_once(
    monkeypatch, buyer, restaurant, supervisor
):
    affected = orders_in_window(buyer, restaurant, 200)
    incident = outage(supervisor, [])
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)  # through the broker now

    with worker_process(batch_size=5) as first:
        outage_refund_start(incident_id=incident.pk, actor=supervisor, now=AFTER)
        assert wait_for(lambda: progress(incident) >= 20, seconds=180)
        os.killpg(first.pid, signal.SIGKILL)  # no shutdown: the batch in hand dies with it
        first.wait(timeout=10)

    done = progress(incident)
    assert 20 <= done < 200  # killed part way
    # Whole batches only: what the incident counts is exactly what was refunded.
    assert outage_refunds().values("order").distinct().count() == done
    incident.refresh_from_db()
    assert incident.status == Incident.Status.REFUNDING

    with worker_process():
        refund_outages.delay()  # the beat tick after the restart resumes it
        assert wait_for(
            lambda: Incident.objects.filter(pk=incident.pk, status="closed").exists(), seconds=90
        )

    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    # Card refunds the killed worker committed but never sent, or sent with the answer lost
    # (claimed: retried once their lease ran out, with the same processor key, D-7).
    with time_machine.travel(
        timezone.now() + dt.timedelta(seconds=settings.LOJIX_REFUND_CLAIM_LEASE_SECONDS + 1)
    ):
        refunds_processed()
    assert_each_refunded_once(affected)
    incident.refresh_from_db()
    assert (incident.affected_orders, incident.refunded_orders) == (200, 200)
    assert set(outage_refunds().values_list("status", flat=True)) == {"succeeded"}
