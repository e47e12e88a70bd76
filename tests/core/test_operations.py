"""Operations (issue 11 part 5): the probes a load balancer calls, the request id that follows
a request into its Celery tasks and onto every log line, the JSON log format, the Prometheus
metrics and who may read them, and Sentry staying off unless configured."""

import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sentry_sdk
from celery.signals import before_task_publish
from django.db import OperationalError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu import pools
from prometheus_client.parser import text_string_to_metric_families

from config.celery import app
from core import health, metrics
from core.models import Notification, OutboxMessage, TaskRun
from core.outbox import outbox_enqueue
from core.request_id import (
    TASK_HEADER,
    RequestIdFilter,
    request_id_accept,
    request_id_get,
    request_id_reset,
    request_id_set,
)
from core.services import SEND_NOTIFICATION_EMAILS, notify, task_run_record
from core.tasks import outbox_relay, purge_idempotency_records
from refunds.models import Refund
from tests.conftest import place_order, refunds_processed, wait_for

ROOT = Path(__file__).resolve().parents[2]
POD_ADDRESS = "10.20.30.40"


def _forget_broker_connections() -> None:
    """Close Celery's pooled broker connections (as tests/core/test_outbox.py does)."""
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def request_id_logs(caplog):
    """caplog, its handler carrying the `RequestIdFilter` the console handler has in
    settings.LOGGING, so captured records get `request_id` as they would on the console."""
    request_id_filter = RequestIdFilter()
    caplog.handler.addFilter(request_id_filter)
    yield caplog
    caplog.handler.removeFilter(request_id_filter)


# -- /healthz and /readyz ----------------------------------------------------------------------


def test_healthz_answers_without_the_database_or_an_allowed_host(settings):
    """No `db` fixture: a query would raise. A pod probed by its IP address over plain HTTP
    in production (SSL redirect on, host not in ALLOWED_HOSTS) gets its answer."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["lojix.example"]
    response = Client().get("/healthz", HTTP_HOST=POD_ADDRESS)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_pages_still_redirect_to_https_and_refuse_unknown_hosts(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["lojix.example"]
    assert Client().get("/accounts/login/", HTTP_HOST="lojix.example").status_code == 301
    assert Client().get("/accounts/login/", HTTP_HOST=POD_ADDRESS).status_code == 400


@pytest.mark.django_db
def test_readyz_reports_the_database_and_the_broker(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["lojix.example"]
    response = Client().get("/readyz", HTTP_HOST=POD_ADDRESS)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "broker": "ok",
    }
    assert "failing" not in body


@pytest.mark.django_db
def test_readyz_answers_503_naming_the_broker_when_it_is_unreachable(monkeypatch, caplog):
    monkeypatch.setitem(app.conf, "broker_url", f"redis://127.0.0.1:{_closed_port()}/0")
    _forget_broker_connections()
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="core.health"):
            response = Client().get("/readyz")
        elapsed = time.monotonic() - started
    finally:
        monkeypatch.undo()
        _forget_broker_connections()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["broker"]
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"]["status"] == "unavailable"
    assert body["checks"]["broker"]["error"]  # the exception's class, never the URL
    assert "127.0.0.1" not in response.content.decode()
    assert elapsed < health.BROKER_TIMEOUT_SECONDS + 1
    assert any(getattr(r, "check", None) == "broker" for r in caplog.records)


@pytest.mark.django_db
def test_readyz_checks_the_demos_filesystem_broker_folders(monkeypatch, tmp_path):
    queue = tmp_path / "queue"
    monkeypatch.setitem(app.conf, "broker_url", "filesystem://")
    monkeypatch.setitem(
        app.conf,
        "broker_transport_options",
        {"data_folder_in": str(queue), "data_folder_out": str(queue)},
    )
    try:
        missing = Client().get("/readyz")
        queue.mkdir()
        present = Client().get("/readyz")
    finally:
        monkeypatch.undo()
        _forget_broker_connections()
    assert missing.status_code == 503
    assert missing.json()["failing"] == ["broker"]
    assert missing.json()["checks"]["broker"]["error"] == "FileNotFoundError"
    assert present.status_code == 200, present.content


@pytest.mark.django_db
def test_readyz_answers_503_naming_the_database_when_it_fails(monkeypatch):
    def database_down():
        raise OperationalError("connection refused")

    monkeypatch.setattr(health, "_select_one", database_down)
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database"]
    assert body["checks"]["database"] == {
        "status": "unavailable",
        "duration_ms": body["checks"]["database"]["duration_ms"],
        "error": "OperationalError",
    }
    assert body["checks"]["broker"]["status"] == "ok"


def test_the_probes_take_only_get_and_head():
    assert Client().post("/healthz").status_code == 405
    assert Client().head("/healthz").status_code == 200


# -- the request id ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "incoming",
    ["0f8fad5b-d9cb-469f-a165-70867728950e", "lb-1234.abc_DEF:9", "x" * 64],
)
def test_a_well_formed_incoming_request_id_is_kept(incoming):
    assert request_id_accept(incoming) == incoming


@pytest.mark.parametrize("incoming", [None, "", "x" * 65, "two words", "a\nb", "é", "<script>"])
def test_a_missing_or_malformed_request_id_is_replaced_by_a_fresh_one(incoming):
    first, second = request_id_accept(incoming), request_id_accept(incoming)
    assert len(first) == 32
    assert int(first, 16) >= 0
    assert first != second


@pytest.mark.django_db
def test_each_response_carries_its_request_id_and_the_request_logs_carry_it(request_id_logs):
    with request_id_logs.at_level(logging.WARNING, logger="django.request"):
        kept = Client().get("/no-such-page/", HTTP_X_REQUEST_ID="probe-42")
        fresh = Client().get("/no-such-page/", HTTP_X_REQUEST_ID="bad id\r\n")
    assert (kept.status_code, kept["X-Request-ID"]) == (404, "probe-42")
    assert fresh.status_code == 404
    assert len(fresh["X-Request-ID"]) == 32
    not_found = [r for r in request_id_logs.records if r.name == "django.request"]
    assert [r.request_id for r in not_found] == ["probe-42", fresh["X-Request-ID"]]
    assert request_id_get() is None  # nothing leaks past the request


def test_a_record_outside_any_request_or_task_says_so(request_id_logs):
    with request_id_logs.at_level(logging.INFO, logger="lojix.test"):
        logging.getLogger("lojix.test").info("no request here")
    assert request_id_logs.records[-1].request_id == "-"


@pytest.mark.django_db
def test_the_outbox_row_keeps_the_id_of_the_request_that_wrote_it(buyer, restaurant, api_as):
    order = place_order(buyer, restaurant)
    written_before = set(OutboxMessage.objects.values_list("pk", flat=True))
    response = api_as(buyer).post(
        f"/api/orders/{order.pk}/cancel/",
        {},
        format="json",
        HTTP_IDEMPOTENCY_KEY="cancel-ops-1",
        HTTP_X_REQUEST_ID="cancel-request-1",
    )
    assert response.status_code == 200, response.content
    written = OutboxMessage.objects.exclude(pk__in=written_before)
    assert written.exists()
    assert set(written.values_list("request_id", flat=True)) == {"cancel-request-1"}
    # outside a request (a test, beat, a management command) rows have none
    with transaction.atomic():
        message = outbox_enqueue(task=SEND_NOTIFICATION_EMAILS, kwargs={"notification_ids": []})
    assert message.request_id == ""


@pytest.mark.django_db
def test_support_finds_the_task_requests_of_a_request_id_in_admin(agent, buyer):
    for request_id in ("req-find-me", "req-other"):
        token = request_id_set(request_id)
        try:
            with transaction.atomic():
                notify(user=buyer, title="Order cancelled", body="Body.")
        finally:
            request_id_reset(token)
    client = Client()
    client.force_login(agent)
    found = client.get(reverse("admin:core_outboxmessage_changelist"), {"q": "req-find-me"})
    assert [m.request_id for m in found.context["cl"].result_list] == ["req-find-me"]


@pytest.mark.django_db
def test_a_row_relayed_later_by_beat_runs_its_task_under_the_stored_id(buyer, request_id_logs):
    """The after-commit relay never ran (a broker outage); the beat relay, in no request at
    all, publishes the row with the id stored on it, and the task's logs carry that id."""
    token = request_id_set("written-during-outage")
    try:
        with transaction.atomic():
            notification = notify(user=buyer, title="Order cancelled", body="Body.")
    finally:
        request_id_reset(token)
    assert OutboxMessage.objects.get(sent_at__isnull=True).request_id == "written-during-outage"

    with request_id_logs.at_level(logging.INFO):
        assert outbox_relay() == {"published": 1, "failed": 0}  # eager: runs the task here

    notification.refresh_from_db()
    assert notification.emailed_at is not None
    sent = [r for r in request_id_logs.records if r.getMessage() == "notification emails sent"]
    assert [(r.request_id, r.sent) for r in sent] == [("written-during-outage", 1)]
    relay = [r for r in request_id_logs.records if r.getMessage().startswith("task ")]
    assert [r.request_id for r in relay] == ["-"]  # the relay itself ran for no request
    assert request_id_get() is None  # task_postrun restored the (empty) id


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_by_a_request_logs_the_request_id_on_a_real_worker(
    worker, buyer, restaurant, api_as, request_id_logs
):
    order = place_order(buyer, restaurant)
    wait_for(lambda: not Notification.objects.filter(email=True, emailed_at=None).exists(), 15)
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    with request_id_logs.at_level(logging.INFO):
        response = api_as(buyer).post(
            f"/api/orders/{order.pk}/cancel/",
            {},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"cancel-{request_id}",
            HTTP_X_REQUEST_ID=request_id,
        )
        assert response.status_code == 200, response.content
        assert response["X-Request-ID"] == request_id
        assert wait_for(
            lambda: not Notification.objects.filter(email=True, emailed_at=None).exists(), 30
        ), "the worker did not send the emails"
        assert wait_for(
            lambda: any(
                r.getMessage() == "notification emails sent" and r.request_id == request_id
                for r in request_id_logs.records
            ),
            5,
        )
    sent = [r for r in request_id_logs.records if r.getMessage() == "notification emails sent"]
    by_worker = [r for r in sent if r.request_id == request_id]
    assert by_worker
    assert all(r.threadName != "MainThread" for r in by_worker)
    assert OutboxMessage.objects.filter(request_id=request_id, sent_at__isnull=False).exists()


def test_the_publish_signal_adds_the_current_id_unless_the_publisher_set_one():
    token = request_id_set("current-one")
    try:
        headers, preset = {}, {TASK_HEADER: "from-the-row"}
        app_signal_kwargs = {"sender": "core.tasks.send_notification_emails", "body": ()}
        before_task_publish.send(headers=headers, **app_signal_kwargs)
        before_task_publish.send(headers=preset, **app_signal_kwargs)
    finally:
        request_id_reset(token)
    assert headers == {TASK_HEADER: "current-one"}
    assert preset == {TASK_HEADER: "from-the-row"}


# -- log formats ---------------------------------------------------------------------------------

LOG_SCRIPT = """
import logging, django
django.setup()
log = logging.getLogger("lojix.ops")
log.warning("refund made", extra={"refund": 7, "amount": "12.50 USD"})
try:
    1 / 0
except ZeroDivisionError:
    log.exception("it broke")
"""


def _python(script: str, settings_module: str, **env) -> subprocess.CompletedProcess:
    """Run `script` in a fresh interpreter with `settings_module`, the Sentry and log-format
    variables of this process left out and `env` added; the finished process (it exited 0)."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SENTRY_")
        and k not in {"DJANGO_ALLOW_ASYNC_UNSAFE", "LOJIX_LOG_FORMAT"}
    }
    environment |= {"DJANGO_SETTINGS_MODULE": settings_module, **env}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def _log_lines(settings_module: str, **env) -> list[str]:
    return _python(LOG_SCRIPT, settings_module, **env).stderr.splitlines()


PRODUCTION_ENV = {
    "SECRET_KEY": "a-long-random-secret-for-the-log-test-0123456789abcdefghijklmnopqrstu",
    "ALLOWED_HOSTS": "lojix.example",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "EMAIL_URL": "smtp+tls://mailer:secret@smtp.lojix.example:587",
    "LOJIX_GATEWAY_WEBHOOK_SECRET": "whsec-log-test-0123456789abcdef",
}


def test_production_logs_one_json_object_per_line_with_the_fields_a_shipper_needs():
    lines = _log_lines("config.settings.production", **PRODUCTION_ENV)  # json by default
    assert len(lines) == 2, lines  # the traceback stays inside its line
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"time", "level", "logger", "message", "request_id", "refund", "amount"}
    assert (first["level"], first["logger"]) == ("WARNING", "lojix.ops")
    assert (first["message"], first["refund"], first["amount"]) == ("refund made", 7, "12.50 USD")
    assert first["request_id"] == "-"
    assert first["time"].endswith("+00:00")
    assert second["message"] == "it broke"
    assert second["exc_info"].startswith("Traceback")
    assert "ZeroDivisionError" in second["exc_info"]


def test_the_demo_logs_readable_text_by_default():
    lines = _log_lines("config.settings.local")
    assert " WARNING lojix.ops [-] refund made" in lines[0]
    assert " ERROR lojix.ops [-] it broke" in lines[1]
    assert lines[2] == "Traceback (most recent call last):"
    assert "ZeroDivisionError: division by zero" in lines


def test_an_unknown_log_format_is_refused_at_start():
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    environment["LOJIX_LOG_FORMAT"] = "xml"
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "LOJIX_LOG_FORMAT must be one of ('text', 'json'), not 'xml'" in result.stderr


# -- /metrics ------------------------------------------------------------------------------------


def _samples(response) -> dict:
    """{(name, frozenset(labels.items())): value} of a Prometheus text exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.mark.django_db
def test_metrics_are_readable_from_the_allowed_addresses_only(settings):
    settings.LOJIX_METRICS_ALLOWED_IPS = ["127.0.0.1", "10.0.0.0/8"]
    settings.LOJIX_METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    refused = Client(REMOTE_ADDR="203.0.113.9").get("/metrics")
    assert refused.status_code == 403
    # a forwarded header a client can set does not count
    forwarded = Client(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert forwarded.get("/metrics").status_code == 403
    # no token configured: a bearer token opens nothing
    empty = Client(REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer ")
    assert empty.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_metrics_are_readable_with_the_bearer_token(settings):
    settings.LOJIX_METRICS_ALLOWED_IPS = []
    settings.LOJIX_METRICS_TOKEN = "scrape-secret-123"
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert Client(**outside).get("/metrics").status_code == 403
    assert Client(**outside).get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 403
    allowed = Client(**outside).get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-123")
    assert allowed.status_code == 200
    assert allowed["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_metrics_count_task_outcomes_refunds_and_the_outbox_backlog(
    buyer, restaurant, api_as, settings, django_assert_max_num_queries, now
):
    # task outcomes: one periodic task ran and succeeded, another last failed
    purge_idempotency_records()
    task_run_record(
        name="credits.tasks.expire_credits",
        started_at=timezone.now(),
        duration_ms=1500,
        outcome=TaskRun.Outcome.FAILED,
        counts={},
        error="OperationalError()",
    )
    # refund outcomes: one card refund made, one the processor declined
    made, declined = place_order(buyer, restaurant), place_order(buyer, restaurant)
    client = api_as(buyer)
    assert (
        client.post(
            f"/api/orders/{made.pk}/cancel/", {}, format="json", HTTP_IDEMPOTENCY_KEY="m-1"
        ).status_code
        == 200
    )
    refunds_processed()  # what the worker does after commit
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": "decline"}
    assert (
        client.post(
            f"/api/orders/{declined.pk}/cancel/", {}, format="json", HTTP_IDEMPOTENCY_KEY="d-1"
        ).status_code
        == 200
    )
    refunds_processed()
    refunds = {r.order_id: r for r in Refund.objects.all()}
    assert (refunds[made.pk].status, refunds[declined.pk].status) == ("succeeded", "failed")
    # outbox backlog: two messages written whose relay never ran
    with transaction.atomic():
        outbox_enqueue(task=SEND_NOTIFICATION_EMAILS, kwargs={"notification_ids": []})
        outbox_enqueue(task=SEND_NOTIFICATION_EMAILS, kwargs={"notification_ids": []})
    OutboxMessage.objects.filter(sent_at__isnull=True).update(
        created_at=timezone.now() - dt.timedelta(seconds=90)
    )
    unsent = OutboxMessage.objects.filter(sent_at__isnull=True).count()

    with django_assert_max_num_queries(3):
        response = Client().get("/metrics")
    assert response.status_code == 200
    samples = _samples(response)

    def value(name, **labels):
        return samples[(name, frozenset(labels.items()))]

    purge = "core.tasks.purge_idempotency_records"
    expire = "credits.tasks.expire_credits"
    assert value("lojix_task_last_run_succeeded", task=purge) == 1
    assert value("lojix_task_last_run_succeeded", task=expire) == 0
    assert value("lojix_task_last_run_duration_seconds", task=expire) == 1.5
    assert ("lojix_task_last_success_timestamp_seconds", frozenset({("task", expire)})) not in (
        samples
    )
    assert value("lojix_tasks_by_last_outcome", outcome="failed") == 1
    assert value("lojix_refunds", destination="card", status="succeeded") == 1
    assert value("lojix_refunds", destination="card", status="failed") == 1
    assert value("lojix_refunds_amount_cents", destination="card", status="succeeded") == (
        refunds[made.pk].amount * 100
    )
    assert value("lojix_outbox_unsent_messages") == unsent >= 2
    assert 90 <= value("lojix_outbox_oldest_unsent_age_seconds") < 120
    assert value("lojix_metrics_database_up") == 1
    # django-prometheus's own request metrics are there too
    assert any(name.startswith("django_http_requests") for name, _ in samples)


@pytest.mark.django_db
def test_a_scrape_survives_the_database_failing(monkeypatch, caplog):
    def database_down():
        raise OperationalError("the database is gone")

    monkeypatch.setattr(metrics, "outbox_backlog", database_down)
    with caplog.at_level(logging.WARNING, logger="core.metrics"):
        response = Client().get("/metrics")
    assert response.status_code == 200
    samples = _samples(response)
    assert samples[("lojix_metrics_database_up", frozenset())] == 0
    assert not any(name.startswith("lojix_outbox") for name, _ in samples)
    assert any(name.startswith("django_http_requests") for name, _ in samples)
    assert "the database did not answer" in caplog.text


# -- Sentry ------------------------------------------------------------------------------------

SENTRY_SCRIPT = """
import json, django
django.setup()
import sentry_sdk
from celery.signals import before_task_publish
from django.conf import settings
client = sentry_sdk.get_client()
print(json.dumps({
    "active": client.is_active(),
    "enabled": settings.SENTRY_ENABLED,
    "pii": client.options.get("send_default_pii"),
    "environment": client.options.get("environment"),
    "integrations": sorted(client.integrations) if client.is_active() else [],
}))
"""


def _sentry_state(**env) -> dict:
    result = _python(SENTRY_SCRIPT, "config.settings.local", **env)
    return json.loads(result.stdout.splitlines()[-1])


def test_sentry_is_off_without_a_dsn():
    assert sentry_sdk.get_client().is_active() is False  # the test process itself
    assert _sentry_state() == {
        "active": False,
        "enabled": False,
        "pii": None,
        "environment": None,
        "integrations": [],
    }


def test_sentry_starts_with_a_dsn_without_personal_data():
    state = _sentry_state(
        SENTRY_DSN="https://public@127.0.0.1:9/1",  # nothing listens; nothing is sent
        SENTRY_ENVIRONMENT="staging",
    )
    assert state["active"] is True
    assert state["enabled"] is True
    assert state["pii"] is False
    assert state["environment"] == "staging"
    assert {"django", "celery"} <= set(state["integrations"])
