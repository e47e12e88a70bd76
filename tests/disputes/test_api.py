"""The disputes API (D-10): chargebacks with their evidence bundle and outcomes, suspensions,
and who may do what (every role x every endpoint); a suspended buyer is refused every action
that starts something new with 403 `account_suspended` (L-8.2) and still reads everything."""

import io
import json
from decimal import Decimal as D

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from pypdf import PdfReader

from disputes.models import Chargeback, Suspension
from disputes.services.chargebacks import chargeback_open, chargeback_submit_evidence
from disputes.services.suspensions import buyer_suspend
from orders.models import Order
from refunds.models import Refund, RefundEvidence, RefundMessage, RefundRequest
from refunds.services.execution import refund_order
from refunds.services.requests import refund_request_submit
from tests.conftest import advance, place_order, refunds_processed, token_client

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "buyer", "other_buyer", "partner", "other_partner", "agent", "supervisor"]
DELIVER = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")
CHARGEBACKS = "/api/support/chargebacks/"


def chargeback_url(pk, tail="") -> str:
    return f"{CHARGEBACKS}{pk}/{tail}"


def photo() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, format="JPEG")
    return SimpleUploadedFile("bag.jpg", buffer.getvalue(), content_type="image/jpeg")


@pytest.fixture
def delivered(now, buyer, restaurant):
    return advance(place_order(buyer, restaurant), *DELIVER)


@pytest.fixture
def chargeback(delivered, agent):
    chargeback, _ = chargeback_open(
        order_id=delivered.pk,
        amount=D("15.49"),
        bank_reference="BANK-1",
        reason_code="fraud",
        actor=agent,
    )
    return chargeback


def stored() -> tuple:
    return (
        list(Chargeback.objects.values_list("pk", "status", "settled_at")),
        list(Suspension.objects.values_list("pk", "lifted_at")),
        Refund.objects.count(),
    )


SUPPORT_ONLY = {
    "anonymous": 401,
    **dict.fromkeys(["buyer", "other_buyer", "partner", "other_partner"], 403),
    "agent": 200,
    "supervisor": 200,
}
SUPERVISOR_ONLY = SUPPORT_ONLY | {"agent": 403}
# endpoint: (method, url, body, expected status by role)
ENDPOINTS = {
    "list": ("get", lambda c: CHARGEBACKS, None, SUPPORT_ONLY),
    "create": ("post", lambda c: CHARGEBACKS,
               lambda c: {"order": c.order_id, "amount": "5.00", "bank_reference": "B-2",
                          "reason_code": "13.1"},
               SUPPORT_ONLY | {"agent": 201, "supervisor": 201}),
    "detail": ("get", lambda c: chargeback_url(c.pk), None, SUPPORT_ONLY),
    "evidence.pdf": ("get", lambda c: chargeback_url(c.pk, "evidence.pdf"), None, SUPPORT_ONLY),
    "evidence.json": ("get", lambda c: chargeback_url(c.pk, "evidence.json"), None,
                      SUPPORT_ONLY),
    "submit-evidence": ("post", lambda c: chargeback_url(c.pk, "submit-evidence/"),
                        lambda c: {"note": "Delivered at the door."}, SUPPORT_ONLY),
    "won": ("post", lambda c: chargeback_url(c.pk, "won/"), lambda c: {}, SUPERVISOR_ONLY),
    "lost": ("post", lambda c: chargeback_url(c.pk, "lost/"), lambda c: {}, SUPERVISOR_ONLY),
    "accept": ("post", lambda c: chargeback_url(c.pk, "accept/"), lambda c: {},
               SUPERVISOR_ONLY),
    "suspend": ("post", lambda c: f"/api/support/buyers/{c.order.buyer_id}/suspend/",
                lambda c: {"reason": "Chargeback filed", "chargeback": c.pk},
                SUPERVISOR_ONLY | {"supervisor": 201}),
    "reinstate": ("post", lambda c: f"/api/support/buyers/{c.order.buyer_id}/reinstate/",
                  lambda c: {"note": "Resolved with the bank."}, SUPERVISOR_ONLY),
}  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_role_matrix(
    endpoint, role, users, supervisor, chargeback, django_capture_on_commit_callbacks
):
    method, url, body, expected = ENDPOINTS[endpoint]
    if endpoint == "reinstate":
        buyer_suspend(buyer_id=chargeback.order.buyer_id, actor=supervisor, reason="Fraud?")
    before = stored()

    with django_capture_on_commit_callbacks(execute=True):
        response = getattr(token_client(users[role]), method)(
            url(chargeback), body(chargeback) if body else None, format="json"
        )

    assert response.status_code == expected[role], response.content
    if response.status_code >= 400:
        assert stored() == before
        code = response.json()["code"]
        assert code == {401: "not_authenticated", 403: "not_support"}[response.status_code] or (
            role == "agent" and code == "supervisor_required"
        )
    elif method == "post":
        assert stored() != before


def test_an_agent_enters_a_chargeback_and_money_already_refunded_is_left_out(
    api_as, agent, delivered
):
    refund_order(
        order_id=delivered.pk,
        amount=D("4.00"),
        method="original",
        idempotency_key="goodwill",
        actor=agent,
        role="support",
        reason="Goodwill",
    )
    refunds_processed()

    response = api_as(agent).post(
        CHARGEBACKS,
        {"order": delivered.pk, "amount": "15.49", "bank_reference": "B-9", "reason_code": "fraud"},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["amount_at_stake"], body["status"]) == (
        "15.49",
        "11.49",
        "received",
    )
    assert body["evidence_pdf"] == f"/api/support/chargebacks/{body['id']}/evidence.pdf"


@pytest.mark.parametrize(
    ("case", "body", "status", "code"),
    [
        ("unknown order", {"order": 999999, "amount": "1.00"}, 404, "not_found"),
        ("negative", {"amount": "-1.00"}, 400, "invalid_amount"),
        ("too much", {"amount": "99.00"}, 400, "chargeback_exceeds_charge"),
        ("no reference", {"bank_reference": ""}, 400, "missing_field"),
        ("not a number", {"amount": "lots"}, 400, "wrong_type"),
    ],
)
def test_bad_chargebacks_are_refused_and_store_nothing(
    case, body, status, code, api_as, agent, delivered
):
    data = {"order": delivered.pk, "amount": "1.00", "bank_reference": "B", "reason_code": "x"}

    response = api_as(agent).post(CHARGEBACKS, data | body, format="json")

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert Chargeback.objects.count() == 0


def test_the_evidence_pdf_holds_the_timeline_payments_and_refunds(
    api_as, agent, buyer, delivered, restaurant
):
    request = refund_request_submit(
        order_id=delivered.pk,
        actor=buyer,
        reason="missing_items",
        items=[(delivered.items.get().pk, 1)],
        description="No pizza in the bag.",
        photos=[photo()],
    )
    refund_order(
        order_id=delivered.pk,
        amount=D("4.00"),
        method="original",
        idempotency_key="goodwill",
        actor=agent,
        role="support",
        reason="Goodwill for a cold pizza",
    )
    refunds_processed()
    chargeback, _ = chargeback_open(
        order_id=delivered.pk,
        amount=D("15.49"),
        bank_reference="BANK-42",
        reason_code="13.1",
        actor=agent,
    )
    payment = delivered.payments.get()
    card_refund = Refund.objects.get(destination="card")

    response = api_as(agent).get(chargeback_url(chargeback.pk, "evidence.pdf"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(response.content))
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    assert f"Chargeback evidence: order #{delivered.pk}" in text
    assert "BANK-42" in text
    # The timeline, step by step.
    for step in ("Order placed at Trattoria Roma", "chargeback of 15.49", "Request submitted"):
        assert step in text, step
    for transition in ("accepted", "delivered"):
        assert transition in text
    # The payments and the refunds already made.
    assert payment.gateway_reference in text
    assert "15.49" in text
    assert "Goodwill for a cold pizza" in text
    assert card_refund.amount.to_eng_string() in text
    assert "Refunded in total: 4.00" in text
    assert "at stake 11.49" in text
    # The request, its photo and the policy version accepted at checkout.
    assert f"Refund request #{request.pk}" in text
    assert "No pizza in the bag." in text
    assert "Policy accepted at checkout" in text
    assert f"Version {delivered.policy_version.label}" in text
    assert any(page.images for page in reader.pages)


def test_the_evidence_json_is_built_from_the_records(api_as, agent, buyer, delivered, chargeback):
    response = api_as(agent).get(chargeback_url(chargeback.pk, "evidence.json"))

    assert response.status_code == 200
    bundle = json.loads(response.content)
    assert bundle["chargeback"]["bank_reference"] == "BANK-1"
    assert bundle["order"]["id"] == delivered.pk
    assert bundle["order"]["money"]["amount_paid"] == "15.49"
    assert bundle["order"]["times"]["delivered_at"] is not None
    assert [p["amount"] for p in bundle["payments"]] == ["15.49"]
    assert bundle["refunds"] == []
    assert bundle["already_refunded"] == "0.00"
    assert bundle["timeline"][0]["event"].startswith("Order placed")
    assert bundle["policy_version"]["label"] == delivered.policy_version.label


def test_outcomes_through_the_api(
    api_as, agent, supervisor, chargeback, django_capture_on_commit_callbacks
):
    submitted = api_as(agent).post(
        chargeback_url(chargeback.pk, "submit-evidence/"), {}, format="json"
    )
    assert submitted.json()["status"] == "evidence_submitted"

    with django_capture_on_commit_callbacks(execute=True):
        lost = api_as(supervisor).post(chargeback_url(chargeback.pk, "lost/"), {}, format="json")
    again = api_as(supervisor).post(chargeback_url(chargeback.pk, "won/"), {}, format="json")

    assert lost.status_code == 200
    assert lost.json()["status"] == "lost"
    assert (again.status_code, again.json()["code"]) == (409, "chargeback_decided")
    assert Chargeback.objects.get().settled_at is not None


# -- suspension (L-8.2, D-4) ----------------------------------------------------------------


@pytest.fixture
def suspended(buyer, supervisor):
    return buyer_suspend(buyer_id=buyer.pk, actor=supervisor, reason="Chargeback filed.")


def _open_request(order, buyer) -> RefundRequest:
    return refund_request_submit(
        order_id=order.pk,
        actor=buyer,
        reason="missing_items",
        items=[(order.items.get().pk, 1)],
        description="No pizza.",
    )


def buyer_actions(buyer, restaurant, menu):
    """Every buyer endpoint that starts something new, with what it needs set up first (before
    the suspension)."""
    placed = place_order(buyer, restaurant)
    out = advance(place_order(buyer, restaurant), *DELIVER[:4])
    delivered = advance(place_order(buyer, restaurant), *DELIVER)
    reviewing = advance(place_order(buyer, restaurant), *DELIVER)
    request = _open_request(reviewing, buyer)
    order_body = {
        "restaurant": restaurant.pk,
        "items": [{"menu_item": menu["Margherita"].pk, "quantity": 1}],
        "fulfillment": "delivery",
        "delivery_address": "7 Harbour Road",
    }
    return {
        "place order": ("/api/orders/", order_body, "json"),
        "cancel": (f"/api/orders/{placed.pk}/cancel/", {}, "json"),
        "report missing": (f"/api/orders/{out.pk}/report-missing/", {}, "json"),
        "refund request": (
            "/api/refund-requests/",
            {"order": delivered.pk, "reason": "not_delivered"},
            "json",
        ),
        "evidence": (f"/api/refund-requests/{request.pk}/evidence/", "PHOTO", "multipart"),
        "reply": (f"/api/refund-requests/{request.pk}/reply/", {"body": "Hello?"}, "json"),
    }


def everything() -> tuple:
    return (
        Order.objects.count(),
        list(Order.objects.values_list("pk", "status")),
        RefundRequest.objects.count(),
        RefundEvidence.objects.count(),
        RefundMessage.objects.count(),
        Refund.objects.count(),
    )


def test_a_suspended_buyer_is_refused_every_new_action_and_still_reads(
    api_as, buyer, supervisor, restaurant, menu
):
    actions = buyer_actions(buyer, restaurant, menu)
    buyer_suspend(buyer_id=buyer.pk, actor=supervisor, reason="Chargeback filed.")
    client = api_as(buyer)
    before = everything()

    for name, (url, body, fmt) in actions.items():
        data = {"file": photo()} if body == "PHOTO" else body
        response = client.post(url, data, format=fmt)
        assert response.status_code == 403, (name, response.content)
        assert response.json()["code"] == "account_suspended", name
        assert response.json()["clauses"] == ["L-8.2"], name
    assert everything() == before

    for url in ("/api/orders/", "/api/refund-requests/", "/api/credits/"):
        assert client.get(url).status_code == 200, url
    order_id = Order.objects.filter(buyer=buyer).first().pk
    assert client.get(f"/api/orders/{order_id}/").status_code == 200


def test_a_reinstated_buyer_can_act_again(api_as, buyer, supervisor, restaurant, menu):
    actions = buyer_actions(buyer, restaurant, menu)
    buyer_suspend(buyer_id=buyer.pk, actor=supervisor, reason="Chargeback filed.")
    reinstate = api_as(supervisor).post(
        f"/api/support/buyers/{buyer.pk}/reinstate/", {"note": "Bank ruled."}, format="json"
    )
    assert reinstate.status_code == 200
    assert reinstate.json()["active"] is False

    url, body, fmt = actions["place order"]
    assert api_as(buyer).post(url, body, format=fmt).status_code == 201
    url, body, fmt = actions["refund request"]
    assert api_as(buyer).post(url, body, format=fmt).status_code == 201


def test_suspending_twice_and_reinstating_someone_not_suspended_are_refused(
    api_as, buyer, supervisor, suspended
):
    client = api_as(supervisor)

    twice = client.post(
        f"/api/support/buyers/{buyer.pk}/suspend/", {"reason": "Again"}, format="json"
    )
    client.post(f"/api/support/buyers/{buyer.pk}/reinstate/", {}, format="json")
    not_suspended = client.post(f"/api/support/buyers/{buyer.pk}/reinstate/", {}, format="json")

    assert (twice.status_code, twice.json()["code"]) == (409, "already_suspended")
    assert (not_suspended.status_code, not_suspended.json()["code"]) == (409, "not_suspended")
    assert Suspension.objects.count() == 1


@pytest.mark.parametrize(
    ("case", "target", "body", "status", "code"),
    [
        ("unknown user", "nobody", {"reason": "x"}, 404, "not_found"),
        ("a staff member", "agent", {"reason": "x"}, 400, "not_a_buyer"),
        ("no reason", "buyer", {"reason": " "}, 400, "missing_field"),
        ("someone else's chargeback", "other_buyer", {"reason": "x", "chargeback": "CB"}, 400,
         "chargeback_not_of_buyer"),
    ],
)  # fmt: skip
def test_bad_suspensions_store_nothing(case, target, body, status, code, api_as, users, chargeback):
    user_id = 999999 if target == "nobody" else users[target].pk
    if body.get("chargeback") == "CB":
        body = body | {"chargeback": chargeback.pk}

    response = api_as(users["supervisor"]).post(
        f"/api/support/buyers/{user_id}/suspend/", body, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert Suspension.objects.count() == 0


def test_a_suspension_from_a_chargeback_flags_fraud(api_as, supervisor, buyer, chargeback):
    response = api_as(supervisor).post(
        f"/api/support/buyers/{buyer.pk}/suspend/",
        {
            "reason": "Chargeback on a delivered order",
            "suspected_fraud": True,
            "chargeback": chargeback.pk,
        },
        format="json",
    )

    assert response.status_code == 201
    suspension = Suspension.objects.get()
    assert (suspension.chargeback, suspension.suspected_fraud, suspension.created_by) == (
        chargeback,
        True,
        supervisor,
    )
    assert response.json()["active"] is True
    # The chargeback is unaffected; the evidence can still go out.
    chargeback_submit_evidence(chargeback_id=chargeback.pk, actor=supervisor)
