"""Sessions read from Redis and kept in the database (core.sessions), on the real Redis; with
Redis down, from the database alone."""

import pytest
import redis
from django.conf import settings
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from core.sessions import CACHE_SECONDS
from tests.conftest import REDIS_DOWN

pytestmark = pytest.mark.django_db


def session_queries(client, path: str) -> tuple[int, list[str]]:
    """The status of a GET and the statements it ran on the session table."""
    with CaptureQueriesContext(connection) as queries:
        status = client.get(path).status_code
    return status, [q["sql"] for q in queries if Session._meta.db_table in q["sql"]]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_signed_in_page_reads_its_session_from_redis_and_the_database_keeps_it(buyer):
    client = signed_in(buyer)
    key = client.session.session_key

    assert session_queries(client, reverse("orders:list")) == (200, [])
    assert Session.objects.get(session_key=key).get_decoded()["_auth_user_id"] == str(buyer.pk)


def test_a_session_stays_in_redis_five_minutes_at_most(buyer):
    key = signed_in(buyer).session.session_key
    ttl = redis.Redis.from_url(settings.REDIS_URL).ttl(f":1:{KEY_PREFIX}{key}")
    assert 0 < ttl <= CACHE_SECONDS < settings.SESSION_COOKIE_AGE


def test_signing_out_ends_the_session_in_redis_and_the_database(buyer):
    client = signed_in(buyer)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value

    assert client.post(reverse("logout")).status_code == 302

    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = cookie
    response = replay.get(reverse("orders:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not Session.objects.filter(session_key=cookie).exists()


def test_with_redis_down_a_page_reads_its_session_from_the_database(buyer):
    client = signed_in(buyer)  # while Redis was up
    with override_settings(CACHES=REDIS_DOWN):
        status, queries = session_queries(client, reverse("orders:list"))
        assert status == 200
        assert len(queries) == 1

        other = signed_in(buyer)  # saved to the database only
        assert session_queries(other, reverse("orders:list"))[0] == 200
