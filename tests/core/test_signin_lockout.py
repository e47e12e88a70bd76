"""Signing in under django-axes (D-11): the sign-in page, the admin and POST /api/auth/token/
lock a username after too many failures from anywhere and an address after too many failures
for any usernames; X-Forwarded-For counts only behind trusted proxies; Redis down changes
nothing, as failures live in the database."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.display import when_text
from core.signin import client_ip
from tests.conftest import REDIS_DOWN

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # tests.factories.UserFactory's password
LIMIT = 4
TOKEN_URL = "/api/auth/token/"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def signed_in_user_id(client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value else None


def page_sign_in(client, username, password, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def admin_sign_in(client, username, password, **extra):
    data = {"username": username, "password": password, "next": "/admin/"}
    return client.post(ADMIN_LOGIN, data, **extra)


def api_sign_in(client, username, password, **extra):
    body = {"username": username, "password": password}
    return client.post(TOKEN_URL, body, format="json", **extra)


def assert_locked_page(response):
    assert response.status_code == 429
    text = response.content.decode()
    assert "Sign-in paused" in text
    assert "Too many failed sign-ins. Try again after" in text
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert "script-src 'self'" in response["Content-Security-Policy"]


# -- the sign-in page -----------------------------------------------------------------------


def test_the_page_locks_a_username_and_then_refuses_even_the_right_password(client, buyer):
    statuses = [page_sign_in(client, "ada", "wrong").status_code for _ in range(LIMIT - 1)]
    assert statuses == [200] * (LIMIT - 1)

    assert_locked_page(page_sign_in(client, "ada", "wrong"))
    response = page_sign_in(client, "ada", PASSWORD)

    assert_locked_page(response)
    last = AccessAttempt.objects.get(username="ada").attempt_time
    assert when_text(last + timedelta(minutes=15)) in response.content.decode()
    assert signed_in_user_id(client) is None


def test_a_username_is_locked_whatever_address_the_guesses_come_from(buyer):
    for n in range(LIMIT):
        page_sign_in(Client(REMOTE_ADDR=f"10.0.0.{n + 1}"), "ada", "wrong")

    fresh = Client(REMOTE_ADDR="10.9.9.9")
    assert_locked_page(page_sign_in(fresh, "ada", PASSWORD))
    assert signed_in_user_id(fresh) is None


def test_an_address_is_locked_whatever_usernames_it_tries(buyer, other_buyer):
    attacker = Client(REMOTE_ADDR="10.6.6.6")
    for n in range(LIMIT):
        page_sign_in(attacker, f"guess{n}", "wrong")

    assert_locked_page(page_sign_in(attacker, "grace", PASSWORD))
    # Elsewhere, the same accounts sign in.
    elsewhere = Client(REMOTE_ADDR="10.1.1.1")
    response = page_sign_in(elsewhere, "ada", PASSWORD)
    assert (response.status_code, signed_in_user_id(elsewhere)) == (302, buyer.pk)


def test_signing_in_to_an_own_account_does_not_wipe_the_guesses_in_between(buyer, other_buyer):
    attacker = Client(REMOTE_ADDR="10.6.6.6")  # ada is the attacker's own account
    for n in range(LIMIT - 1):
        page_sign_in(attacker, "grace", f"guess{n}")
    assert page_sign_in(attacker, "ada", PASSWORD).status_code == 302
    attacker.post(reverse("logout"))

    assert_locked_page(page_sign_in(attacker, "grace", "one-more-guess"))
    assert_locked_page(page_sign_in(Client(REMOTE_ADDR="10.1.1.1"), "grace", PASSWORD))


def test_failures_below_the_limit_do_not_stop_a_sign_in(client, buyer):
    for _ in range(LIMIT - 1):
        page_sign_in(client, "ada", "wrong")

    response = page_sign_in(client, "ada", PASSWORD)

    assert (response.status_code, signed_in_user_id(client)) == (302, buyer.pk)


def test_the_lock_ends_after_the_cool_off_and_more_guesses_do_not_extend_it(client, buyer):
    for _ in range(LIMIT):
        page_sign_in(client, "ada", "wrong")
    locked_at = AccessAttempt.objects.get(username="ada").attempt_time
    page_sign_in(client, "ada", "wrong")  # while locked: not recorded, the time stays
    assert AccessAttempt.objects.get(username="ada").attempt_time == locked_at

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))
    response = page_sign_in(client, "ada", PASSWORD)

    assert (response.status_code, signed_in_user_id(client)) == (302, buyer.pk)


# -- X-Forwarded-For ----------------------------------------------------------------------------


def test_a_forged_forwarded_for_does_not_spread_guesses_over_addresses(client, buyer):
    for n in range(40):
        page_sign_in(client, f"guess{n}", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n + 1}")

    assert_locked_page(page_sign_in(client, "ada", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7"))
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_behind_one_proxy_only_the_address_the_proxy_saw_counts(settings, buyer):
    settings.LOJIX_TRUSTED_PROXY_COUNT = 1
    proxy = Client(REMOTE_ADDR="10.0.0.2")  # the proxy appends the address it saw: 192.0.2.50
    for n in range(LIMIT):
        forged = f"203.0.113.{n + 1}, 192.0.2.50"
        page_sign_in(proxy, f"guess{n}", "wrong", HTTP_X_FORWARDED_FOR=forged)

    response = page_sign_in(proxy, "ada", PASSWORD, HTTP_X_FORWARDED_FOR="9.9.9.9, 192.0.2.50")
    assert_locked_page(response)
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"192.0.2.50"}
    # Another client through the same proxy is not locked.
    response = page_sign_in(proxy, "ada", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.77")
    assert (response.status_code, signed_in_user_id(proxy)) == (302, buyer.pk)


@pytest.mark.parametrize(
    ("count", "forwarded_for", "expected"),
    [
        (0, "203.0.113.1", "10.0.0.2"),
        (0, "", "10.0.0.2"),
        (1, "203.0.113.1", "203.0.113.1"),
        (1, "6.6.6.6, 203.0.113.1", "203.0.113.1"),
        (2, "6.6.6.6, 203.0.113.1, 10.0.0.1", "203.0.113.1"),
        (2, "203.0.113.1", "10.0.0.2"),  # shorter than the proxies: not through all of them
        (1, " , ", "10.0.0.2"),
    ],
)
def test_client_ip_trusts_only_the_configured_proxies(settings, count, forwarded_for, expected):
    settings.LOJIX_TRUSTED_PROXY_COUNT = count
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded_for)
    assert client_ip(request) == expected


# -- the admin ----------------------------------------------------------------------------------


def test_the_admin_sign_in_locks_out_a_support_agent_after_wrong_passwords(client, agent):
    for _ in range(LIMIT - 1):
        assert admin_sign_in(client, "agent", "wrong").status_code == 200

    assert_locked_page(admin_sign_in(client, "agent", "wrong"))
    assert_locked_page(admin_sign_in(client, "agent", PASSWORD))
    assert signed_in_user_id(client) is None
    assert client.get("/admin/").status_code == 302


def test_the_admin_signs_an_agent_in(client, agent):
    response = admin_sign_in(client, "agent", PASSWORD)
    assert (response.status_code, signed_in_user_id(client)) == (302, agent.pk)
    assert client.get("/admin/").status_code == 200


# -- POST /api/auth/token/ ----------------------------------------------------------------------


def test_the_token_api_locks_out_with_json(buyer):
    client = APIClient()
    statuses = [api_sign_in(client, "ada", "guess").status_code for _ in range(LIMIT - 1)]
    assert statuses == [400] * (LIMIT - 1)

    assert api_sign_in(client, "ada", "guess").status_code == 429
    response = api_sign_in(client, "ada", PASSWORD)

    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "locked_out"
    assert body["detail"].startswith("Too many failed sign-ins. Try again after ")
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert not Token.objects.exists()


def test_the_token_api_ignores_a_forged_forwarded_for(buyer):
    client = APIClient()
    for n in range(40):
        api_sign_in(client, "ada", "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{n + 1}")

    response = api_sign_in(client, "ada", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7")

    assert (response.status_code, response.json()["code"]) == (429, "locked_out")
    assert AccessAttempt.objects.get().failures_since_start == LIMIT
    assert not Token.objects.exists()


def test_failures_on_the_three_surfaces_count_together(client, agent):
    page_sign_in(client, "agent", "wrong")
    admin_sign_in(client, "agent", "wrong")
    api_sign_in(APIClient(), "agent", "wrong")
    assert api_sign_in(APIClient(), "agent", "wrong").status_code == 429

    assert_locked_page(admin_sign_in(client, "agent", PASSWORD))


# -- Redis down ---------------------------------------------------------------------------------


@pytest.fixture
def redis_down():
    with override_settings(CACHES=REDIS_DOWN):
        with pytest.raises(Exception):  # noqa: B017, PT011 - any connection error will do
            cache.set("probe", 1)
        yield


@pytest.mark.usefixtures("redis_down")
def test_with_redis_down_every_surface_signs_in(client, buyer, agent):
    assert client.get(reverse("login")).status_code == 200
    response = page_sign_in(client, "ada", PASSWORD)
    assert (response.status_code, signed_in_user_id(client)) == (302, buyer.pk)

    admin = Client()
    response = admin_sign_in(admin, "agent", PASSWORD)
    assert (response.status_code, signed_in_user_id(admin)) == (302, agent.pk)

    response = api_sign_in(APIClient(), "ada", PASSWORD)
    assert response.json()["token"] == Token.objects.get(user=buyer).key


@pytest.mark.usefixtures("redis_down")
def test_with_redis_down_lockouts_still_hold(client, buyer):
    for _ in range(LIMIT):
        page_sign_in(client, "ada", "wrong")

    assert_locked_page(page_sign_in(client, "ada", PASSWORD))
    assert_locked_page(admin_sign_in(Client(), "ada", PASSWORD))
    assert api_sign_in(APIClient(), "ada", PASSWORD).status_code == 429
