"""The refund request API (D-10): the buyer's requests, photos and replies, the restaurant's
verification and support's decisions; who may do what (every role x every endpoint); exact
suggested amounts; two agents approving at once; replayed Idempotency-Keys; uploads that are
refused and store nothing."""

import datetime as dt
import io
import json
from decimal import Decimal as D

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from core.models import Notification
from core.roles import SUPPORT_AGENT
from credits.models import CreditGrant
from refunds.api.urls import SUPPORT_ACTIONS
from refunds.models import (
    Refund,
    RefundEvidence,
    RefundMessage,
    RefundRequest,
    RefundRequestEvent,
)
from refunds.services.decisions import refund_request_approve
from refunds.services.execution import refund_order
from refunds.services.requests import (
    refund_request_ask_restaurant,
    refund_request_request_info,
    refund_request_submit,
)
from tests.concurrency import run_concurrently
from tests.conftest import advance, give_credit, place_order, processor_refunds, refunds_processed
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = "/api/refund-requests/"
SELLER_LIST = "/api/seller/refund-requests/"
ROLES = ["anonymous", "buyer", "other_buyer", "partner", "other_partner", "agent", "supervisor"]
DELIVER = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def detail_url(request_id) -> str:
    return f"/api/refund-requests/{request_id}/"


def evidence_url(request_id) -> str:
    return f"/api/refund-requests/{request_id}/evidence/"


def reply_url(request_id) -> str:
    return f"/api/refund-requests/{request_id}/reply/"


def verify_url(request_id) -> str:
    return f"/api/seller/refund-requests/{request_id}/verify/"


def support_url(request_id, action) -> str:
    return f"/api/support/refund-requests/{request_id}/{action}/"


def photo(name="spill.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def not_an_image() -> SimpleUploadedFile:
    return SimpleUploadedFile("fake.png", b"not an image at all", content_type="image/png")


def line(order, name) -> int:
    return order.items.get(name=name).pk


def submit(order, buyer, reason="wrong_order", **kwargs) -> RefundRequest:
    return refund_request_submit(order_id=order.pk, actor=buyer, reason=reason, **kwargs)


def delivered_order(buyer, restaurant, items, **kwargs):
    return advance(place_order(buyer, restaurant, items, **kwargs), *DELIVER)


def _iso(moment: dt.datetime) -> str:
    return timezone.localtime(moment).isoformat().replace("+00:00", "Z")


def stored() -> dict:
    """Everything a refund request endpoint writes; equal before and after a refusal."""
    return {
        "requests": RefundRequest.objects.count(),
        "events": RefundRequestEvent.objects.count(),
        "messages": RefundMessage.objects.count(),
        "evidence": RefundEvidence.objects.count(),
        "refunds": Refund.objects.count(),
        "gateway_refunds": len(processor_refunds()),
        "grants": CreditGrant.objects.count(),
        "notifications": Notification.objects.count(),
    }


@pytest.fixture
def other_agent(db):
    """A second agent, who decides where the test's own support user must not have."""
    return UserFactory(username="agent2", first_name="Quinn", is_staff=True, groups=[SUPPORT_AGENT])


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def delivered(now, buyer, restaurant, menu):
    """2 Margherita + 1 Tiramisu + 2.99 delivery = 33.99 by card, delivered at NOW."""
    return delivered_order(buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 1})


@pytest.fixture
def reviewing(delivered, buyer) -> RefundRequest:
    """A missing tiramisu, waiting for support: 6.00 suggested."""
    return submit(delivered, buyer, "missing_items", items=[(line(delivered, "Tiramisu"), 1)])


# -- who may do what: every role x every endpoint ----------------------------------------------


def _state_order(ctx):
    return {"order": ctx["delivered"].pk, "request": None}


def _state_review(ctx):
    request = ctx["reviewing"]()
    return {"order": request.order_id, "request": request.pk}


def _state_awaiting_restaurant(ctx):
    request = ctx["reviewing"]()
    refund_request_ask_restaurant(
        request_id=request.pk, actor=ctx["other_agent"], question="Was the tiramisu packed?"
    )
    return {"order": request.order_id, "request": request.pk}


def _state_awaiting_supervisor(ctx):
    """65.49, above the 50.00 threshold: approved by another agent, waiting for a supervisor."""
    order = delivered_order(ctx["buyer"], ctx["restaurant"], {ctx["menu"]["Margherita"]: 5})
    request = submit(order, ctx["buyer"], "wrong_order")
    refund_request_approve(request_id=request.pk, actor=ctx["other_agent"])
    return {"order": order.pk, "request": request.pk}


STATES = {
    "order": _state_order,
    "review": _state_review,
    "awaiting_restaurant": _state_awaiting_restaurant,
    "awaiting_supervisor": _state_awaiting_supervisor,
}

EXPLAINED = "Half the tiramisu reached you."
BUYER_ONLY = {"anonymous": 401, "buyer": 200, **dict.fromkeys(ROLES[2:], 404)}
PARTNER_ONLY = {
    "anonymous": 401,
    **dict.fromkeys(["buyer", "other_buyer", "agent", "supervisor"], 403),
    "partner": 200,
    "other_partner": 404,
}
SUPPORT_ONLY = {
    "anonymous": 401,
    **dict.fromkeys(["buyer", "other_buyer", "partner", "other_partner"], 403),
    "agent": 200,
    "supervisor": 200,
}
# endpoint: (method, url, body, format, state, expected status by role)
ENDPOINTS = {
    "list": ("get", lambda ids: LIST, None, None, "review",
             {"anonymous": 401, **dict.fromkeys(ROLES[1:], 200)}),
    "submit": ("post", lambda ids: LIST, lambda: {"order": "ORDER", "reason": "wrong_order"},
               "json", "order", BUYER_ONLY | {"buyer": 201}),
    "detail": ("get", lambda ids: detail_url(ids["request"]), None, None, "review", BUYER_ONLY),
    "evidence": ("post", lambda ids: evidence_url(ids["request"]), lambda: {"file": photo()},
                 "multipart", "review", BUYER_ONLY | {"buyer": 201}),
    "reply": ("post", lambda ids: reply_url(ids["request"]), lambda: {"body": "It never came."},
              "json", "review", BUYER_ONLY | {"buyer": 201}),
    "seller_list": ("get", lambda ids: SELLER_LIST, None, None, "awaiting_restaurant",
                    PARTNER_ONLY | {"other_partner": 200}),
    "verify": ("post", lambda ids: verify_url(ids["request"]),
               lambda: {"note": "Packed: it is on our checklist."}, "json",
               "awaiting_restaurant", PARTNER_ONLY),
    "approve": ("post", lambda ids: support_url(ids["request"], "approve"), lambda: {}, "json",
                "review", SUPPORT_ONLY),
    "partially-approve": ("post", lambda ids: support_url(ids["request"], "partially-approve"),
                          lambda: {"amount": "3.00", "explanation": EXPLAINED}, "json",
                          "review", SUPPORT_ONLY),
    "deny": ("post", lambda ids: support_url(ids["request"], "deny"),
             lambda: {"explanation": "The driver's photo shows the tiramisu."}, "json",
             "review", SUPPORT_ONLY),
    "request-info": ("post", lambda ids: support_url(ids["request"], "request-info"),
                     lambda: {"question": "A photo of the bag, please?"}, "json", "review",
                     SUPPORT_ONLY),
    "ask-restaurant": ("post", lambda ids: support_url(ids["request"], "ask-restaurant"),
                       lambda: {"question": "Was the tiramisu packed?"}, "json", "review",
                       SUPPORT_ONLY),
    "offer-credit": ("post", lambda ids: support_url(ids["request"], "offer-credit"),
                     lambda: {"amount": "4.00", "explanation": "A credit for the trouble."},
                     "json", "review", SUPPORT_ONLY),
    # Four eyes: an agent is refused by the service (403 `supervisor_required`, as every
    # supervisors' endpoint refuses an agent), a supervisor pays.
    "second-approval": ("post", lambda ids: support_url(ids["request"], "second-approval"),
                        lambda: {}, "json", "awaiting_supervisor",
                        SUPPORT_ONLY | {"agent": 403}),
}  # fmt: skip
ERROR_CODES = {401: "not_authenticated", 404: "not_found"}
FORBIDDEN_CODES = {"seller_list": "not_a_partner", "verify": "not_a_partner"}
OWNERS = {"list": "buyer", "seller_list": "partner"}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_role_matrix(endpoint, role, users, buyer, restaurant, menu, delivered, other_agent):
    method, url, body, body_format, state, expected = ENDPOINTS[endpoint]
    ctx = {
        "buyer": buyer,
        "restaurant": restaurant,
        "menu": menu,
        "delivered": delivered,
        "other_agent": other_agent,
        "reviewing": lambda: submit(
            delivered, buyer, "missing_items", items=[(line(delivered, "Tiramisu"), 1)]
        ),
    }
    ids = STATES[state](ctx)
    data = body() if body else None
    if data and data.get("order") == "ORDER":
        data["order"] = ids["order"]
    before = stored()

    response = getattr(client_for(users[role]), method)(url(ids), data, format=body_format)

    assert response.status_code == expected[role], response.content
    if response.status_code >= 400:
        assert stored() == before
        code = response.json()["code"]
        if (endpoint, role) == ("second-approval", "agent"):
            assert code == "supervisor_required"
        elif response.status_code == 403:
            assert code == FORBIDDEN_CODES.get(endpoint, "not_support")
        else:
            assert code == ERROR_CODES[response.status_code]
    elif endpoint in OWNERS:
        assert response.json()["count"] == (1 if role == OWNERS[endpoint] else 0)
    elif method == "post":
        assert stored() != before
        assert response.json()["id"] == RefundRequest.objects.latest("pk").pk


# -- the buyer asks ----------------------------------------------------------------------------


def test_a_partial_claim_returns_the_exact_suggested_amount(api_as, buyer, restaurant, menu, now):
    """33.99 ordered, 3.00 of it promotional credit: 30.99 paid. Each named line is refunded
    as its share of what was paid (D-7): Tiramisu 6.00 x 30.99 / 33.99 = 5.4704 -> 5.47 and a
    Margherita 12.50 x 30.99 / 33.99 = 11.3967 -> 11.40; 16.87 in all."""
    give_credit(buyer, "3.00", kind="promo")
    order = delivered_order(
        buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 1}, use_credit=True
    )
    assert order.amount_paid == D("30.99")
    tiramisu, margherita = line(order, "Tiramisu"), line(order, "Margherita")

    response = api_as(buyer).post(
        LIST,
        {
            "order": order.pk,
            "reason": "missing_items",
            "items": [{"order_item": tiramisu, "quantity": 1},
                      {"order_item": margherita, "quantity": 1}],
            "description": "No tiramisu and one pizza short.",
            "preferred_method": "account_credit",
        },
        format="json",
    )  # fmt: skip

    assert response.status_code == 201, response.content
    request = RefundRequest.objects.get()
    submitted = _iso(request.submitted_at)
    assert response.json() == {
        "id": request.pk,
        "order": order.pk,
        "restaurant": "Trattoria Roma",
        "status": "under_review",
        "reason": "missing_items",
        "reason_label": "Items are missing",
        "description": "No tiramisu and one pizza short.",
        "preferred_method": "account_credit",
        "discovered_at": submitted,
        "submitted_at": submitted,
        "review_due_at": _iso(request.submitted_at + dt.timedelta(hours=48)),
        "items": [
            {"order_item": tiramisu, "name": "Tiramisu", "unit_price": "6.00", "quantity": 1},
            {"order_item": margherita, "name": "Margherita", "unit_price": "12.50",
             "quantity": 1},
        ],
        "suggested_outcome": "partial",
        "suggested_amount": "16.87",
        "suggested_code": "partial_refund",
        "suggested_clauses": ["L-3.2"],
        "decision": None,
        "refunded_at": None,
        "timeline": [
            {"at": submitted, "name": "submit", "from_status": "", "to_status": "submitted",
             "actor_role": "buyer", "message": "Request submitted: Items are missing.",
             "clauses": []},
            {"at": submitted, "name": "start_review", "from_status": "submitted",
             "to_status": "under_review", "actor_role": "policy",
             "message": "Support reviews this request by Sun 22 Nov 2026, 12:00.",
             "clauses": ["L-4.1"]},
        ],
        "messages": [],
        "evidence": [],
        "refunds": [],
    }  # fmt: skip


def test_a_multipart_claim_with_a_photo_and_items_as_a_json_string(api_as, buyer, delivered):
    tiramisu = line(delivered, "Tiramisu")

    response = api_as(buyer).post(
        LIST,
        {
            "order": delivered.pk,
            "reason": "item_quality",
            "items": json.dumps([{"order_item": tiramisu, "quantity": 1}]),
            "description": "The tiramisu was soggy.",
            "photos": [photo("soggy.png")],
        },
        format="multipart",
    )

    assert response.status_code == 201, response.content
    evidence = RefundEvidence.objects.get()
    body = response.json()
    assert (body["status"], body["suggested_amount"]) == ("under_review", "6.00")
    assert body["items"] == [
        {"order_item": tiramisu, "name": "Tiramisu", "unit_price": "6.00", "quantity": 1}
    ]
    assert body["evidence"] == [
        {
            "id": evidence.pk,
            "url": f"/refunds/evidence/{evidence.pk}/",
            "thumbnail_url": f"/refunds/evidence/{evidence.pk}/?size=thumb",
            "content_type": "image/jpeg",
            "size": evidence.size,
            "width": 8,
            "height": 8,
            "created_at": _iso(evidence.created_at),
        }
    ]


def test_a_reason_the_policy_does_not_cover_is_denied_at_once_by_the_policy(
    api_as, buyer, delivered
):
    response = api_as(buyer).post(
        LIST, {"order": delivered.pk, "reason": "taste_preference"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "denied"
    assert body["decision"] == {
        "amount": None,
        "method": "original",
        "resolution": "",
        "explanation": "Taste is subjective and not refunded.",
        "clauses": ["L-3.3"],
        "decided_by": "policy",
        "decided_at": body["submitted_at"],
        "needs_second_approval": False,
        "second_approved_at": None,
    }
    assert not Refund.objects.exists()


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"reason": "wrong_order"}, "missing_field", "order"),
        ({"order": "ORDER", "reason": "bored"}, "invalid_reason", "reason"),
        ({"order": "ORDER", "reason": "missing_items",
          "items": [{"order_item": "LINE", "quantity": 0}]}, "invalid_quantity",
         "items[0].quantity"),
        ({"order": "ORDER", "reason": "missing_items", "items": "[{not json"}, "wrong_type",
         "items"),
        ({"order": "ORDER", "reason": "wrong_order", "preferred_method": "cash"},
         "invalid_method", "preferred_method"),
        ({"order": "ORDER", "reason": "wrong_order", "discovered_at": "yesterday"},
         "invalid_discovered_at", "discovered_at"),
        ({"order": "ORDER", "reason": "missing_items"}, "items_required", None),
        ({"order": "ORDER", "reason": "item_quality", "description": "Soggy",
          "items": [{"order_item": "LINE", "quantity": 1}]}, "evidence_required", None),
    ],
    ids=["no order", "unknown reason", "quantity 0", "items not json", "unknown method",
         "bad date", "partial without items", "quality without photo"],
)  # fmt: skip
def test_bad_claims_are_a_400_that_stores_nothing(api_as, buyer, delivered, body, code, field):
    body = json.loads(
        json.dumps(body)
        .replace('"ORDER"', str(delivered.pk))
        .replace('"LINE"', str(line(delivered, "Tiramisu")))
    )
    before = stored()

    response = api_as(buyer).post(LIST, body, format="json")

    assert (response.status_code, response.json()["code"]) == (400, code), response.content
    assert response.json().get("field") == field
    assert stored() == before


def test_an_unknown_order_is_a_404(api_as, buyer, delivered):
    response = api_as(buyer).post(LIST, {"order": 2**62, "reason": "wrong_order"}, format="json")

    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert not RefundRequest.objects.exists()


def test_a_second_request_while_one_is_open_is_a_409(api_as, buyer, reviewing):
    before = stored()

    response = api_as(buyer).post(
        LIST, {"order": reviewing.order_id, "reason": "wrong_order"}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (409, "request_open")
    assert stored() == before


def test_the_list_is_paginated_in_constant_queries(
    api_as, buyer, other_buyer, restaurant, menu, now, django_assert_num_queries
):
    client = api_as(buyer)
    submit(delivered_order(other_buyer, restaurant, {menu["Tiramisu"]: 1}), other_buyer)
    requests = []
    for count in (1, 4):
        while len(requests) < count:
            requests.append(
                submit(delivered_order(buyer, restaurant, {menu["Tiramisu"]: 1}), buyer)
            )
        with django_assert_num_queries(2):  # count, page
            body = client.get(LIST).json()
        assert body["count"] == count
    assert [r["id"] for r in body["results"]] == [r.pk for r in reversed(requests)]
    assert body["results"][0] == {
        "id": requests[-1].pk,
        "order": requests[-1].order_id,
        "restaurant": "Trattoria Roma",
        "status": "under_review",
        "reason": "wrong_order",
        "submitted_at": _iso(requests[-1].submitted_at),
        "review_due_at": _iso(requests[-1].review_due_at),
        "suggested_amount": "8.99",
        "decided_amount": None,
    }


def test_the_detail_reads_in_constant_queries(
    api_as, buyer, agent, reviewing, django_assert_num_queries
):
    client = api_as(buyer)
    with django_assert_num_queries(6):  # request, items, events, messages, evidence, refunds
        client.get(detail_url(reviewing.pk))
    refund_request_request_info(request_id=reviewing.pk, actor=agent, question="Which bag?")
    client.post(reply_url(reviewing.pk), {"body": "The brown one", "photos": [photo(), photo()]},
                format="multipart")  # fmt: skip
    api_as(agent).post(support_url(reviewing.pk, "approve"), {}, format="json")

    with django_assert_num_queries(6):
        body = client.get(detail_url(reviewing.pk)).json()
    assert (len(body["timeline"]), len(body["messages"]), len(body["evidence"])) == (6, 2, 2)
    assert len(body["refunds"]) == 1


# -- photos ------------------------------------------------------------------------------------


def test_a_photo_is_added_to_an_open_request(api_as, buyer, reviewing):
    response = api_as(buyer).post(evidence_url(reviewing.pk), {"file": photo()}, format="multipart")

    assert response.status_code == 201
    evidence = RefundEvidence.objects.get(request=reviewing)
    assert [e["url"] for e in response.json()["evidence"]] == [f"/refunds/evidence/{evidence.pk}/"]
    # An opaque PNG is stored re-encoded as a JPEG (refunds.photos).
    assert (evidence.uploaded_by, evidence.content_type) == (buyer, "image/jpeg")


@pytest.mark.parametrize("problem", ["not_an_image", "file_too_large", "too_many_photos",
                                     "unsupported_image", "no_file"])  # fmt: skip
def test_a_refused_upload_is_a_400_and_stores_nothing(api_as, buyer, reviewing, problem, settings):
    client = api_as(buyer)
    upload = photo()
    if problem == "not_an_image":
        upload = not_an_image()
    elif problem == "file_too_large":
        settings.LOJIX_PHOTO_MAX_BYTES = 10
    elif problem == "too_many_photos":
        for _ in range(5):
            assert (
                client.post(
                    evidence_url(reviewing.pk), {"file": photo()}, format="multipart"
                ).status_code
                == 201
            )
    elif problem == "unsupported_image":
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, "BMP")
        upload = SimpleUploadedFile("photo.bmp", buffer.getvalue(), content_type="image/bmp")
    before = stored()

    data = {} if problem == "no_file" else {"file": upload}
    response = client.post(evidence_url(reviewing.pk), data, format="multipart")

    expected = "missing_field" if problem == "no_file" else problem
    assert (response.status_code, response.json()["code"]) == (400, expected)
    assert stored() == before


def test_a_claim_with_a_bad_photo_stores_nothing(api_as, buyer, delivered):
    response = api_as(buyer).post(
        LIST,
        {
            "order": delivered.pk,
            "reason": "item_quality",
            "items": json.dumps([{"order_item": line(delivered, "Tiramisu"), "quantity": 1}]),
            "description": "Soggy",
            "photos": [photo(), not_an_image()],
        },
        format="multipart",
    )

    assert (response.status_code, response.json()["code"]) == (400, "not_an_image")
    assert (RefundRequest.objects.count(), RefundEvidence.objects.count()) == (0, 0)


def test_a_photo_on_another_buyers_request_is_a_404_and_stores_nothing(
    api_as, other_buyer, reviewing
):
    response = api_as(other_buyer).post(
        evidence_url(reviewing.pk), {"file": photo()}, format="multipart"
    )

    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert not RefundEvidence.objects.exists()


def test_a_decided_request_takes_no_more_photos(api_as, buyer, agent, reviewing):
    refund_request_approve(request_id=reviewing.pk, actor=agent)

    response = api_as(buyer).post(evidence_url(reviewing.pk), {"file": photo()}, format="multipart")

    assert (response.status_code, response.json()["code"]) == (409, "request_closed")
    assert not RefundEvidence.objects.exists()


# -- support asks, the buyer and the restaurant answer -------------------------------------------


def test_support_asks_and_the_buyer_answers_with_a_photo(now, api_as, buyer, agent, reviewing):
    due = reviewing.review_due_at
    asked = api_as(agent).post(
        support_url(reviewing.pk, "request-info"), {"question": "Which bag?"}, format="json"
    )
    assert (asked.status_code, asked.json()["status"]) == (200, "info_requested")
    now.shift(dt.timedelta(hours=3))

    response = api_as(buyer).post(
        reply_url(reviewing.pk), {"body": "The brown one", "photos": [photo()]},
        format="multipart",
    )  # fmt: skip

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "under_review"
    agent_name = agent.first_name or agent.username
    assert [(m["role"], m["author"], m["body"]) for m in body["messages"]] == [
        ("support", agent_name, "Which bag?"),
        ("buyer", "Ada", "The brown one"),
    ]
    assert len(body["evidence"]) == 1
    reviewing.refresh_from_db()
    assert dt.timedelta(hours=3) <= reviewing.review_due_at - due < dt.timedelta(hours=3, seconds=5)


def test_an_empty_reply_is_a_400(api_as, buyer, reviewing):
    before = stored()

    response = api_as(buyer).post(reply_url(reviewing.pk), {"body": "  "}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "message_required")
    assert stored() == before


def test_the_restaurant_verifies_what_support_asked(
    api_as, buyer, partner, agent, reviewing, django_assert_num_queries
):
    api_as(buyer).post(
        reply_url(reviewing.pk), {"body": "Call me on 555-0100.", "photos": [photo()]},
        format="multipart",
    )  # fmt: skip
    api_as(agent).post(
        support_url(reviewing.pk, "ask-restaurant"),
        {"question": "Was the tiramisu packed?"},
        format="json",
    )
    client = api_as(partner)

    # membership, count, page, items, evidence, messages
    with django_assert_num_queries(6):
        waiting = client.get(SELLER_LIST).json()
    response = client.post(
        verify_url(reviewing.pk), {"note": "Our checklist says it was."}, format="json"
    )
    again = client.post(verify_url(reviewing.pk), {"note": "Really."}, format="json")

    evidence = RefundEvidence.objects.get()
    question = RefundMessage.objects.get(role="support")
    tiramisu = reviewing.items.get().order_item_id
    # D-4: no money and no buyer's messages for the partner; the photos, yes.
    assert waiting["results"] == [
        {
            "id": reviewing.pk,
            "order": reviewing.order_id,
            "restaurant": "Trattoria Roma",
            "status": "awaiting_restaurant",
            "reason": "missing_items",
            "reason_label": "Items are missing",
            "description": "",
            "submitted_at": _iso(reviewing.submitted_at),
            "items": [
                {"order_item": tiramisu, "name": "Tiramisu", "unit_price": "6.00", "quantity": 1}
            ],
            "evidence": [
                {
                    "id": evidence.pk,
                    "url": f"/refunds/evidence/{evidence.pk}/",
                    "thumbnail_url": f"/refunds/evidence/{evidence.pk}/?size=thumb",
                    "content_type": "image/jpeg",
                    "size": evidence.size,
                    "width": 8,
                    "height": 8,
                    "created_at": _iso(evidence.created_at),
                }
            ],
            "messages": [
                {
                    "at": _iso(question.created_at),
                    "role": "support",
                    "author": agent.first_name or agent.username,
                    "body": "Was the tiramisu packed?",
                }
            ],
        }
    ]
    assert response.status_code == 200
    assert response.json()["status"] == "under_review"
    assert [(m["role"], m["body"]) for m in response.json()["messages"]] == [
        ("support", "Was the tiramisu packed?"),
        ("restaurant", "Our checklist says it was."),
    ]
    assert (again.status_code, again.json()["code"]) == (409, "no_verification_due")
    assert client.get(SELLER_LIST).json()["count"] == 0


# -- support decides -----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["ask-restaurant", "request-info"])
def test_a_question_while_the_restaurant_is_asked_is_a_409(api_as, agent, reviewing, action):
    """Found by the schema fuzz test: asking again while the restaurant has not answered was a
    500 (the state machine refused the transition the service tried)."""
    client = api_as(agent)
    client.post(support_url(reviewing.pk, "ask-restaurant"), {"question": "Packed?"}, format="json")
    before = stored()

    response = client.post(support_url(reviewing.pk, action), {"question": "And?"}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "not_under_review")
    assert response.json()["detail"] == (
        f"Request #{reviewing.pk} is checking with the restaurant, not under review."
    )
    assert stored() == before
    reviewing.refresh_from_db()
    assert reviewing.status == "awaiting_restaurant"


def test_an_agent_partially_approves_as_account_credit(api_as, buyer, agent, reviewing):
    response = api_as(agent).post(
        support_url(reviewing.pk, "partially-approve"),
        {"amount": "3.00", "method": "account_credit", "explanation": EXPLAINED},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    refund = Refund.objects.get(request=reviewing)
    reviewing.refresh_from_db()
    assert body["status"] == "refunded"
    assert body["decision"] == {
        "amount": "3.00",
        "method": "account_credit",
        "resolution": "refund",
        "explanation": EXPLAINED,
        "clauses": ["L-3.2", "L-4.1"],
        "decided_by": "agent",
        "decided_at": _iso(reviewing.decided_at),
        "needs_second_approval": False,
        "second_approved_at": None,
    }
    assert body["refunds"] == [
        {
            "id": refund.pk,
            "amount": "3.00",
            "destination": "account_credit",
            "status": "succeeded",
            "reason": f"Refund request #{reviewing.pk}: Items are missing",
            "clauses": ["L-3.2", "L-4.1"],
            "created_at": _iso(refund.created_at),
            "succeeded_at": _iso(refund.created_at),
            "expected_processed_by": "2026-11-20",
            "expected_in_bank_from": None,
            "expected_in_bank_by": None,
        }
    ]
    assert api_as(buyer).get(detail_url(reviewing.pk)).json() == body


def test_an_approval_to_the_card_shows_the_expected_bank_dates(api_as, agent, reviewing):
    """L-4.2 from Friday 20 November 2026: processed within 3 business days (Wednesday 25),
    at the bank 1 + 5 business days on at the earliest and 10 after processing at the latest,
    skipping Thanksgiving (Thursday 26)."""
    response = api_as(agent).post(support_url(reviewing.pk, "approve"), {}, format="json")

    assert response.status_code == 200
    [refund] = response.json()["refunds"]
    assert (refund["amount"], refund["destination"]) == ("6.00", "card")
    assert (
        refund["expected_processed_by"],
        refund["expected_in_bank_from"],
        refund["expected_in_bank_by"],
    ) == ("2026-11-25", "2026-12-01", "2026-12-10")
    assert response.json()["decision"]["amount"] == "6.00"


@pytest.mark.parametrize(
    ("action", "body", "code"),
    [
        ("partially-approve", {"amount": "3.00", "explanation": "short"}, "explanation_required"),
        ("partially-approve", {"amount": "40.00", "explanation": EXPLAINED}, "invalid_amount"),
        ("partially-approve", {"amount": "-1.00", "explanation": EXPLAINED}, "invalid_amount"),
        ("partially-approve", {"amount": "1.001", "explanation": EXPLAINED}, "invalid_amount"),
        ("partially-approve", {"amount": "lots", "explanation": EXPLAINED}, "invalid_amount"),
        ("partially-approve", {"explanation": EXPLAINED}, "missing_field"),
        ("approve", {"method": "cash"}, "invalid_method"),
        ("deny", {"explanation": ""}, "explanation_required"),
        ("request-info", {"question": " "}, "question_required"),
        ("ask-restaurant", {}, "missing_field"),
        ("offer-credit", {"amount": "0.00", "explanation": EXPLAINED}, "invalid_amount"),
    ],
)
def test_bad_decisions_are_a_400_that_changes_nothing(api_as, agent, reviewing, action, body, code):
    before = stored()

    response = api_as(agent).post(support_url(reviewing.pk, action), body, format="json")

    assert (response.status_code, response.json()["code"]) == (400, code), response.content
    assert stored() == before
    reviewing.refresh_from_db()
    assert reviewing.status == "under_review"


@pytest.mark.parametrize("action", ["approve", "deny", "request-info", "offer-credit"])
def test_deciding_a_decided_request_is_a_409(api_as, agent, reviewing, action):
    api_as(agent).post(support_url(reviewing.pk, "approve"), {}, format="json")
    before = stored()
    body = {"explanation": "Explained at length.", "question": "Why?", "amount": "1.00"}

    response = api_as(agent).post(support_url(reviewing.pk, action), body, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "not_under_review")
    assert stored() == before


def test_an_unknown_request_is_a_404(api_as, agent):
    response = api_as(agent).post(support_url(2**62, "approve"), {}, format="json")

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_an_agent_offers_promotional_credit_instead(api_as, buyer, agent, reviewing):
    response = api_as(agent).post(
        support_url(reviewing.pk, "offer-credit"),
        {"amount": "4.00", "explanation": "A credit for the trouble."},
        format="json",
    )

    assert response.status_code == 200
    decision = response.json()["decision"]
    assert (decision["amount"], decision["resolution"]) == ("4.00", "promo_credit")
    assert [(r["destination"], r["amount"]) for r in response.json()["refunds"]] == [
        ("promo_credit", "4.00")
    ]
    assert CreditGrant.objects.get(buyer=buyer).kind == "promo"


def test_four_eyes_through_the_api(api_as, buyer, agent, supervisor, restaurant, menu, now):
    order = delivered_order(buyer, restaurant, {menu["Margherita"]: 5})  # 65.49
    request = submit(order, buyer, "wrong_order")
    boss = api_as(supervisor)

    decided = boss.post(support_url(request.pk, "approve"), {}, format="json")
    own = boss.post(support_url(request.pk, "second-approval"), {}, format="json")

    assert decided.json()["status"] == "approved"
    assert decided.json()["decision"]["needs_second_approval"] is True
    assert decided.json()["refunds"] == []
    assert (own.status_code, own.json()["code"]) == (409, "four_eyes")
    assert not Refund.objects.exists()
    other_boss = UserFactory(username="boss2", is_staff=True, groups=["supervisor"])
    paid = api_as(other_boss).post(support_url(request.pk, "second-approval"), {}, format="json")
    assert paid.status_code == 200
    assert paid.json()["status"] == "approved"  # refunded once the processor has made it (D-7)
    assert [(r["destination"], r["amount"]) for r in paid.json()["refunds"]] == [("card", "65.49")]
    refunds_processed()
    assert RefundRequest.objects.get(pk=request.pk).status == "refunded"


def test_approving_when_the_order_was_already_fully_refunded_is_a_409(
    api_as, agent, delivered, reviewing
):
    refund_order(order_id=delivered.pk, amount=D("33.99"), method="original",
                 idempotency_key="elsewhere", actor=None, role="policy", reason="Test")  # fmt: skip
    before = stored()

    response = api_as(agent).post(support_url(reviewing.pk, "approve"), {}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "code": "nothing_to_refund",
        "detail": "There is nothing left to refund for this order; deny the request or offer "
        "a credit.",
        "clauses": ["L-7.2"],
    }
    assert stored() == before
    assert not Refund.objects.filter(request=reviewing).exists()


@pytest.mark.django_db(transaction=True)
def test_two_agents_approving_at_once_make_one_refund(buyer, agent, supervisor, restaurant, menu):
    """27.99 paid as 22.99 by card and 5.00 account credit: one refund set is the card part and
    the credit part, with one gateway refund."""
    give_credit(buyer, "5.00", kind="account")
    order = delivered_order(buyer, restaurant, {menu["Margherita"]: 2}, use_credit=True)
    request = submit(order, buyer, "wrong_order")
    clients = iter([client_for(agent), client_for(supervisor)])

    responses = run_concurrently(
        lambda: next(clients).post(support_url(request.pk, "approve"), {}, format="json"), 2
    )

    assert sorted(r.status_code for r in responses) == [200, 409], responses
    [refused] = [r for r in responses if r.status_code == 409]
    assert refused.json()["code"] == "not_under_review"
    refunds = Refund.objects.filter(request=request).order_by("pk")
    assert [(r.destination, r.amount) for r in refunds] == [
        ("card", D("22.99")),
        ("account_credit", D("5.00")),
    ]
    assert len(processor_refunds()) == 1
    assert RefundRequest.objects.get(pk=request.pk).status == "refunded"


# -- Idempotency-Key ---------------------------------------------------------------------------


def test_a_replayed_submit_returns_the_same_request(api_as, buyer, delivered):
    client = api_as(buyer)
    body = {"order": delivered.pk, "reason": "wrong_order", "description": "Not mine"}

    first = client.post(LIST, body, format="json", HTTP_IDEMPOTENCY_KEY="claim-1")
    again = client.post(LIST, body, format="json", HTTP_IDEMPOTENCY_KEY="claim-1")
    other = client.post(
        LIST, body | {"description": "Changed"}, format="json", HTTP_IDEMPOTENCY_KEY="claim-1"
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_mismatch")
    assert RefundRequest.objects.count() == 1


def test_a_replayed_multipart_submit_stores_one_photo(api_as, buyer, delivered):
    client = api_as(buyer)

    def body():
        return {
            "order": delivered.pk,
            "reason": "item_quality",
            "items": json.dumps([{"order_item": line(delivered, "Tiramisu"), "quantity": 1}]),
            "description": "Soggy",
            "photos": [photo()],
        }

    first = client.post(LIST, body(), format="multipart", HTTP_IDEMPOTENCY_KEY="claim-2")
    again = client.post(LIST, body(), format="multipart", HTTP_IDEMPOTENCY_KEY="claim-2")

    assert (first.status_code, again.content) == (201, first.content)
    assert (RefundRequest.objects.count(), RefundEvidence.objects.count()) == (1, 1)


def test_a_replayed_approval_returns_the_same_body_and_refunds_once(api_as, agent, reviewing):
    client = api_as(agent)

    first = client.post(
        support_url(reviewing.pk, "approve"), {}, format="json", HTTP_IDEMPOTENCY_KEY="ok-1"
    )
    again = client.post(
        support_url(reviewing.pk, "approve"), {}, format="json", HTTP_IDEMPOTENCY_KEY="ok-1"
    )
    new_key = client.post(
        support_url(reviewing.pk, "approve"), {}, format="json", HTTP_IDEMPOTENCY_KEY="ok-2"
    )

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert (new_key.status_code, new_key.json()["code"]) == (409, "not_under_review")
    assert Refund.objects.filter(request=reviewing).count() == 1
    refunds_processed()
    assert len(processor_refunds()) == 1


# -- the schema --------------------------------------------------------------------------------


def test_the_schema_lists_the_refund_endpoints_without_warnings(client, tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )
    schema = (tmp_path / "schema.yaml").read_text()

    for path in [
        "/api/refund-requests/:",
        "/api/refund-requests/{id}/evidence/:",
        "/api/refund-requests/{id}/reply/:",
        "/api/seller/refund-requests/{id}/verify/:",
        *(f"/api/support/refund-requests/{{id}}/{action}/:" for action in SUPPORT_ACTIONS),
    ]:
        assert path in schema
    for enum in ["RefundRequestStatusEnum", "RefundMethodEnum", "RefundReasonEnum"]:
        assert f"    {enum}:" in schema


def test_support_sends_a_replacement_order_instead(reviewing, agent, buyer):
    body = {"explanation": "A fresh tiramisu is on its way to you"}

    url = support_url(reviewing.pk, "offer-replacement")
    refused = client_for(buyer).post(url, body, format="json")
    response = client_for(agent).post(url, body, format="json")

    assert refused.status_code == 403
    assert response.status_code == 200
    reviewing.refresh_from_db()
    assert (reviewing.status, reviewing.resolution) == ("approved", "replacement")
    assert reviewing.replacement_order.amount_charged == D("0.00")
    assert not Refund.objects.exists()
