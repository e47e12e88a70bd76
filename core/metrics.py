"""Prometheus metrics: django-prometheus's request, response and process metrics, plus lojix's
own, read from the database when `/metrics` is scraped.

Web, worker and beat are separate processes (and gunicorn runs several web workers), so
counters kept in one process's memory would each tell part of the story. `LojixCollector`
instead asks the database, which every process writes to, at scrape time: three queries
(`core.selectors.task_run_outcomes`, `refund_outcomes`, `outbox_backlog`), the same answer
from whichever web process is scraped.

Who may read `/metrics`: a client whose address is in `LOJIX_METRICS_ALLOWED_IPS` (addresses
or networks; the local machine by default, none in production) or one presenting
`Authorization: Bearer <LOJIX_METRICS_TOKEN>`. Anyone else gets 403.
"""

import hmac
import ipaddress
import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django_prometheus.exports import ExportToDjangoView
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

from core.money import ZERO, cents
from core.selectors import outbox_backlog, refund_outcomes, task_run_outcomes

logger = logging.getLogger(__name__)


class LojixCollector(Collector):
    """lojix's metrics, all gauges read from the database at scrape time:

    - `lojix_task_last_run_succeeded{task}`: 1 if the periodic task's last run succeeded, 0 if
      it failed; `lojix_task_last_run_timestamp_seconds{task}`,
      `lojix_task_last_run_duration_seconds{task}`, `lojix_task_last_success_timestamp_seconds
      {task}` (absent until it has succeeded once); `lojix_tasks_by_last_outcome{outcome}`.
    - `lojix_refunds{destination,status}` and `lojix_refunds_amount_cents{destination,status}`
      (in cents of the deployment's currency: an integer, exact in Prometheus's float64 samples
      up to 2**53 cents, where a float of the Decimal sum would round).
    - `lojix_outbox_unsent_messages`, `lojix_outbox_failing_messages` and
      `lojix_outbox_oldest_unsent_age_seconds` (0 with no backlog).
    - `lojix_metrics_database_up`: 0 when the database did not answer; the others are then
      left out of that scrape, which still succeeds.
    """

    def describe(self):
        """The metric names, without touching the database (called once, at registration)."""
        return _families(task_runs=[], refunds=[], backlog=None)

    def collect(self):
        """Three queries (see the module docstring); never raises for a database error."""
        try:
            task_runs, refunds, backlog = task_run_outcomes(), refund_outcomes(), outbox_backlog()
        except DatabaseError:
            logger.warning("metrics: the database did not answer", exc_info=True)
            database_up = GaugeMetricFamily(
                "lojix_metrics_database_up", "1 if the database answered this scrape."
            )
            database_up.add_metric([], 0)
            return [database_up]
        return _families(task_runs=task_runs, refunds=refunds, backlog=backlog)


_registered: dict[int, LojixCollector] = {}


def lojix_collector_register(registry: CollectorRegistry = REGISTRY) -> LojixCollector:
    """Register one `LojixCollector` with `registry` (the process's default one, which
    `/metrics` exports); a second call returns the first collector instead of registering
    another (prometheus_client refuses duplicate names). Called by `CoreConfig.ready`."""
    if id(registry) not in _registered:
        collector = LojixCollector()
        registry.register(collector)
        _registered[id(registry)] = collector
    return _registered[id(registry)]


def metrics_allowed(request: HttpRequest) -> bool:
    """True if the client may read `/metrics`: its `REMOTE_ADDR` (never a forwarded header a
    client could set) lies in `LOJIX_METRICS_ALLOWED_IPS`, or it sends the bearer token
    `LOJIX_METRICS_TOKEN` (compared in constant time; an empty setting accepts no token)."""
    token = settings.LOJIX_METRICS_TOKEN
    sent = request.META.get("HTTP_AUTHORIZATION", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(allowed, strict=False)
        for allowed in settings.LOJIX_METRICS_ALLOWED_IPS
    )


def metrics(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`: the Prometheus text format (django-prometheus's export of the process
    registry, which holds `LojixCollector`), or 403 for a client `metrics_allowed` refuses."""
    if not metrics_allowed(request):
        return HttpResponseForbidden("metrics: not allowed from here\n", content_type="text/plain")
    return ExportToDjangoView(request)


def _families(*, task_runs: list[dict], refunds: list[dict], backlog: dict | None) -> list:
    return [*_task_families(task_runs), *_refund_families(refunds), *_outbox_families(backlog)]


def _task_families(task_runs: list[dict]) -> list:
    succeeded = GaugeMetricFamily(
        "lojix_task_last_run_succeeded",
        "1 if the periodic task's last run succeeded, 0 if it failed.",
        labels=["task"],
    )
    started = GaugeMetricFamily(
        "lojix_task_last_run_timestamp_seconds",
        "When the periodic task's last run started (Unix time).",
        labels=["task"],
    )
    duration = GaugeMetricFamily(
        "lojix_task_last_run_duration_seconds",
        "How long the periodic task's last run took.",
        labels=["task"],
    )
    last_success = GaugeMetricFamily(
        "lojix_task_last_success_timestamp_seconds",
        "When the periodic task last succeeded (Unix time).",
        labels=["task"],
    )
    by_outcome = GaugeMetricFamily(
        "lojix_tasks_by_last_outcome",
        "Periodic tasks counted by the outcome of their last run.",
        labels=["outcome"],
    )
    outcomes = {"succeeded": 0, "failed": 0}
    for run in task_runs:
        task = [run["name"]]
        outcomes[run["outcome"]] = outcomes.get(run["outcome"], 0) + 1
        succeeded.add_metric(task, 1 if run["outcome"] == "succeeded" else 0)
        started.add_metric(task, run["started_at"].timestamp())
        duration.add_metric(task, run["duration_ms"] / 1000)
        if run["last_success_at"] is not None:
            last_success.add_metric(task, run["last_success_at"].timestamp())
    for outcome, count in outcomes.items():
        by_outcome.add_metric([outcome], count)
    return [succeeded, started, duration, last_success, by_outcome]


def _refund_families(refunds: list[dict]) -> list:
    count = GaugeMetricFamily(
        "lojix_refunds",
        "Refunds by destination and status.",
        labels=["destination", "status"],
    )
    amount = GaugeMetricFamily(
        "lojix_refunds_amount_cents",
        "The sum of refunds by destination and status, in cents of the deployment's currency.",
        labels=["destination", "status"],
    )
    for group in refunds:
        labels = [group["destination"], group["status"]]
        count.add_metric(labels, group["count"])
        amount.add_metric(labels, cents(group["amount"] or ZERO))
    return [count, amount]


def _outbox_families(backlog: dict | None) -> list:
    unsent = GaugeMetricFamily(
        "lojix_outbox_unsent_messages", "Outbox messages not yet handed to the broker."
    )
    failing = GaugeMetricFamily(
        "lojix_outbox_failing_messages",
        "Unsent outbox messages whose hand-over to the broker failed at least once.",
    )
    oldest = GaugeMetricFamily(
        "lojix_outbox_oldest_unsent_age_seconds",
        "Age of the oldest unsent outbox message (0 with no backlog).",
    )
    database_up = GaugeMetricFamily(
        "lojix_metrics_database_up", "1 if the database answered this scrape."
    )
    if backlog is not None:
        unsent.add_metric([], backlog["unsent"])
        failing.add_metric([], backlog["failing"])
        oldest.add_metric([], _age_seconds(backlog["oldest_created_at"]))
        database_up.add_metric([], 1)
    return [unsent, failing, oldest, database_up]


def _age_seconds(moment) -> float:
    if moment is None:
        return 0.0
    return max((timezone.now() - moment).total_seconds(), 0.0)
