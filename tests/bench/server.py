"""Throughput through a real server (issue 11 §1): gunicorn as production runs it
(`config/gunicorn.conf.py`: gthread, 2 workers x 4 threads; `tests/bench/settings.py`:
production's settings, DEBUG off, psycopg's pool) on the bench database, loaded by `wrk` from
its own process over loopback.

Every figure is a ratio to the constant JSON view the same server answers
(`tests/bench/urls.py`), measured in the same run and interleaved with it: for each endpoint,
baseline, endpoint, baseline, endpoint, baseline, endpoint, baseline, each for LOAD_SECONDS at
CONNECTIONS connections, and the ratio of the median endpoint run to the median baseline run.
Then each endpoint again at (at most) half the rate it reached, paced by `pace.lua`, where its
p99 latency is compared with its p50.

The first two figures are the floors of an authenticated request (`tests/bench/urls.py`): no
API operation can do better than the token-checked constant, no signed-in page better than the
session-checked one. Issue 11's targets are read against them.
"""

import contextlib
import http.client
import os
import re
import socket
import statistics
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from core.roles import SUPPORT_AGENT
from orders.views import ORDERS_PER_PAGE
from refunds.services.requests import refund_request_submit
from tests.bench.data import Shop
from tests.bench.figures import Figure, check, note, ratio_at_least, ratio_at_most
from tests.bench.urls import CONSTANT_JSON_PATH, SESSION_FLOOR_PATH, TOKEN_FLOOR_PATH
from tests.factories import UserFactory
from tests.processes import database_url

GUNICORN = str(Path(settings.BASE_DIR) / ".venv" / "bin" / "gunicorn")
WRK = "wrk"
PACE_SCRIPT = Path(__file__).with_name("pace.lua")
LOAD_SECONDS = 4
WARMUP_SECONDS = 2
# Twice the server's threads (2 workers x 4), so that however the kernel shares the keep-alive
# connections between the workers' sockets (config/gunicorn.conf.py, reuse_port), each worker
# has enough to keep its threads busy.
CONNECTIONS = 16
ROUNDS = 3
LIST_ROWS = 25
# The targets of issue 11 (ratios to the constant JSON view; p99 at most 4x p50 at half rate)
# are reported as met or not. The thresholds that fail `make bench` sit just under what this
# machine measured over three runs (README, "Performance"): a real regression fails it. The p99
# over p50 at half rate moved between 3x and 15x from run to run here (random arrivals, four
# threads sharing a worker's interpreter lock), so its threshold only catches a pathology such
# as lock contention or a request that waits on another.
P99_OVER_P50_TARGET = 4.0
P99_OVER_P50_MAX = 20.0


@dataclass(frozen=True)
class Limits:
    """An endpoint's requests/s ratio: `floor`, the threshold, and `target`, what issue 11
    asks (None for the authenticated floors, which only show what any endpoint can reach)."""

    floor: float
    target: float | None


ORDER_DETAIL_API = Limits(floor=0.045, target=0.25)  # the goal beyond it: 0.5
ORDER_PAGE = Limits(floor=0.04, target=0.2)
ORDER_LIST_API = Limits(floor=0.08, target=0.2)
ORDER_LIST_PAGE = Limits(floor=0.052, target=0.2)
SELLER_QUEUE = Limits(floor=0.018, target=0.15)
ADMIN_REVIEW_QUEUE = Limits(floor=0.011, target=0.1)
TOKEN_FLOOR = Limits(floor=0.27, target=None)
SESSION_FLOOR = Limits(floor=0.29, target=None)


@dataclass(frozen=True)
class Load:
    """What one wrk run measured: requests/s, and latency percentiles in milliseconds."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    def __str__(self) -> str:
        return f"{self.rps:7.0f} req/s  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms"


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    headers: dict
    limits: Limits


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS_MS[unit]


def wrk(url: str, headers: dict, seconds: float, pace_ms: float | None = None) -> Load:
    """One wrk run against `url`; with `pace_ms`, each connection waits that long after a
    response before its next request (a fixed rate below the maximum)."""
    command = [WRK, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    if pace_ms is not None:
        command[1:1] = ["-s", str(PACE_SCRIPT)]
        command += ["--", f"{pace_ms:.3f}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+[a-z]+)", output, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)$", output, re.MULTILINE)
    check(socket_errors is None, f"wrk {url}: socket errors {socket_errors and socket_errors[1]}")
    return Load(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        errors=int(errors[1]) if errors else 0,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def gunicorn():
    """The server on a free loopback port, as production starts it; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.bench.settings",
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,  # the sessions made here must be valid there
        "LOJIX_GATEWAY_WEBHOOK_SECRET": "whsec-bench-0123456789abcdef",
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_URL": "dummymail://",
        "SECURE_SSL_REDIRECT": "false",
        "PORT": str(port),
        "LOJIX_LOG_FORMAT": "text",
    }
    config = str(Path(settings.BASE_DIR) / "config" / "gunicorn.conf.py")
    process = subprocess.Popen(
        [GUNICORN, "config.wsgi", "--config", config, "--log-level", "warning"], env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(f"{base}/healthz", process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        check(process.poll() is None, "gunicorn exited while starting")
        with contextlib.suppress(OSError):
            if _status(url, timeout=1) == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /healthz within 30 s")


def _session_cookie(user) -> dict:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return {"Cookie": f"{name}={client.cookies[name].value}"}


def _token(user) -> dict:
    return {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}


def _endpoints() -> list[Endpoint]:
    """The authenticated floors (tests/bench/urls.py), then the figures' data: a buyer with
    LIST_ROWS orders at every stage (the API's list of all, the page's first ORDERS_PER_PAGE,
    the detail of a delivered one, the seller's queue of the open ones), and LIST_ROWS
    missing-item claims waiting in the admin review queue, each on its own delivered order of
    another buyer."""
    shop = Shop()
    shop.place_many(LIST_ROWS)
    delivered = next(order for order in reversed(shop.orders) if order.status == "delivered")
    claims = Shop()
    claims.place_many(LIST_ROWS, [Shop.DELIVERED])
    for order in claims.orders:
        item = order.items.order_by("pk").first()
        refund_request_submit(
            order_id=order.pk, actor=claims.buyer, reason="missing_items", items=[(item.pk, 1)]
        )
    agent = UserFactory(username="bench-agent", is_staff=True, groups=[SUPPORT_AGENT])
    buyer_page, buyer_api = _session_cookie(shop.buyer), _token(shop.buyer)
    return [
        Endpoint("token-checked constant", TOKEN_FLOOR_PATH, buyer_api, TOKEN_FLOOR),
        Endpoint("session-checked constant", SESSION_FLOOR_PATH, buyer_page, SESSION_FLOOR),
        Endpoint(
            "GET /api/orders/{id}/", f"/api/orders/{delivered.pk}/", buyer_api, ORDER_DETAIL_API
        ),
        Endpoint(
            "order page", reverse("orders:detail", args=[delivered.pk]), buyer_page, ORDER_PAGE
        ),
        Endpoint(f"GET /api/orders/ ({LIST_ROWS} rows)", "/api/orders/", buyer_api, ORDER_LIST_API),
        Endpoint(
            f"/orders/ ({ORDERS_PER_PAGE} of {LIST_ROWS} rows)",
            reverse("orders:list"),
            buyer_page,
            ORDER_LIST_PAGE,
        ),
        Endpoint(
            "/seller/ queue",
            reverse("seller:queue"),
            _session_cookie(shop.partner),
            SELLER_QUEUE,
        ),
        Endpoint(
            f"admin review queue ({LIST_ROWS} open)",
            reverse("admin:refunds_refundrequest_changelist"),
            _session_cookie(agent),
            ADMIN_REVIEW_QUEUE,
        ),
    ]


def _status(url: str, headers: dict | None = None, timeout: float = 10) -> int:
    """The status of one GET, redirects not followed."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


def _answers_200(url: str, headers: dict) -> None:
    """wrk counts a redirect as a success: a page must answer 200 itself (not the sign-in
    page's redirect of an unknown session)."""
    status = _status(url, headers)
    check(status == 200, f"GET {url} answered {status}, not 200")


def _ratio(base: str, endpoint: Endpoint, baseline: str) -> tuple[float, Load]:
    """The endpoint's requests/s over the baseline's, interleaved (baseline, endpoint, ...,
    baseline; ROUNDS of the endpoint): the median endpoint run over the median baseline run, so
    one run the machine slowed (or that gunicorn served from one worker) does not decide it.
    Also the endpoint's median run."""
    _answers_200(base + endpoint.path, endpoint.headers)
    wrk(base + endpoint.path, endpoint.headers, WARMUP_SECONDS)
    baselines = [wrk(base + baseline, {}, LOAD_SECONDS)]
    loads = []
    for _ in range(ROUNDS):
        load = wrk(base + endpoint.path, endpoint.headers, LOAD_SECONDS)
        check(load.errors == 0, f"{endpoint.name}: {load.errors} non-2xx responses")
        loads.append(load)
        baselines.append(wrk(base + baseline, {}, LOAD_SECONDS))
    for run in baselines:
        note(f"  constant JSON view      {run}")
    median = sorted(loads, key=lambda load: load.rps)[len(loads) // 2]
    return median.rps / statistics.median(run.rps for run in baselines), median


def _at_half_rate(base: str, endpoint: Endpoint, full: Load) -> Load:
    """The endpoint paced to at most half the rate it reached: each connection waits, on
    average, the time in which CONNECTIONS of them together would ask for full.rps / 2
    requests a second, then its request takes its own time on top (the rate reached is
    printed)."""
    return wrk(
        base + endpoint.path,
        endpoint.headers,
        LOAD_SECONDS,
        pace_ms=1000 * CONNECTIONS / (full.rps / 2),
    )


def throughput_through_gunicorn() -> list[Figure]:
    """Requests/s of pages and API through gunicorn over those of a constant JSON view, and
    p99 over p50 at half the rate reached (module docstring)."""
    endpoints = _endpoints()
    figures = []
    with gunicorn() as base:
        wrk(base + CONSTANT_JSON_PATH, {}, WARMUP_SECONDS)
        for endpoint in endpoints:
            ratio, full = _ratio(base, endpoint, CONSTANT_JSON_PATH)
            half = _at_half_rate(base, endpoint, full)
            note(f"{endpoint.name:<24}{full}  ratio {ratio:.3f}")
            note(f"{'  at half rate':<24}{half}")
            limits = endpoint.limits
            figures.append(
                ratio_at_least(
                    f"rps {endpoint.name} / constant JSON", ratio, limits.floor, limits.target
                )
            )
            figures.append(
                ratio_at_most(
                    f"p99 / p50 {endpoint.name} at half rate",
                    half.p99_ms / half.p50_ms,
                    P99_OVER_P50_MAX,
                    None if limits.target is None else P99_OVER_P50_TARGET,
                )
            )
    return figures


SERVER_BENCHMARKS = [throughput_through_gunicorn]
