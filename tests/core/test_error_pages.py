"""The styled 403, 404 and 500 pages with DEBUG off (the demo's setting, D-9), and the logs: a
refused request (403) is one line with method, path, user and reason and no traceback; a 500
keeps its traceback."""

import logging

import pytest
from django.db import OperationalError, connection, transaction
from django.test import Client, RequestFactory
from django.urls import path, reverse
from django.views.defaults import server_error

from core.log_filters import ForbiddenOneLine
from orders.models import PolicyVersion
from tests.conftest import place_order


def boom(request):
    raise RuntimeError("the kitchen is on fire")


def database_gone(request):
    """A real failure of PostgreSQL's: a statement cancelled by its timeout (psycopg's
    QueryCanceled, an OperationalError), in a savepoint so the test's transaction lives on."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 1")
        cursor.execute("SELECT pg_sleep(1)")


# This module is also the URLconf of the 500 and 503 tests: views that fail, a page and an API
# path outside DRF, with the project's handler.
urlpatterns = [
    path("boom/", boom),
    path("database-gone/", database_gone),
    path("api/database-gone/", database_gone),
]
handler500 = "core.error_views.server_error"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def forbidden_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "status_code", None) == 403]


@pytest.mark.django_db
def test_an_unknown_page_is_the_styled_404(settings, buyer):
    assert settings.DEBUG is False

    response = client_for(buyer).get("/no-such-page/")

    assert response.status_code == 404
    assert [t.name for t in response.templates][:2] == ["404.html", "base.html"]
    page = response.content.decode()
    assert 'data-error-page="404"' in page
    assert "We could not find that page" in page
    assert "<code>/no-such-page/</code>" in page
    assert f'href="{reverse("orders:list")}"' in page
    assert "Traceback" not in page
    assert "Using the URLconf" not in page


@pytest.mark.django_db
def test_another_buyers_order_is_the_styled_404(buyer, other_buyer, restaurant):
    order = place_order(buyer, restaurant)

    response = client_for(other_buyer).get(reverse("orders:detail", args=[order.pk]))

    assert response.status_code == 404
    assert 'data-error-page="404"' in response.content.decode()
    assert "belongs to another account" in response.content.decode()


@pytest.mark.django_db
def test_an_agent_refused_by_admin_gets_the_styled_403_and_one_log_line(agent, caplog):
    """PermissionDenied raised by admin (an agent approving a policy version, D-4)."""
    version = PolicyVersion.objects.get()
    url = reverse("admin:orders_policyversion_approve", args=[version.pk])

    with caplog.at_level(logging.WARNING):
        response = client_for(agent).post(url)

    assert response.status_code == 403
    page = response.content.decode()
    assert 'data-error-page="403"' in page
    assert "You are not allowed to do this" in page
    assert "signed in as <strong>agent</strong>" in page
    [record] = forbidden_records(caplog)
    assert record.name == "django.request"
    assert record.levelname == "WARNING"
    assert record.getMessage() == f"Forbidden: POST {url} user=agent reason=PermissionDenied"
    assert record.exc_info is None
    assert record.exc_text is None
    assert "Traceback" not in caplog.text


@pytest.mark.django_db
def test_a_buyer_on_admin_is_sent_to_sign_in_with_another_account(buyer):
    response = client_for(buyer).get(reverse("admin:refunds_refundrequest_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_a_non_partner_in_the_seller_portal_gets_a_403_page_and_one_log_line(buyer, caplog):
    url = reverse("seller:queue")

    with caplog.at_level(logging.WARNING):
        response = client_for(buyer).get(url)

    assert response.status_code == 403
    assert "The seller portal is for restaurant partners" in response.content.decode()
    [record] = forbidden_records(caplog)
    assert record.getMessage() == f"Forbidden: GET {url} user=ada reason=Forbidden: {url}"
    assert record.exc_info is None


@pytest.mark.django_db
def test_a_non_partner_acting_on_an_order_gets_the_styled_404(buyer, restaurant):
    """Not their restaurant's order: the seller portal answers as if it did not exist (D-4)."""
    order = place_order(buyer, restaurant)

    response = client_for(buyer).post(reverse("seller:advance", args=[order.pk, "accept"]))

    assert response.status_code == 404
    assert 'data-error-page="404"' in response.content.decode()
    order.refresh_from_db()
    assert order.status == "placed"


@pytest.mark.django_db
def test_a_csrf_failure_is_one_line_too(buyer, caplog):
    client = Client(enforce_csrf_checks=True)
    client.force_login(buyer)

    with caplog.at_level(logging.WARNING):
        response = client.post(reverse("orders:cart_add"), {"menu_item": 1})

    assert response.status_code == 403
    assert 'data-error-page="403-csrf"' in response.content.decode()
    assert "Nothing was done" in response.content.decode()
    [record] = forbidden_records(caplog)
    assert record.name == "django.security.csrf"
    assert record.getMessage().startswith(
        f"Forbidden: POST {reverse('orders:cart_add')} user=ada reason=Forbidden (CSRF cookie"
    )
    assert record.exc_info is None


@pytest.mark.urls(__name__)
def test_a_500_keeps_its_traceback_in_the_log_and_shows_the_standalone_page(caplog):
    client = Client(raise_request_exception=False)

    with caplog.at_level(logging.WARNING):
        response = client.get("/boom/")

    assert response.status_code == 500
    assert 'data-error-page="500"' in response.content.decode()
    [record] = [r for r in caplog.records if getattr(r, "status_code", None) == 500]
    assert record.name == "django.request"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "the kitchen is on fire" in caplog.text


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_failed_database_connection_is_a_503_page_or_json_never_a_500(caplog):
    client = Client(raise_request_exception=False)

    with caplog.at_level(logging.WARNING):
        page = client.get("/database-gone/")
        api = client.get("/api/database-gone/")

    assert (page.status_code, page["Retry-After"]) == (503, "1")
    assert 'data-error-page="503"' in page.content.decode()
    assert "reload the page in a moment" in page.content.decode()
    assert (api.status_code, api["Retry-After"]) == (503, "1")
    assert api.json()["code"] == "database_unavailable"
    records = [r for r in caplog.records if getattr(r, "status_code", None) == 503]
    assert len(records) == 2
    assert all(isinstance(r.exc_info[1], OperationalError) for r in records)  # traceback kept


def test_the_500_page_renders_without_a_database_or_a_request_context():
    """No `db` mark: any query would fail the test."""
    response = server_error(RequestFactory().get("/anything/"))

    page = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in page
    assert 'href="/orders/"' in page
    assert "/static/css/lojix.css" in page


def test_the_one_line_filter_rewrites_a_record_once_when_logging_is_configured_twice():
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Forbidden: %s", ("/x/",), None
    )
    record.status_code = 403
    one_line = ForbiddenOneLine()

    one_line.filter(record)
    first = record.getMessage()
    one_line.filter(record)

    assert first == "Forbidden: - - user=anonymous reason=Forbidden: /x/"
    assert record.getMessage() == first
