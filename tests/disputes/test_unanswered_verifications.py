"""K-OV: a verification request support sent the restaurant, unanswered past the pinned
version's `verification_response_hours`, goes back to support as an `unanswered_verification`
case, once; the case closes when the request leaves `awaiting_restaurant` by any path."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.models import Notification
from disputes.models import Intervention
from disputes.selectors import refund_requests_with_unanswered_verification
from disputes.tasks import hand_unanswered_verifications_to_support as hand_over
from orders.admin import policy_fieldsets
from orders.models import PolicyVersion
from refunds.models import RefundRequest
from refunds.services.decisions import refund_request_deny
from refunds.services.requests import (
    refund_request_ask_restaurant,
    refund_request_restaurant_verify,
    refund_request_submit,
)
from tests.concurrency import run_concurrently
from tests.conftest import NOW, advance, place_order

pytestmark = pytest.mark.django_db

HOURS = 24  # version 1


@pytest.fixture
def asked(now, buyer, agent, restaurant, menu):
    """A wrong-order claim on a delivered order; support asked the restaurant at NOW."""
    order = place_order(buyer, restaurant, {menu["Margherita"]: 1})
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    request = refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")
    assert request.status == RefundRequest.Status.UNDER_REVIEW
    return refund_request_ask_restaurant(
        request_id=request.pk, actor=agent, question="Was it the right order?"
    )


def handed_over(request) -> list[tuple]:
    return list(
        request.events.filter(name="handed_to_support").values_list(
            "actor_role", "from_status", "to_status", "message", "clauses"
        )
    )


def test_version_1_gives_the_restaurant_24_hours():
    assert PolicyVersion.objects.get(label="1").verification_response_hours == HOURS


@pytest.mark.parametrize(("case", "hours", "valid"), [
    ("zero", 0, False), ("one", 1, True), ("a week", 168, True), ("over a week", 169, False),
])  # fmt: skip
def test_the_response_time_is_validated(case, hours, valid):
    version = PolicyVersion(
        label="x", effective_from=NOW, text="t", verification_response_hours=hours
    )
    if valid:
        version.full_clean()
    else:
        with pytest.raises(ValidationError) as error:
            version.full_clean()
        assert list(error.value.message_dict) == ["verification_response_hours"]


def test_the_response_time_is_in_the_k_ov_fieldset():
    [fields] = [o["fields"] for name, o in policy_fieldsets() if name.startswith("K-OV")]
    assert fields == ["cancellation_response_minutes", "verification_response_hours"]


def test_asking_the_restaurant_starts_its_clock(asked):
    assert NOW <= asked.restaurant_asked_at < NOW + dt.timedelta(seconds=5)


def test_unanswered_past_the_response_time_is_handed_over_once(now, asked, partner):
    notifications_before = Notification.objects.count()
    now.shift(dt.timedelta(hours=HOURS, seconds=1))

    first, second = hand_over(), hand_over()

    assert (first, second) == (1, 0)
    case = Intervention.objects.get()
    summary = (
        f"Restaurant did not answer the verification request on refund request #{asked.pk} "
        "within 24 h."
    )
    assert (case.order, case.refund_request, case.kind, case.status, case.summary) == (
        asked.order, asked, "unanswered_verification", "open", summary,
    )  # fmt: skip
    assert handed_over(asked) == [
        ("system", "awaiting_restaurant", "awaiting_restaurant",
         "The restaurant did not answer within 24 h: support decides.", ["L-4.1", "K-OV"]),
    ]  # fmt: skip
    told = Notification.objects.order_by("pk")[notifications_before:]
    assert [(n.user, n.title) for n in told] == [
        (partner, f"Order #{asked.order_id}: verification handed to support")
    ]
    asked.refresh_from_db()
    assert asked.status == RefundRequest.Status.AWAITING_RESTAURANT


def test_inside_the_response_time_nothing_happens(now, asked):
    now.shift(dt.timedelta(hours=HOURS, seconds=-1))
    assert hand_over() == 0
    assert not Intervention.objects.exists()
    assert handed_over(asked) == []


def test_the_pinned_version_decides(now, buyer, agent, restaurant, menu):
    PolicyVersion.objects.create(
        status="published",  # K-UP: only a published version applies
        label="2",
        effective_from=NOW - dt.timedelta(minutes=1),
        text="Two hours to verify.",
        verification_response_hours=2,
    )
    order = place_order(buyer, restaurant, {menu["Margherita"]: 1})
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    request = refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")
    refund_request_ask_restaurant(request_id=request.pk, actor=agent, question="Right order?")
    now.shift(dt.timedelta(hours=2, seconds=1))

    assert hand_over() == 1
    assert Intervention.objects.get().summary.endswith("within 2 h.")


def test_the_restaurant_answering_closes_the_case(now, asked, partner):
    now.shift(dt.timedelta(hours=HOURS + 1))
    hand_over()

    refund_request_restaurant_verify(request_id=asked.pk, actor=partner, note="It was right.")

    case = Intervention.objects.get()
    assert (case.status, case.resolved_by, case.action_taken) == (
        "resolved", partner, "The restaurant answered",
    )  # fmt: skip
    assert case.resolved_at - NOW - dt.timedelta(hours=HOURS + 1) < dt.timedelta(seconds=5)
    assert hand_over() == 0


def test_a_decision_closes_the_case(now, asked, agent):
    now.shift(dt.timedelta(hours=HOURS + 1))
    hand_over()

    refund_request_deny(request_id=asked.pk, actor=agent, explanation="The order was right.")

    case = Intervention.objects.get()
    assert (case.status, case.resolved_by, case.action_taken) == (
        "resolved", agent, "Decided: denied",
    )  # fmt: skip


def test_answered_in_time_is_never_handed_over(now, asked, partner):
    refund_request_restaurant_verify(request_id=asked.pk, actor=partner, note="It was right.")
    now.shift(dt.timedelta(hours=HOURS + 1))
    assert hand_over() == 0
    assert not Intervention.objects.exists()


def test_asked_again_after_an_answer_the_clock_restarts(now, asked, partner, agent):
    now.shift(dt.timedelta(hours=HOURS + 1))
    hand_over()
    refund_request_restaurant_verify(request_id=asked.pk, actor=partner, note="It was right.")
    now.shift(dt.timedelta(hours=1))
    refund_request_ask_restaurant(request_id=asked.pk, actor=agent, question="Are you sure?")
    now.shift(dt.timedelta(hours=HOURS - 1))
    assert hand_over() == 0
    now.shift(dt.timedelta(hours=1, seconds=1))
    assert hand_over() == 1
    assert list(Intervention.objects.order_by("pk").values_list("status", flat=True)) == [
        "resolved", "open",
    ]  # fmt: skip


def test_the_sweep_works_in_bounded_batches_longest_waiting_first(
    now, buyer, agent, restaurant, menu
):
    requests = []
    for _ in range(3):
        order = place_order(buyer, restaurant, {menu["Margherita"]: 1})
        advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
        request = refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")
        refund_request_ask_restaurant(request_id=request.pk, actor=agent, question="Right?")
        requests.append(request)
        now.shift(dt.timedelta(minutes=1))
    now.shift(dt.timedelta(hours=HOURS))
    due = refund_requests_with_unanswered_verification(now=NOW + dt.timedelta(days=2), limit=2)
    assert due == [(r.pk, r.order_id) for r in requests[:2]]

    assert (hand_over(batch_size=2), hand_over(batch_size=2), hand_over()) == (2, 1, 0)
    assert list(Intervention.objects.order_by("pk").values_list("refund_request", flat=True)) == [
        r.pk for r in requests
    ]


def test_the_case_shows_in_the_admin_queue(client, supervisor, now, asked):
    now.shift(dt.timedelta(hours=HOURS + 1))
    hand_over()
    client.force_login(supervisor)
    response = client.get(reverse("admin:disputes_intervention_changelist"))
    assert response.status_code == 200
    assert "Unanswered verification request" in response.content.decode()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_hand_the_request_over_once(now, asked, partner):
    notifications_before = Notification.objects.count()
    now.shift(dt.timedelta(hours=HOURS + 1))

    results = run_concurrently(hand_over, 2)

    assert sorted(results) == [0, 1]
    assert Intervention.objects.filter(refund_request=asked).count() == 1
    assert len(handed_over(asked)) == 1
    assert Notification.objects.count() == notifications_before + 1
