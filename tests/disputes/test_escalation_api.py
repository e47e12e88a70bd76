"""The escalation API (D-10, L-8.1, K-DR): the role x endpoint matrix, the must-shows (an
approved request, a second escalation and another buyer refused; an agent cannot decide; an
overturn refunds the difference once), bad input changing nothing, the final decision."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine

from disputes.models import Escalation
from disputes.services.escalations import escalation_open
from disputes.services.suspensions import buyer_suspend
from refunds.models import Refund
from tests.conftest import NOW, token_client
from tests.disputes.escalation_setup import (
    approved_request,
    cancellation_denied_order,
    denied_request,
    photo,
)

pytestmark = pytest.mark.django_db
STATEMENT = "The tiramisu was not in the bag."
EXPLAINED = "The driver confirms the bag was short."


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def denied(buyer, restaurant, menu, agent):
    return denied_request(buyer, restaurant, menu, agent)


@pytest.fixture
def escalation(denied, buyer):
    return escalation_open(request_id=denied.pk, actor=buyer, statement=STATEMENT)


def escalate_url(request_id):
    return f"/api/refund-requests/{request_id}/escalate/"


def decide_url(escalation_id):
    return f"/api/support/escalations/{escalation_id}/decide/"


def stored():
    return (Escalation.objects.count(), Refund.objects.count())


# -- the role x endpoint matrix ----------------------------------------------------------------

ROLES = ["anonymous", "buyer", "other_buyer", "partner", "other_partner", "agent", "supervisor"]
# endpoint -> (method, url of the escalation/request, body, expected status per role)
MATRIX = {
    "escalate": (
        "post",
        lambda e, r: escalate_url(r.pk),
        {"statement": STATEMENT},
        {"anonymous": 401, "buyer": 201, "other_buyer": 404, "partner": 404,
         "other_partner": 404, "agent": 404, "supervisor": 404},
    ),
    "my escalations": (
        "get",
        lambda e, r: "/api/escalations/",
        None,
        {"anonymous": 401, "buyer": 200, "other_buyer": 200, "partner": 200,
         "other_partner": 200, "agent": 200, "supervisor": 200},
    ),
    "my escalation": (
        "get",
        lambda e, r: f"/api/escalations/{e.pk}/",
        None,
        {"anonymous": 401, "buyer": 200, "other_buyer": 404, "partner": 404,
         "other_partner": 404, "agent": 404, "supervisor": 404},
    ),
    "support queue": (
        "get",
        lambda e, r: "/api/support/escalations/",
        None,
        {"anonymous": 401, "buyer": 403, "other_buyer": 403, "partner": 403,
         "other_partner": 403, "agent": 403, "supervisor": 200},
    ),
    "take": (
        "post",
        lambda e, r: f"/api/support/escalations/{e.pk}/take/",
        {},
        {"anonymous": 401, "buyer": 403, "other_buyer": 403, "partner": 403,
         "other_partner": 403, "agent": 403, "supervisor": 200},
    ),
    "decide": (
        "post",
        lambda e, r: decide_url(e.pk),
        {"outcome": "upheld", "explanation": EXPLAINED},
        {"anonymous": 401, "buyer": 403, "other_buyer": 403, "partner": 403,
         "other_partner": 403, "agent": 403, "supervisor": 200},
    ),
}  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_role_matrix(endpoint, role, users, buyer, restaurant, menu, agent):
    method, url, body, expected = MATRIX[endpoint]
    request = denied_request(buyer, restaurant, menu, agent)
    if endpoint == "escalate":
        escalation = None
    else:
        escalation = escalation_open(request_id=request.pk, actor=buyer, statement=STATEMENT)
    before = Escalation.objects.filter(status__in=["upheld", "overturned"]).count()

    client = token_client(users[role])
    response = getattr(client, method)(url(escalation, request), body, format="json")

    assert response.status_code == expected[role], response.content
    if response.status_code >= 400:
        assert "code" in response.json()
        assert Escalation.objects.filter(status__in=["upheld", "overturned"]).count() == before
        if endpoint == "escalate":
            assert Escalation.objects.count() == 0


# -- buyers ----------------------------------------------------------------------------------


def test_escalating_a_denied_request_with_photos(api_as, buyer, denied):
    response = api_as(buyer).post(
        escalate_url(denied.pk),
        {"statement": STATEMENT, "photos": [photo(), photo("b.png", "red")]},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "open"
    assert body["refund_request"] == denied.pk
    assert body["due_at"] == "2026-11-30T12:00:00Z"
    assert body["decision"] is None
    assert len(body["evidence"]) == 2
    assert body["previous_amount"] == "0.00"
    listed = api_as(buyer).get("/api/escalations/").json()
    assert [e["id"] for e in listed["results"]] == [body["id"]]


def test_an_approved_request_is_a_409_citing_l_8_1(api_as, buyer, restaurant, menu, agent):
    request = approved_request(buyer, restaurant, menu, agent)
    before = stored()

    response = api_as(buyer).post(escalate_url(request.pk), {"statement": STATEMENT})

    assert response.status_code == 409
    assert (response.json()["code"], response.json()["clauses"]) == ("not_escalatable", ["L-8.1"])
    assert stored() == before == (0, 1)


def test_a_second_escalation_is_a_409(api_as, buyer, escalation, denied):
    response = api_as(buyer).post(escalate_url(denied.pk), {"statement": "Once more."})

    assert response.status_code == 409
    assert (response.json()["code"], response.json()["clauses"]) == (
        "already_escalated",
        ["L-8.1"],
    )
    assert stored() == (1, 0)


def test_another_buyer_gets_a_404(api_as, other_buyer, denied):
    response = api_as(other_buyer).post(escalate_url(denied.pk), {"statement": STATEMENT})

    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert stored() == (0, 0)


def test_a_suspended_buyer_cannot_escalate_and_can_still_read_it(
    api_as, buyer, supervisor, denied, escalation_for_reading
):
    buyer_suspend(buyer_id=buyer.pk, actor=supervisor, reason="Chargeback abuse")

    response = api_as(buyer).post(escalate_url(denied.pk), {"statement": STATEMENT})

    assert response.status_code == 403
    assert (response.json()["code"], response.json()["clauses"]) == (
        "account_suspended",
        ["L-8.2"],
    )
    assert stored() == (1, 0)
    assert api_as(buyer).get("/api/escalations/").status_code == 200


@pytest.fixture
def escalation_for_reading(buyer, restaurant, menu, agent):
    """Another of the buyer's requests, escalated before the suspension."""
    request = denied_request(buyer, restaurant, menu, agent)
    return escalation_open(request_id=request.pk, actor=buyer, statement=STATEMENT)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "missing_field"),
        ({"statement": "  "}, "statement_required"),
        ({"statement": "x" * 4001}, "too_long"),
    ],
)
def test_bad_input_is_a_400_and_stores_nothing(api_as, buyer, denied, body, code):
    response = api_as(buyer).post(escalate_url(denied.pk), body, format="json")

    assert (response.status_code, response.json()["code"]) == (400, code)
    assert stored() == (0, 0)


def test_contesting_a_denied_cancellation(api_as, buyer, restaurant, partner):
    order = cancellation_denied_order(buyer, restaurant, partner)

    response = api_as(buyer).post(
        f"/api/orders/{order.pk}/escalate/",
        {"subject": "cancellation_denied", "statement": STATEMENT},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert (response.json()["subject"], response.json()["refund_request"]) == (
        "cancellation_denied",
        None,
    )
    again = api_as(buyer).post(
        f"/api/orders/{order.pk}/escalate/",
        {"subject": "cancellation_denied", "statement": STATEMENT},
        format="json",
    )
    assert (again.status_code, again.json()["code"]) == (409, "already_escalated")
    bad = api_as(buyer).post(
        f"/api/orders/{order.pk}/escalate/", {"subject": "food", "statement": "x"}, format="json"
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_subject")


# -- supervisors -------------------------------------------------------------------------------


def test_the_queue_is_by_due_date_undecided_first(
    api_as, buyer, restaurant, menu, agent, supervisor, clock
):
    first = denied_request(buyer, restaurant, menu, agent)
    clock.shift(dt.timedelta(days=1))
    second = denied_request(buyer, restaurant, menu, agent)
    later = escalation_open(request_id=second.pk, actor=buyer, statement=STATEMENT)
    clock.shift(dt.timedelta(days=1))
    third = denied_request(buyer, restaurant, menu, agent)
    decided = escalation_open(request_id=third.pk, actor=buyer, statement=STATEMENT)
    clock.shift(dt.timedelta(hours=1))
    earlier = escalation_open(request_id=first.pk, actor=buyer, statement=STATEMENT)
    api_as(supervisor).post(
        decide_url(decided.pk), {"outcome": "upheld", "explanation": EXPLAINED}, format="json"
    )

    rows = api_as(supervisor).get("/api/support/escalations/").json()["results"]

    assert [r["id"] for r in rows] == [later.pk, earlier.pk, decided.pk]
    assert rows[0]["due_at"] < rows[1]["due_at"]


def test_an_agent_cannot_decide(api_as, agent, escalation):
    response = api_as(agent).post(
        decide_url(escalation.pk), {"outcome": "overturned", "explanation": EXPLAINED}
    )

    assert (response.status_code, response.json()["code"]) == (403, "not_supervisor")
    escalation.refresh_from_db()
    assert escalation.status == "open"
    assert Refund.objects.count() == 0


def test_an_overturn_refunds_the_difference_once_and_is_final(
    api_as, supervisor, buyer, escalation
):
    body = {"outcome": "overturned", "explanation": EXPLAINED, "amount": "6.00"}

    response = api_as(supervisor).post(decide_url(escalation.pk), body, format="json")

    assert response.status_code == 200, response.content
    decision = response.json()["decision"]
    assert (decision["outcome"], decision["amount"], decision["final"]) == (
        "overturned",
        "6.00",
        True,
    )
    assert [(r["amount"], r["destination"]) for r in response.json()["refunds"]] == [
        ("6.00", "card")
    ]
    again = api_as(supervisor).post(decide_url(escalation.pk), body, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "escalation_decided")
    assert [r.amount for r in Refund.objects.all()] == [D("6.00")]
    mine = api_as(buyer).get(f"/api/escalations/{escalation.pk}/").json()
    assert mine["decision"]["outcome"] == "overturned"


def test_a_replayed_decision_with_the_same_key_moves_nothing_more(api_as, supervisor, escalation):
    client = api_as(supervisor)
    body = {"outcome": "overturned", "explanation": EXPLAINED, "amount": "6.00"}

    first = client.post(decide_url(escalation.pk), body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = client.post(decide_url(escalation.pk), body, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == first.json()
    assert Refund.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"outcome": "maybe", "explanation": EXPLAINED}, "invalid_outcome"),
        ({"outcome": "upheld", "explanation": "no"}, "explanation_required"),
        ({"outcome": "overturned", "explanation": EXPLAINED, "amount": "-1.00"}, "invalid_amount"),
        ({"outcome": "overturned", "explanation": EXPLAINED, "amount": "99.00"}, "invalid_amount"),
        ({"outcome": "overturned", "explanation": EXPLAINED, "amount": "lots"}, "invalid_amount"),
        ({"explanation": EXPLAINED}, "missing_field"),
    ],
)
def test_a_bad_decision_is_a_400_and_changes_nothing(api_as, supervisor, escalation, body, code):
    response = api_as(supervisor).post(decide_url(escalation.pk), body, format="json")

    assert (response.status_code, response.json()["code"]) == (400, code)
    escalation.refresh_from_db()
    assert escalation.status == "open"
    assert Refund.objects.count() == 0


def test_an_unknown_escalation_is_a_404(api_as, supervisor):
    response = api_as(supervisor).post(
        decide_url(999999), {"outcome": "upheld", "explanation": EXPLAINED}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (404, "not_found")
