"""Credit expiry (L-7.1, D-8): the service, the task, and the task on a real Celery worker."""

import datetime as dt
import time
from decimal import Decimal as D

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app
from credits.models import CreditGrant, CreditTransaction
from credits.tasks import expire_credits
from tests.concurrency import run_concurrently
from tests.conftest import NOW, give_credit


@pytest.fixture
def grants(now, buyer):
    return {
        "expired": give_credit(
            buyer, "5.00", kind="promo", expires_at=NOW - dt.timedelta(minutes=1)
        ),
        "at_the_edge": give_credit(buyer, "1.00", kind="promo", expires_at=NOW),
        "later": give_credit(buyer, "2.00", kind="promo", expires_at=NOW + dt.timedelta(days=1)),
        "account": give_credit(buyer, "7.00", kind="account"),
    }


@pytest.mark.django_db
def test_expiry_zeroes_expired_promo_credit_once(now, grants):
    now.move_to(NOW)  # freeze at NOW for the edge case

    assert expire_credits() == 2
    assert expire_credits() == 0

    remaining = {name: CreditGrant.objects.get(pk=g.pk).remaining for name, g in grants.items()}
    assert remaining == {
        "expired": D("0.00"),
        "at_the_edge": D("0.00"),
        "later": D("2.00"),
        "account": D("7.00"),
    }
    expiries = CreditTransaction.objects.filter(kind="expiry").order_by("amount")
    assert [(t.grant_id, t.amount) for t in expiries] == [
        (grants["expired"].pk, D("-5.00")),
        (grants["at_the_edge"].pk, D("-1.00")),
    ]


@pytest.mark.django_db
def test_expiry_works_in_bounded_batches(now, buyer):
    for _ in range(5):
        give_credit(buyer, "1.00", kind="promo", expires_at=NOW - dt.timedelta(days=1))
    assert expire_credits(batch_size=2) == 5
    assert CreditTransaction.objects.filter(kind="expiry").count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_task_from_the_broker(buyer, monkeypatch):
    """The task travels through Redis to a Celery worker, which expires the credit in
    PostgreSQL."""
    grant = give_credit(
        buyer, "5.00", kind="promo", expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    )
    assert app.conf.broker_url.startswith("redis://")
    monkeypatch.setitem(app.conf, "task_always_eager", False)

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        expire_credits.delay()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            grant.refresh_from_db()
            if grant.remaining == D("0.00"):
                break
            time.sleep(0.1)

    assert grant.remaining == D("0.00")
    assert CreditTransaction.objects.filter(grant=grant, kind="expiry").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_expire_each_grant_once(buyer):
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    for _ in range(30):
        give_credit(buyer, "1.00", kind="promo", expires_at=past)

    results = run_concurrently(lambda: expire_credits(batch_size=7), 2)

    assert sum(results) == 30
    assert CreditTransaction.objects.filter(kind="expiry").count() == 30
    assert not CreditGrant.objects.filter(remaining__gt=0).exists()
