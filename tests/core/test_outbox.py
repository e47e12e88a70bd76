"""The transactional outbox (docs/architecture.md, issue 7): task requests are rows written
with the change, published after commit and by the beat relay; a broker outage delays them and
never fails a committed request. The outage test runs a Redis of its own and a real Celery
worker."""

import datetime as dt
import logging
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from config.celery import app
from core.models import Notification, OutboxMessage
from core.outbox import (
    OutboxNotInTransaction,
    backoff,
    outbox_enqueue,
    outbox_publish,
    outbox_relay_due,
)
from core.services import SEND_NOTIFICATION_EMAILS, notify
from core.tasks import outbox_relay
from orders.models import Order
from tests.concurrency import run_concurrently
from tests.conftest import place_order
from tests.processes import wait_until

EMAIL = SEND_NOTIFICATION_EMAILS


def tell(user, title: str) -> Notification:
    return notify(user=user, title=title, body="Body.")


class Boom(Exception):
    pass


def tell_then_fail(user, title: str) -> None:
    tell(user, title)
    raise Boom


def unsent() -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(sent_at__isnull=True).order_by("pk"))


def subjects() -> list[str]:
    return sorted(m.subject for m in mail.outbox)


# -- writing: only inside a transaction, published only when it commits ----------------------


@pytest.mark.django_db(transaction=True)
def test_enqueue_outside_a_transaction_is_refused(buyer):
    with pytest.raises(OutboxNotInTransaction, match=r"inside transaction\.atomic\(\)"):
        outbox_enqueue(task=EMAIL, kwargs={"notification_ids": [1]})

    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_row_and_publishes_nothing(buyer):
    mail.outbox.clear()

    with pytest.raises(Boom), transaction.atomic():
        tell_then_fail(buyer, "Never happened")

    assert not OutboxMessage.objects.exists()
    assert not Notification.objects.filter(title="Never happened").exists()
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_a_committed_transaction_publishes_each_row_once_and_marks_it_sent(buyer, partner):
    mail.outbox.clear()
    before = timezone.now()

    with transaction.atomic():
        ada = tell(buyer, "For Ada")
        luigi = tell(partner, "For Luigi")
        assert len(unsent()) == 2  # written with the change, not yet published

    messages = list(OutboxMessage.objects.order_by("pk"))
    assert [(m.task, m.kwargs, m.attempts, m.last_error) for m in messages] == [
        (EMAIL, {"notification_ids": [ada.pk]}, 0, ""),
        (EMAIL, {"notification_ids": [luigi.pk]}, 0, ""),
    ]
    assert all(m.sent_at is not None and m.sent_at >= before for m in messages)
    assert [(m.to, m.subject) for m in mail.outbox] == [
        ([buyer.email], "lojix: For Ada"),
        ([partner.email], "lojix: For Luigi"),
    ]
    assert outbox_relay() == {"published": 0, "failed": 0}
    assert len(mail.outbox) == 2


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_drops_its_rows_and_keeps_the_rest(buyer):
    mail.outbox.clear()

    with transaction.atomic():
        tell(buyer, "Kept")
        with pytest.raises(Boom), transaction.atomic():
            tell_then_fail(buyer, "Rolled back")
        tell(buyer, "Kept too")

    assert subjects() == ["lojix: Kept", "lojix: Kept too"]
    assert OutboxMessage.objects.count() == 2
    assert unsent() == []


def test_a_notification_without_email_writes_no_outbox_row(db, buyer):
    notify(user=buyer, title="In the app only", body="Body.", email=False)

    assert not OutboxMessage.objects.exists()


# -- the beat relay --------------------------------------------------------------------------


def written(user, count: int) -> list[OutboxMessage]:
    """`count` committed-but-unpublished emails: the test's transaction never commits, so no
    on-commit relay runs; only the beat relay can send them."""
    with transaction.atomic():
        for index in range(count):
            tell(user, f"Message {index}")
    return unsent()


@pytest.mark.django_db
def test_the_beat_relay_publishes_due_rows_in_bounded_batches_once(buyer):
    rows = written(buyer, 5)
    later = OutboxMessage.objects.filter(pk=rows[-1].pk)
    later.update(available_at=timezone.now() + dt.timedelta(minutes=5))
    mail.outbox.clear()

    first = outbox_relay(batch_size=2)
    second = outbox_relay(batch_size=2)

    assert (first, second) == ({"published": 4, "failed": 0}, {"published": 0, "failed": 0})
    assert subjects() == [f"lojix: Message {i}" for i in range(4)]
    assert unsent() == [rows[-1]]  # not due yet


@pytest.mark.django_db
def test_a_failed_publish_backs_the_row_off_and_stops_the_batch(buyer):
    rows = written(buyer, 3)
    OutboxMessage.objects.filter(pk=rows[1].pk).update(task="core.tasks.no_such_task")
    mail.outbox.clear()
    now = timezone.now()

    result = outbox_relay_due(now=now, batch_size=10)

    assert (result.published, result.failed, result.released) == (1, 1, 1)
    assert subjects() == ["lojix: Message 0"]
    failed, released = OutboxMessage.objects.get(pk=rows[1].pk), unsent()[1]
    assert (failed.sent_at, failed.attempts, failed.available_at) == (
        None, 1, now + dt.timedelta(seconds=10),
    )  # fmt: skip
    assert "core.tasks.no_such_task" in failed.last_error
    assert (released.pk, released.attempts, released.available_at) == (rows[2].pk, 0, now)

    again = outbox_relay_due(now=now + dt.timedelta(seconds=10), batch_size=10)

    assert (again.published, again.failed) == (1, 1)  # Message 2 goes; the bad row waits longer
    failed.refresh_from_db()
    assert (failed.attempts, failed.available_at) == (2, now + dt.timedelta(seconds=30))


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(1, 10), (2, 20), (3, 40), (4, 80), (6, 320), (7, 600), (30, 600)],
)
def test_backoff_doubles_from_ten_seconds_up_to_ten_minutes(attempts, seconds):
    assert backoff(attempts) == dt.timedelta(seconds=seconds)


@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_publish_each_row_once(buyer):
    with transaction.atomic():
        OutboxMessage.objects.bulk_create(
            OutboxMessage(task=EMAIL, kwargs={"notification_ids": [n.pk]})
            for n in Notification.objects.bulk_create(
                Notification(user=buyer, title=f"Message {i}", body="Body.") for i in range(30)
            )
        )
    mail.outbox.clear()

    results = run_concurrently(lambda: outbox_relay(batch_size=7), 2)

    assert all(isinstance(result, dict) for result in results), results
    assert sum(result["published"] for result in results) == 30
    assert sum(result["failed"] for result in results) == 0
    assert unsent() == []
    assert subjects() == sorted(f"lojix: Message {i}" for i in range(30))


def test_the_relay_runs_on_beat_every_30_seconds(settings):
    assert settings.CELERY_BEAT_SCHEDULE["outbox-relay"] == {
        "task": "core.tasks.outbox_relay",
        "schedule": 30.0,
    }


# -- admin: the backlog, read-only ------------------------------------------------------------


@pytest.mark.django_db
def test_support_sees_the_unsent_backlog_read_only(agent, buyer):
    rows = written(buyer, 3)
    OutboxMessage.objects.filter(pk=rows[0].pk).update(sent_at=timezone.now())
    client = Client()
    client.force_login(agent)
    changelist = reverse("admin:core_outboxmessage_changelist")

    backlog = client.get(changelist, {"sent": "no"})
    sent = client.get(changelist, {"sent": "yes"})
    page = client.get(reverse("admin:core_outboxmessage_change", args=[rows[1].pk]))
    change = client.post(
        reverse("admin:core_outboxmessage_change", args=[rows[1].pk]), {"task": "x"}
    )

    assert backlog.context["cl"].result_count == 2
    assert [m.pk for m in sent.context["cl"].result_list] == [rows[0].pk]
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert change.status_code == 403
    assert OutboxMessage.objects.get(pk=rows[1].pk).task == EMAIL


# -- a broker outage: a Redis of the test's own, stopped and started again -------------------


@pytest.mark.django_db(transaction=True)
def test_a_publish_with_the_broker_down_fails_fast(private_broker, buyer):
    with transaction.atomic():
        message = outbox_enqueue(task="core.tasks.purge_idempotency_records", kwargs={})
    assert unsent() == []  # published to the private Redis after commit: the pool is warm
    private_broker.stop()

    started = time.monotonic()
    with pytest.raises(OperationalError):
        outbox_publish(message)
    elapsed = time.monotonic() - started

    assert elapsed < 1.0


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_delays_the_emails_and_never_fails_the_cancel(
    private_broker, buyer, restaurant, api_as, caplog
):
    order = place_order(buyer, restaurant)
    assert unsent() == []
    private_broker.stop()
    notified_before = set(Notification.objects.values_list("pk", flat=True))
    mail.outbox.clear()
    client = api_as(buyer)

    with caplog.at_level(logging.WARNING, logger="core.outbox"):
        first = client.post(
            f"/api/orders/{order.pk}/cancel/", {}, format="json", HTTP_IDEMPOTENCY_KEY="cancel-1"
        )
        again = client.post(
            f"/api/orders/{order.pk}/cancel/", {}, format="json", HTTP_IDEMPOTENCY_KEY="cancel-1"
        )

    assert (first.status_code, first.json()["status"]) == (200, "cancelled"), first.content
    assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (
        200, first.content, "true",
    )  # fmt: skip
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    told = Notification.objects.exclude(pk__in=notified_before).order_by("pk")
    emailed = [n for n in told if n.email]
    assert emailed, "a cancel tells the buyer"
    assert all(n.emailed_at is None for n in told)
    waiting = [m for m in unsent() if m.task == "core.tasks.send_notification_emails"]
    assert sorted(i for m in waiting for i in m.kwargs["notification_ids"]) == [
        n.pk for n in emailed
    ]
    # the card refund waits too: its processor call is a task request in the outbox (D-7)
    assert [m.task for m in unsent() if m not in waiting] == ["refunds.tasks.process_refunds"]
    assert all(m.attempts == 1 and "Connection refused" in m.last_error for m in waiting)
    assert mail.outbox == []
    assert any(
        r.levelno == logging.WARNING and "1 message(s) left unsent" in r.getMessage()
        for r in caplog.records
    )

    private_broker.start()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        outbox_relay.delay()  # as beat would
        wait_until(
            lambda: (
                not unsent()
                and not Notification.objects.filter(email=True, emailed_at__isnull=True).exists()
            ),
            "the emails",
            30,
        )
        time.sleep(0.5)  # a duplicate delivery would arrive now
        assert outbox_relay() == {"published": 0, "failed": 0}

    # Once Redis is back the refund is made, and "refund sent" is emailed too.
    emailed = list(Notification.objects.exclude(pk__in=notified_before).filter(email=True))
    assert any(n.title.endswith("refund sent") for n in emailed)
    assert sorted((m.to[0], m.subject) for m in mail.outbox) == sorted(
        (n.user.email, f"lojix: {n.title}") for n in emailed
    )
    assert all(
        n.emailed_at is not None
        for n in Notification.objects.filter(pk__in=[n.pk for n in emailed])
    )
