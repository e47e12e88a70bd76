"""The demo stays alive (issue 10, part 10): its time-sensitive cases are counted from when
`load_demo` runs, a later run makes them again once they ran out, `--reset` (make demo-reset)
puts the whole demo back, and emails link to the port the server runs on."""

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from core.models import Notification
from core.tasks import send_notification_emails
from credits.models import CreditGrant
from orders.models import Order
from orders.selectors import buyer_cancellation_decision
from tests.conftest import NOW

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
LATER = NOW + dt.timedelta(days=3, hours=5, minutes=17)


@pytest.fixture
def now():
    """The clock stopped at NOW, so "counted from now" is exact to the second."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def load(*args) -> None:
    call_command("load_demo", *args, stdout=open(os.devnull, "w"))  # noqa: SIM115


def ada_orders():
    return Order.objects.filter(buyer__username="ada").select_related(
        "restaurant", "policy_version"
    )


def live_case_facts(now: dt.datetime) -> dict:
    """What the time-sensitive cases look like at `now`."""
    orders = list(ada_orders())
    countdown = [
        o
        for o in orders
        if o.status == Order.Status.ACCEPTED and buyer_cancellation_decision(o, now=now).allowed
    ]
    requested = [o for o in orders if o.status == Order.Status.CANCELLATION_REQUESTED]
    late = sorted(
        round((now - o.estimated_delivery_at).total_seconds() / 60)
        for o in orders
        if o.status == Order.Status.OUT_FOR_DELIVERY and o.estimated_delivery_at < now
    )
    quality_open = [
        o
        for o in orders
        if o.status == Order.Status.DELIVERED
        and now - dt.timedelta(minutes=60) < o.delivered_at <= now
        and not o.refund_requests.exists()
    ]
    expiring = CreditGrant.objects.filter(
        buyer__username="ada",
        kind=CreditGrant.Kind.PROMO,
        remaining__gt=0,
        expires_at__gt=now,
        expires_at__lte=now + dt.timedelta(days=3),
    )
    return {
        "countdown_open": len(countdown),
        "requested_at": [o.cancellation_requested_at for o in requested],
        "minutes_late": late,
        "quality_window_open": len(quality_open),
        "expiring_credit": [g.amount for g in expiring],
    }


def test_loaded_at_two_times_the_countdown_is_open_at_each(now):
    load()
    first = live_case_facts(NOW)
    orders_at_first = ada_orders().count()

    assert first == {
        "countdown_open": 1,
        "requested_at": [NOW],
        "minutes_late": [45, 115],
        "quality_window_open": 1,
        "expiring_credit": [D("3.00")],
    }

    now.move_to(LATER)
    assert live_case_facts(LATER)["countdown_open"] == 0  # run out since the first load
    load()

    later = live_case_facts(LATER)
    assert later["countdown_open"] == 1
    assert max(later["requested_at"]) == LATER
    assert later["minutes_late"][:2] == [45, 115]  # then the first load's, days late
    assert later["expiring_credit"] == [D("3.00")]
    # The rest of the demo is left as it was: only the live cases were added.
    assert ada_orders().count() == orders_at_first + 5


def test_a_second_run_while_the_countdown_runs_adds_nothing(now):
    load()
    orders = ada_orders().count()

    now.move_to(NOW + dt.timedelta(minutes=3))
    load()

    assert ada_orders().count() == orders


# Flushing truncates tables, which PostgreSQL refuses inside the transaction a test runs in.
@pytest.mark.django_db(transaction=True)
def test_reset_puts_the_demo_back_counted_from_now(now):
    load()
    fresh = sorted(ada_orders().values_list("status", flat=True))
    now.move_to(LATER)

    load("--reset", "--noinput")

    assert sorted(ada_orders().values_list("status", flat=True)) == fresh
    assert live_case_facts(LATER) == {
        "countdown_open": 1,
        "requested_at": [LATER],
        "minutes_late": [45, 115],
        "quality_window_open": 1,
        "expiring_credit": [D("3.00")],
    }


def test_reset_asks_before_deleting_anything(now, monkeypatch):
    load()
    orders = ada_orders().count()
    monkeypatch.setattr("builtins.input", lambda prompt: "no")

    with pytest.raises(CommandError, match=r"Reset cancelled; nothing was deleted\."):
        load("--reset")

    assert ada_orders().count() == orders


def test_emails_link_to_the_configured_site(settings, buyer):
    settings.LOJIX_SITE_URL = "http://127.0.0.1:8123/"
    note = Notification.objects.create(
        user=buyer, title="Order #7 accepted", body="On its way soon.", url="/orders/7/"
    )

    assert send_notification_emails([note.pk]) == 1

    [email] = mail.outbox
    assert "\n\nhttp://127.0.0.1:8123/orders/7/\n\n" in email.body


def settings_site_url(**env) -> str:
    """LOJIX_SITE_URL as the settings module computes it in a fresh process with this env."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PORT", "LOJIX_SITE_URL")}
    code = "from config.settings import base; print(base.LOJIX_SITE_URL)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=clean | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_the_site_url_defaults_to_the_port_the_server_runs_on():
    assert settings_site_url() == "http://127.0.0.1:8000"
    assert settings_site_url(PORT="8123") == "http://127.0.0.1:8123"
    assert settings_site_url(PORT="8123", LOJIX_SITE_URL="https://lojix.example") == (
        "https://lojix.example"
    )


def make_dry_run(*args) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "LOJIX_SITE_URL")}
    result = subprocess.run(
        ["make", "-n", *args], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout


def test_make_run_gives_every_process_the_site_url_of_its_port():
    honcho = [line for line in make_dry_run("run", "PORT=8123").splitlines() if "honcho" in line]

    assert honcho == [
        "PORT=8123 LOJIX_SITE_URL=http://127.0.0.1:8123 .venv/bin/honcho start -f Procfile"
    ]


def test_make_demo_reset_reloads_the_demo_without_asking():
    assert ".venv/bin/python manage.py load_demo --reset --noinput" in make_dry_run("demo-reset")


def test_settings_are_read_from_this_checkout():
    # The subprocesses above read this worktree's settings, not an installed copy.
    assert Path(settings.BASE_DIR).resolve() == ROOT
