"""Hostile input never reaches a 500 (issue 11 §2): lone UTF-16 surrogates, JSON nested
thousands of levels deep (as a body and inside the multipart `items` string), ids that are not
integers, dates in the year 1, unknown `/api/` routes and a crash inside an API view. Each is a
4xx (or the 500) in JSON with a `code`, and nothing is written."""

import datetime as dt
import json
import time

import pytest
from django.conf import settings
from django.test import Client, RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from core.error_views import bad_request, page_not_found, permission_denied, server_error
from core.models import Notification
from core.safe_json import MAX_JSON_DEPTH, UnsafeJson, safe_json_loads
from credits.models import CreditGrant, CreditTransaction
from disputes.models import Chargeback, GatewayEvent, Incident
from orders import selectors
from orders.gateway import webhook_signature
from orders.models import Order, OrderEvent, OrderItem, Payment
from refunds.models import Refund, RefundEvidence, RefundRequest, RefundRequestEvent
from refunds.services.requests import refund_request_submit
from tests.conftest import advance, place_order

pytestmark = pytest.mark.django_db

SURROGATE = "\ud800"
DELIVER = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")
DEEP = 2000  # levels: 4 KB of brackets, far past Python's recursion limit


def deep(levels: int = DEEP) -> str:
    return "[" * levels + "]" * levels


def raw(payload) -> bytes:
    """`payload` as JSON bytes; a lone surrogate becomes the escape `\\ud800`, as a hostile
    client would send it."""
    return json.dumps(payload, ensure_ascii=True).encode()


def stored() -> dict:
    """Every row an API write could leave behind."""
    models = [
        Order,
        OrderItem,
        OrderEvent,
        Payment,
        RefundRequest,
        RefundRequestEvent,
        RefundEvidence,
        Refund,
        CreditGrant,
        CreditTransaction,
        Chargeback,
        Incident,
        GatewayEvent,
        Notification,
    ]
    return {model.__name__: model.objects.count() for model in models}


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def endpoints(buyer, partner, agent, supervisor, restaurant, menu):
    """name -> (client, url, a body the endpoint accepts) for every kind of JSON write."""
    delivered = advance(place_order(buyer, restaurant, {menu["Margherita"]: 1}), *DELIVER)
    placed = place_order(buyer, restaurant, {menu["Tiramisu"]: 1})
    reviewing = refund_request_submit(
        order_id=advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 1}), *DELIVER).pk,
        actor=buyer,
        reason="missing_items",
        items=[(OrderItem.objects.filter(name="Tiramisu").last().pk, 1)],
    )
    return {
        "order": (
            buyer,
            "/api/orders/",
            {
                "restaurant": restaurant.pk,
                "items": [{"menu_item": menu["Margherita"].pk, "quantity": 1}],
                "fulfillment": "pickup",
            },
        ),
        "refund_request": (
            buyer,
            "/api/refund-requests/",
            {"order": delivered.pk, "reason": "wrong_order", "preferred_method": "original"},
        ),
        "seller_cancel": (
            partner,
            f"/api/seller/orders/{placed.pk}/cancel/",
            {"reason": "item_unavailable", "explanation": "We are out of tiramisu."},
        ),
        "support_approve": (
            agent,
            f"/api/support/refund-requests/{reviewing.pk}/approve/",
            {"method": "original"},
        ),
        "incident": (
            supervisor,
            "/api/support/incidents/",
            {
                "kind": "outage",
                "title": "Payments down",
                "starts_at": (timezone.now() - dt.timedelta(hours=2)).isoformat(),
                "ends_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
                "dry_run": True,
            },
        ),
        "token": (None, "/api/auth/token/", {"username": "nobody", "password": "secret"}),
    }


def post_raw(endpoints, name, body: bytes, **headers):
    user, url, _ = endpoints[name]
    return client_for(user).post(url, body, content_type="application/json", **headers)


def assert_refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == code, response.json()


# -- the safe loader itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(deep(), id="2000 levels"),
        pytest.param("{" + '"a":{' * 40 + "}" * 41, id="40 objects"),
        pytest.param(json.dumps({"k": SURROGATE}), id="surrogate value"),
        pytest.param(json.dumps({SURROGATE: 1}), id="surrogate key"),
        pytest.param('["\\udfff"]', id="low surrogate"),
    ],
)
def test_the_loader_refuses_deep_and_surrogate_json(text):
    with pytest.raises(UnsafeJson):
        safe_json_loads(text.encode())


def test_the_loader_takes_brackets_in_strings_pairs_and_the_cap_itself():
    at_cap = deep(MAX_JSON_DEPTH)
    assert safe_json_loads(json.dumps({"a": "[[[[" * 100 + '\\"{{'})) == {
        "a": "[[[[" * 100 + '\\"{{'
    }
    assert safe_json_loads(b'"\\ud83d\\ude00"') == "\U0001f600"  # a pair is one character
    assert safe_json_loads(at_cap) == json.loads(at_cap)
    with pytest.raises(UnsafeJson):
        safe_json_loads(deep(MAX_JSON_DEPTH + 1))
    with pytest.raises(ValueError, match="not a JSON number"):
        safe_json_loads(b"NaN")


# -- lone surrogates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [
        ("order", "fulfillment"),
        ("order", "delivery_address"),
        ("refund_request", "reason"),
        ("refund_request", "preferred_method"),
        ("seller_cancel", "reason"),
        ("support_approve", "method"),
        ("incident", "kind"),
        ("token", "username"),
    ],
)
def test_a_lone_surrogate_in_a_field_is_a_400(endpoints, endpoint, field):
    body = endpoints[endpoint][2] | {field: f"x{SURROGATE}"}
    before = stored()

    response = post_raw(endpoints, endpoint, raw(body))

    assert_refused(response, 400, "invalid_json")
    assert "surrogate" in response.json()["detail"]
    assert stored() == before


def test_a_lone_surrogate_as_a_key_is_a_400(endpoints):
    body = endpoints["order"][2] | {SURROGATE: "pickup"}
    before = stored()
    assert_refused(post_raw(endpoints, "order", raw(body)), 400, "invalid_json")
    assert stored() == before


def test_surrogate_bytes_in_a_multipart_form_are_refused_as_a_bad_choice(endpoints):
    """Forms are decoded with replacement characters: UTF-8 for a surrogate (ED A0 80) never
    becomes a lone surrogate, so the choice is just not one of the reasons."""
    user, url, body = endpoints["refund_request"]
    boundary = "hostileboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="order"\r\n\r\n'.encode()
        + str(body["order"]).encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="reason"\r\n\r\n'.encode()
        + b"wrong\xed\xa0\x80order",
        f'--{boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\n'.encode()
        + b"\xed\xb0\x80",
    ]
    payload = b"\r\n".join([*parts, f"--{boundary}--\r\n".encode()])
    before = stored()

    response = client_for(user).post(
        url, payload, content_type=f"multipart/form-data; boundary={boundary}"
    )

    assert_refused(response, 400, "invalid_reason")
    assert stored() == before


@pytest.mark.parametrize(
    "items",
    [
        pytest.param(deep(), id="2000 levels"),
        pytest.param(json.dumps([{"order_item": SURROGATE, "quantity": 1}]), id="surrogate"),
    ],
)
def test_hostile_json_in_the_multipart_items_field_is_a_400(endpoints, items):
    user, url, body = endpoints["refund_request"]
    before = stored()

    response = client_for(user).post(url, body | {"items": items}, format="multipart")

    assert_refused(response, 400, "invalid_json")
    assert response.json()["field"] == "items"
    assert stored() == before


# -- deep JSON --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    ["order", "refund_request", "seller_cancel", "support_approve", "incident", "token"],
)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda _: deep(), id="the whole body"),
        pytest.param(lambda valid: json.dumps(valid)[:-1] + ', "x": ' + deep() + "}", id="a field"),
    ],
)
def test_json_nested_thousands_deep_is_a_400(endpoints, endpoint, body):
    payload = body(endpoints[endpoint][2]).encode()
    before = stored()

    # With an Idempotency-Key the body is also fingerprinted before the view parses it.
    response = post_raw(endpoints, endpoint, payload, HTTP_IDEMPOTENCY_KEY="deep-1")

    assert_refused(response, 400, "invalid_json")
    assert f"{MAX_JSON_DEPTH} levels" in response.json()["detail"]
    assert stored() == before


def test_nesting_under_the_cap_reaches_the_usual_validation(endpoints):
    body = endpoints["order"][2] | {"delivery_address": json.loads(deep(MAX_JSON_DEPTH - 1))}
    response = post_raw(endpoints, "order", raw(body))
    assert_refused(response, 400, "wrong_type")


def test_malformed_json_keeps_its_parse_error_code(endpoints):
    assert_refused(post_raw(endpoints, "order", b'{"restaurant": '), 400, "parse_error")


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(deep().encode(), id="deep"),
        pytest.param(raw({"id": SURROGATE, "type": "chargeback.opened", "data": {}}), id="surr"),
    ],
)
def test_the_signed_webhook_refuses_hostile_json(payload):
    signature = webhook_signature(
        secret=settings.LOJIX_GATEWAY_WEBHOOK_SECRET, body=payload, timestamp=int(time.time())
    )
    before = stored()

    response = APIClient().post(
        "/api/gateway/webhooks/",
        payload,
        content_type="application/json",
        HTTP_LOJIX_SIGNATURE=signature,
    )

    assert_refused(response, 400, "invalid_event")
    assert stored() == before


# -- strict types and ranges ------------------------------------------------------------------


def _order_line(valid, **line):
    return {"items": [valid["items"][0] | line]}


@pytest.mark.parametrize(
    ("endpoint", "change", "code"),
    [
        ("order", lambda v: {"restaurant": v["restaurant"] + 0.5}, "wrong_type"),
        ("order", lambda v: {"restaurant": float(v["restaurant"])}, "wrong_type"),
        ("order", lambda v: {"restaurant": True}, "wrong_type"),
        ("order", lambda v: {"restaurant": f"{v['restaurant']}.0"}, "wrong_type"),
        ("order", lambda v: {"restaurant": 2**70}, "unknown_restaurant"),
        ("order", lambda v: {"restaurant": -1}, "unknown_restaurant"),
        ("order", lambda v: _order_line(v, quantity=True), "wrong_type"),
        ("order", lambda v: _order_line(v, quantity=1.5), "wrong_type"),
        ("order", lambda v: _order_line(v, quantity=1.0), "wrong_type"),
        ("order", lambda v: _order_line(v, menu_item=True), "wrong_type"),
        ("refund_request", lambda v: {"order": v["order"] + 0.5}, "wrong_type"),
        ("refund_request", lambda v: {"order": False}, "wrong_type"),
        (
            "refund_request",
            lambda v: {"reason": "missing_items", "items": [{"order_item": 1, "quantity": True}]},
            "wrong_type",
        ),
        ("refund_request", lambda v: {"discovered_at": "0001-01-01T00:00:00Z"}, None),
        ("refund_request", lambda v: {"discovered_at": "9999-12-31T23:59:59Z"}, None),
        ("refund_request", lambda v: {"discovered_at": "1999-12-31T23:59:59Z"}, None),
        ("refund_request", lambda v: {"discovered_at": "9999-12-31T23:59:59-14:00"}, None),
        ("refund_request", lambda v: {"discovered_at": "0001-01-01T00:00:00+14:00"}, None),
        ("refund_request", lambda v: {"discovered_at": 1}, None),
        ("incident", lambda v: {"starts_at": "0001-01-01T00:00:00Z"}, "invalid_datetime"),
        ("incident", lambda v: {"ends_at": "9999-12-31T23:59:59+14:00"}, "invalid_datetime"),
    ],
)
def test_ids_and_moments_are_checked_strictly(endpoints, endpoint, change, code):
    valid = endpoints[endpoint][2]
    before = stored()

    response = post_raw(endpoints, endpoint, raw(valid | change(valid)))

    assert_refused(response, 400, code or "invalid_discovered_at")
    assert stored() == before


def test_a_discovery_before_the_order_was_placed_is_refused(endpoints):
    valid = endpoints["refund_request"][2]
    placed_at = Order.objects.get(pk=valid["order"]).placed_at
    before = stored()

    body = valid | {"discovered_at": (placed_at - dt.timedelta(minutes=1)).isoformat()}
    response = post_raw(endpoints, "refund_request", raw(body))

    assert_refused(response, 400, "invalid_discovered_at")
    assert stored() == before


def test_digit_strings_stay_accepted_as_ids_like_in_multipart(endpoints):
    """The one text form of an integer the API takes, in JSON as in a form: ASCII digits."""
    valid = endpoints["order"][2]
    body = valid | {"restaurant": str(valid["restaurant"])}
    response = post_raw(endpoints, "order", raw(body))
    assert response.status_code == 201, response.content


# -- JSON for every status under /api/ --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/orders/abc/"),
        ("get", "/api/orders/1.5/"),
        ("get", "/api/restaurants/abc/menu/"),
        ("post", "/api/seller/orders/abc/cancel/"),
        ("get", "/api/no-such-thing/"),
        ("get", "/api/"),
        ("delete", "/api/orders/abc/"),
    ],
)
def test_unknown_api_routes_are_a_json_404(buyer, method, path):
    client = Client()
    client.force_login(buyer)
    response = getattr(client, method)(path)
    assert_refused(response, 404, "not_found")


def test_an_unknown_api_route_is_a_json_404_to_a_session_post_without_its_csrf_token(buyer):
    """Schemathesis found it: Django's CSRF check answered the unknown route first, with the
    HTML "Form expired" page; a 404 changes nothing, so it needs no CSRF check."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(buyer)

    response = client.post("/api/seller/orders/abc/cancel/", {"reason": "x"})

    assert_refused(response, 404, "not_found")


@pytest.mark.parametrize(
    "path", ["/api/support/chargebacks/abc/evidence.pdf", "/api/support/chargebacks/1.5/x.json"]
)
def test_an_unknown_api_file_path_is_a_json_404_not_a_redirect(buyer, path):
    """APPEND_SLASH redirected these (301) to the slashed catch-all, which then said 404."""
    client = Client()
    client.force_login(buyer)

    assert_refused(client.get(path), 404, "not_found")


def test_unknown_api_routes_are_json_with_debug_on_too(buyer, settings):
    settings.DEBUG = True  # the demo: Django's technical 404 page for everything else
    response = Client().get("/api/orders/abc/")
    assert_refused(response, 404, "not_found")
    assert Client().get("/api/orders").status_code == 301  # APPEND_SLASH still redirects


def test_an_unknown_page_keeps_the_styled_html_404(buyer):
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_crash_in_an_api_view_is_a_json_500(buyer, monkeypatch):
    def crash(user):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("orders.api.views.order_list_for_buyer", crash)
    assert selectors.order_list_for_buyer is not crash  # only the view's name is replaced
    client = Client(raise_request_exception=False)
    client.force_login(buyer)

    response = client.get("/api/orders/")

    assert_refused(response, 500, "server_error")
    assert "database" not in response.json()["detail"]


@pytest.mark.parametrize(
    ("handler", "status", "code"),
    [
        (bad_request, 400, "bad_request"),
        (permission_denied, 403, "permission_denied"),
        (page_not_found, 404, "not_found"),
        (server_error, 500, "server_error"),
    ],
)
def test_each_error_handler_answers_json_under_api_and_html_elsewhere(handler, status, code):
    factory = RequestFactory()
    args = () if handler is server_error else (Exception("refused"),)

    api = handler(factory.get("/api/orders/"), *args)
    page = handler(factory.get("/orders/"), *args)

    assert (api.status_code, page.status_code) == (status, status)
    assert json.loads(api.content)["code"] == code
    assert page["Content-Type"].startswith("text/html")
