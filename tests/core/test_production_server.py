"""The server as production runs it, started for real (issue 11 §1): gunicorn with
`config/gunicorn.conf.py` (gthread, 2 workers x 4 threads) and production's settings with
psycopg's connection pool, against the test database, loaded by wrk the way `make bench` does
(`tests/bench/server.py`, whose helpers this also keeps from rotting)."""

import json
import urllib.request

import pytest
from rest_framework.authtoken.models import Token

from tests.bench.server import gunicorn, wrk
from tests.bench.urls import CONSTANT_JSON_PATH
from tests.conftest import place_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_gunicorn_serves_the_api_from_its_pool_under_load(buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2})
    auth = {"Authorization": f"Token {Token.objects.create(user=buyer).key}"}

    with gunicorn() as base:
        assert _get(f"{base}/readyz")[0] == 200
        status, body = _get(f"{base}/api/orders/{order.pk}/", auth)
        assert (status, body["id"], body["total"]) == (200, order.pk, str(order.total))

        # Twice as many connections as the server has threads, each holding a pooled database
        # connection per request: every request is answered (no socket error, no non-2xx).
        load = wrk(f"{base}/api/orders/{order.pk}/", auth, seconds=2)
        assert load.rps > 0
        assert load.errors == 0
        assert load.p50_ms <= load.p99_ms
        baseline = wrk(base + CONSTANT_JSON_PATH, {}, seconds=1)
        assert baseline.rps > load.rps
