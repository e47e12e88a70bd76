"""Probes for a load balancer or an orchestrator: `/healthz` says the process is up and
answers requests (nothing else touched, so a database outage does not restart every web
process), `/readyz` says it can do its work: the database answers a trivial query and the
Celery broker accepts a connection. Served by `core.middleware.OperationsEndpointsMiddleware`
ahead of host validation, the HTTPS redirect and sessions, so a probe to the pod's address
over plain HTTP gets its answer.
"""

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from celery import current_app
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class CheckResult:
    """One dependency's answer: `ok`, how long the check took in milliseconds and, when it
    failed, the exception's class name (never its message, which may hold a URL)."""

    ok: bool
    duration_ms: int
    error: str = ""

    def as_dict(self) -> dict:
        return {"status": "ok" if self.ok else "unavailable", "duration_ms": self.duration_ms} | (
            {"error": self.error} if self.error else {}
        )


def database_check() -> CheckResult:
    """Run `SELECT 1` on the default database (connecting if needed). Never raises."""
    return _timed("database", _select_one)


def broker_check(timeout: float = BROKER_TIMEOUT_SECONDS) -> CheckResult:
    """Open a new connection to the Celery broker (`broker_url`: Redis, or kombu's
    `filesystem://` in the demo) with no retry and `timeout` seconds to connect, then close it.
    Never raises."""
    return _timed("broker", lambda: _broker_connect(timeout))


def healthz(request: HttpRequest) -> JsonResponse:
    """`GET /healthz`: 200 `{"status": "ok"}` while the process serves requests."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """`GET /readyz`: 200 `{"status": "ok", "checks": {"database": {...}, "broker": {...}}}`
    when both dependencies answer; 503 with `"status": "unavailable"` and
    `"failing": [names]` when one does not."""
    checks = {"database": database_check(), "broker": broker_check()}
    failing = [name for name, result in checks.items() if not result.ok]
    body = {
        "status": "unavailable" if failing else "ok",
        "checks": {name: result.as_dict() for name, result in checks.items()},
    }
    if failing:
        body["failing"] = failing
    response = JsonResponse(body, status=503 if failing else 200)
    # Each failing check logged its own warning; Django would add an ERROR per probe (every
    # few seconds, and each one a Sentry event).
    response._has_been_logged = True
    return response


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _broker_connect(timeout: float) -> None:
    with current_app.connection_for_write(connect_timeout=timeout) as broker:
        broker.ensure_connection(max_retries=0, timeout=timeout)
        if broker.transport_cls == "filesystem":
            _filesystem_broker_writable(broker.transport_options)


def _filesystem_broker_writable(options: dict) -> None:
    """kombu's filesystem transport "connects" to anything: what it needs is its queue folders,
    present and writable (FileNotFoundError / PermissionError otherwise)."""
    for key in ("data_folder_in", "data_folder_out"):
        folder = Path(options.get(key) or ".")
        if not folder.is_dir():
            raise FileNotFoundError(key)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(key)


def _timed(name: str, check) -> CheckResult:
    started = time.monotonic()
    try:
        check()
    except Exception as error:
        duration_ms = round((time.monotonic() - started) * 1000)
        logger.warning(
            "readiness check failed",
            extra={"check": name, "error": type(error).__name__, "duration_ms": duration_ms},
        )
        return CheckResult(ok=False, duration_ms=duration_ms, error=type(error).__name__)
    return CheckResult(ok=True, duration_ms=round((time.monotonic() - started) * 1000))
