"""What awaits a supervisor's second approval, on one admin page (issue 10, part 5; D-6 four
eyes, K-UP): refund decisions above `supervisor_approval_above` and policy drafts, oldest first,
with approve and reject buttons calling the services; refusals are admin messages that change
nothing; agents get a 403; the admin index links it with a count."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import Notification
from orders.models import PolicyVersion
from orders.services.policy_versions import policy_version_save_draft
from refunds.models import Refund, RefundRequest
from refunds.services.decisions import refund_request_approve, refund_request_partially_approve
from refunds.services.requests import refund_request_submit
from tests.conftest import NOW, advance, place_order, refunds_processed
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:approvals")
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def second_supervisor(db):
    return UserFactory(username="boss2", is_staff=True, groups=["supervisor"])


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def decide_url(kind: str, object_id: int, verdict: str) -> str:
    return reverse("admin:approval_decide", args=[kind, object_id, verdict])


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def rows(response) -> list[tuple[str, str]]:
    return [(row.kind, row.title) for row in response.context["rows"]]


def large_decision(buyer, restaurant, menu, agent, *, amount=None) -> RefundRequest:
    """5 Margherita + 2.99 delivery = 65.49 paid, the whole order wrong; the agent approves
    65.49 (or partially `amount`), above the 50.00 four-eyes threshold: it waits."""
    order = place_order(buyer, restaurant, {menu["Margherita"]: 5})
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    request = refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")
    if amount is None:
        return refund_request_approve(request_id=request.pk, actor=agent)
    return refund_request_partially_approve(
        request_id=request.pk,
        actor=agent,
        amount=amount,
        explanation="All but the drinks were wrong.",
        method="original",
    )


def draft(actor, label="2") -> PolicyVersion:
    version = PolicyVersion(label=label, text=f"Version {label}.", summary_of_changes="Fee 12 %.")
    return policy_version_save_draft(version=version, actor=actor)


def test_supervisors_see_both_kinds_oldest_first_with_amount_who_and_when(
    clock, supervisor, second_supervisor, agent, buyer, restaurant, menu
):
    version = draft(second_supervisor)
    clock.shift(HOUR)
    request = large_decision(buyer, restaurant, menu, agent, amount=D("60.00"))
    clock.shift(HOUR)
    own = draft(supervisor, label="3")

    response = client_for(supervisor).get(QUEUE)

    assert response.status_code == 200
    assert rows(response) == [
        ("policy-version", "Policy version 2"),
        ("refund-request", f"Refund request #{request.pk}"),
        ("policy-version", "Policy version 3"),
    ]
    row = response.context["rows"][1]
    assert (row.amount, row.threshold, row.by, row.since, row.yours) == (
        D("60.00"),
        D("50.00"),
        "agent",
        NOW + HOUR,
        False,
    )
    page = response.content.decode()
    assert "60.00 USD" in page
    assert "above 50.00 USD" in page
    assert "Fri 20 Nov 2026, 13:00" in page
    assert f'data-awaiting="policy-version-{own.pk}"' in page
    assert page.count("data-yours") == 1  # the draft the supervisor wrote
    assert decide_url("refund-request", request.pk, "approve") in page
    assert decide_url("policy-version", version.pk, "reject") in page


def test_the_index_links_the_queue_with_its_count_for_supervisors_only(
    supervisor, second_supervisor, agent, buyer, restaurant, menu
):
    draft(second_supervisor)
    large_decision(buyer, restaurant, menu, agent)

    supervisor_index = client_for(supervisor).get(reverse("admin:index"))
    agent_index = client_for(agent).get(reverse("admin:index"))

    assert supervisor_index.context["awaiting_second_approval"] == 2
    page = supervisor_index.content.decode()
    assert f'<a href="{QUEUE}">Awaiting a second approval</a>' in page
    assert 'data-count="2">2</span>' in page
    assert "awaiting_second_approval" not in agent_index.context
    assert QUEUE not in agent_index.content.decode()


def test_agents_are_refused_the_queue_and_its_buttons(agent, buyer, restaurant, menu):
    request = large_decision(buyer, restaurant, menu, agent)
    client = client_for(agent)

    listed = client.get(QUEUE)
    approved = client.post(decide_url("refund-request", request.pk, "approve"))

    assert listed.status_code == 403
    assert 'data-error-page="403"' in listed.content.decode()
    assert "Only supervisors give second approvals" in listed.content.decode()
    assert approved.status_code == 403
    request.refresh_from_db()
    assert (request.status, request.second_approved_by) == ("approved", None)
    assert Refund.objects.count() == 0


def test_a_supervisor_approves_a_refund_and_the_money_moves_once(
    supervisor, agent, buyer, restaurant, menu
):
    request = large_decision(buyer, restaurant, menu, agent)

    response = client_for(supervisor).post(decide_url("refund-request", request.pk, "approve"))

    assert response.status_code == 302
    assert response["Location"] == QUEUE
    assert messages_of(response) == [
        (
            "success",
            f"Refund request #{request.pk}: second approval given; 65.49 USD goes to the buyer.",
        )
    ]
    assert refunds_processed() == {"succeeded": 1}
    request.refresh_from_db()
    assert (request.status, request.second_approved_by) == ("refunded", supervisor)
    assert [(r.destination, r.amount) for r in Refund.objects.all()] == [("card", D("65.49"))]
    assert rows(client_for(supervisor).get(QUEUE)) == []


def test_the_supervisor_who_decided_cannot_approve_it_too(supervisor, buyer, restaurant, menu):
    request = large_decision(buyer, restaurant, menu, supervisor)
    client = client_for(supervisor)

    response = client.post(decide_url("refund-request", request.pk, "approve"))

    assert response.status_code == 302
    assert messages_of(response) == [
        (
            "error",
            f"Refund request #{request.pk}: The second approval must come from someone else.",
        )
    ]
    request.refresh_from_db()
    assert (request.status, request.second_approved_by) == ("approved", None)
    assert Refund.objects.count() == 0
    assert rows(client.get(QUEUE)) == [("refund-request", f"Refund request #{request.pk}")]


def test_rejecting_a_refund_needs_a_reason(supervisor, agent, buyer, restaurant, menu):
    request = large_decision(buyer, restaurant, menu, agent)
    before = RefundRequest.objects.values().get(pk=request.pk)

    response = client_for(supervisor).post(
        decide_url("refund-request", request.pk, "reject"), {"explanation": ""}
    )

    assert messages_of(response) == [
        ("error", f"Refund request #{request.pk}: Write why you reject it.")
    ]
    assert RefundRequest.objects.values().get(pk=request.pk) == before
    assert request.events.filter(name="send_back").count() == 0


def test_a_rejected_refund_goes_back_to_review_with_nothing_paid(
    supervisor, agent, buyer, restaurant, menu
):
    request = large_decision(buyer, restaurant, menu, agent, amount=D("60.00"))
    reason = "The photos show only the drinks were wrong; refund those."

    response = client_for(supervisor).post(
        decide_url("refund-request", request.pk, "reject"), {"explanation": reason}
    )

    assert messages_of(response) == [
        ("success", f"Refund request #{request.pk}: sent back to review; nothing was paid.")
    ]
    request.refresh_from_db()
    assert (request.status, request.decided_amount, request.decided_by, request.decided_at) == (
        "under_review",
        None,
        None,
        None,
    )
    assert (request.resolution, request.explanation, request.needs_second_approval) == (
        "",
        "",
        False,
    )
    last = request.events.order_by("pk").last()
    assert (last.name, last.from_status, last.to_status, last.actor) == (
        "send_back",
        "partially_approved",
        "under_review",
        supervisor,
    )
    assert last.message == f"Sent back for another review by a supervisor: {reason}"
    assert Refund.objects.count() == 0
    # The agent decides again, now below the threshold: the money moves without waiting.
    again = refund_request_partially_approve(
        request_id=request.pk,
        actor=agent,
        amount=D("6.00"),
        explanation="Only the drinks were wrong.",
        method="original",
    )
    assert refunds_processed() == {"succeeded": 1}
    again.refresh_from_db()
    assert (again.status, again.decided_amount) == ("refunded", D("6.00"))


def test_a_second_supervisor_approves_a_policy_draft_and_its_drafter_cannot(
    supervisor, second_supervisor
):
    version = draft(supervisor)
    url = decide_url("policy-version", version.pk, "approve")

    own = client_for(supervisor).post(url)
    other = client_for(second_supervisor).post(url)

    assert messages_of(own) == [
        (
            "error",
            f"Policy version id {version.pk}: A version is approved by a supervisor other than "
            "the one who drafted it.",
        )
    ]
    assert messages_of(other) == [
        ("success", "Policy version 2: approved; publish it with its effective date.")
    ]
    version.refresh_from_db()
    assert (version.status, version.approved_by) == ("approved", second_supervisor)


def test_a_rejected_policy_draft_is_closed_and_its_drafter_told_why(supervisor, second_supervisor):
    version = draft(supervisor)

    response = client_for(second_supervisor).post(
        decide_url("policy-version", version.pk, "reject"),
        {"explanation": "The fee bounds contradict L-2.1."},
    )
    again = client_for(second_supervisor).post(decide_url("policy-version", version.pk, "approve"))

    assert messages_of(response) == [
        ("success", "Policy version 2: rejected; its drafter is told why.")
    ]
    version.refresh_from_db()
    assert (version.status, version.rejected_by, version.rejection_reason) == (
        "rejected",
        second_supervisor,
        "The fee bounds contradict L-2.1.",
    )
    assert version.approved_by is None
    (told,) = Notification.objects.filter(user=supervisor)
    assert told.title == "Policy version 2 was rejected"
    assert told.body == "boss2 rejected it in review: The fee bounds contradict L-2.1."
    assert messages_of(again) == [
        (
            "error",
            f"Policy version id {version.pk}: Only a version that is draft can be approved; "
            "it is rejected.",
        )
    ]
    assert PolicyVersion.objects.published().count() == 1
    page = client_for(supervisor).get(
        reverse("admin:orders_policyversion_change", args=[version.pk])
    )
    assert "Rejected by boss2 on " in page.content.decode()
    assert "“The fee bounds contradict L-2.1.” It never applies" in page.content.decode()


def test_unknown_kinds_are_404_and_gets_are_405(supervisor):
    client = client_for(supervisor)

    assert client.post(decide_url("order", 1, "approve")).status_code == 404
    assert client.post(decide_url("refund-request", 1, "shrug")).status_code == 404
    assert client.get(decide_url("refund-request", 1, "approve")).status_code == 405
    missing = client.post(decide_url("refund-request", 999999, "approve"))
    assert missing.status_code == 302
    assert messages_of(missing)[0][0] == "error"


def test_the_queue_page_query_count_does_not_grow_with_its_rows(
    supervisor, second_supervisor, agent, buyer, restaurant, menu, django_assert_num_queries
):
    large_decision(buyer, restaurant, menu, agent)
    draft(second_supervisor)
    client = client_for(supervisor)
    client.get(QUEUE)
    with CaptureQueriesContext(connection) as two_rows:
        client.get(QUEUE)
    for label in ("3", "4"):
        draft(second_supervisor, label=label)
    for _ in range(2):
        large_decision(buyer, restaurant, menu, agent)

    with django_assert_num_queries(len(two_rows)):
        response = client.get(QUEUE)

    assert len(response.context["rows"]) == 6


def test_the_request_page_offers_the_same_two_answers_to_a_second_supervisor(
    supervisor, agent, buyer, restaurant, menu
):
    request = large_decision(buyer, restaurant, menu, agent)
    client = client_for(supervisor)
    change = reverse("admin:refunds_refundrequest_change", args=[request.pk])
    send_back = reverse("admin:refunds_refundrequest_decide", args=[request.pk, "send_back"])

    page = client.get(change).content.decode()
    refused = client.post(send_back, {"explanation": ""})
    client.get(change)  # shows (and so clears) the refusal
    sent = client.post(send_back, {"explanation": "Check the photos again."})

    assert 'data-decision="second_approve"' in page
    assert 'data-decision="send_back"' in page
    assert messages_of(refused) == [
        ("error", f"Refund request #{request.pk}: This field is required.")
    ]
    assert messages_of(sent) == [
        ("success", f"Refund request #{request.pk}: sent back to review; nothing was paid.")
    ]
    request.refresh_from_db()
    assert (request.status, request.decided_amount) == ("under_review", None)
    assert Refund.objects.count() == 0
