"""The support review queue in admin (L-4.1; JOURNEYS support 1-2): refund requests ordered by
their due time with due-soon and overdue filters and counts per state; the request page with
everything the agent reads; decisions through the services, refusals as messages that change
nothing; four eyes; two agents at once; photos through a permission-checked view."""

import datetime as dt
import io
import re
from decimal import Decimal as D

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from core.models import Notification
from credits.models import CreditGrant
from disputes.models import Incident, Intervention
from orders.models import Order, OrderEvent
from refunds.admin import REVIEW_DECISIONS
from refunds.models import Refund, RefundRequest, RestaurantLedgerEntry
from refunds.services.decisions import refund_request_approve, refund_request_deny
from refunds.services.evidence import refund_request_add_evidence
from refunds.services.execution import refund_order
from refunds.services.requests import refund_request_reply, refund_request_submit
from tests.concurrency import run_concurrently
from tests.conftest import (
    NOW,
    advance,
    place_order,
    processor_charges,
    processor_refunds,
    refunds_processed,
)
from tests.factories import MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:refunds_refundrequest_changelist")
HOUR = dt.timedelta(hours=1)


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def clock():
    """Frozen at NOW: deadlines and pauses are exact."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def png(colour="red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "PNG")
    return buffer.getvalue()


def photo(name="spill.png", colour="red") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, png(colour), content_type="image/png")


def delivered_order(buyer, restaurant, items, actor=None) -> Order:
    order = place_order(buyer, restaurant, items)
    steps = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    return advance(order, *steps, actor=actor)


def missing_tiramisu(buyer, restaurant, menu, **kwargs) -> RefundRequest:
    """2 Margherita + 1 Tiramisu + 2.99 delivery = 33.99 by card; the tiramisu (6.00) is
    missing: under review, the policy suggests 6.00."""
    order = delivered_order(buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 1})
    return refund_request_submit(
        order_id=order.pk,
        actor=buyer,
        reason="missing_items",
        items=[(order.items.get(name="Tiramisu").pk, 1)],
        **kwargs,
    )


@pytest.fixture
def claim(clock, buyer, restaurant, menu) -> RefundRequest:
    return missing_tiramisu(buyer, restaurant, menu, description="No tiramisu in the bag")


@pytest.fixture
def large_claim(clock, buyer, restaurant, menu) -> RefundRequest:
    """5 Margherita + 2.99 delivery = 65.49 paid; the whole order was wrong."""
    order = delivered_order(buyer, restaurant, {menu["Margherita"]: 5})
    return refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")


@pytest.fixture
def other_agent(db):
    return UserFactory(username="agent2", is_staff=True, groups=["support_agent"])


@pytest.fixture
def other_supervisor(db):
    return UserFactory(username="boss2", is_staff=True, groups=["supervisor"])


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def change_url(request: RefundRequest) -> str:
    return reverse("admin:refunds_refundrequest_change", args=[request.pk])


def decide_url(request: RefundRequest, decision: str) -> str:
    return reverse("admin:refunds_refundrequest_decide", args=[request.pk, decision])


def evidence_url(evidence_id: int) -> str:
    return reverse("refunds:evidence", args=[evidence_id])


def decision_buttons(response) -> list[str]:
    return re.findall(r'data-decision="(\w+)"', response.content.decode())


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def money(amount: str) -> str:
    return f"{amount} {settings.LOJIX_CURRENCY}"


def snapshot(request: RefundRequest) -> dict:
    """Everything a refused decision must leave as it was."""
    return {
        "request": RefundRequest.objects.values().get(pk=request.pk),
        "events": list(request.events.values_list("name", flat=True)),
        "messages": request.messages.count(),
        "refunds": Refund.objects.count(),
        "gateway": len(processor_charges()) + len(processor_refunds()),
        "grants": CreditGrant.objects.count(),
        "ledger": RestaurantLedgerEntry.objects.count(),
        "order_events": OrderEvent.objects.count(),
        "notifications": Notification.objects.count(),
    }


# -- the queue --------------------------------------------------------------------------------


def test_the_queue_lists_open_requests_by_due_time_then_decided_ones(
    clock, agent, buyer, restaurant, menu
):
    first = missing_tiramisu(buyer, restaurant, menu)
    clock.shift(HOUR)
    second = missing_tiramisu(buyer, restaurant, menu)
    clock.shift(HOUR)
    third = missing_tiramisu(buyer, restaurant, menu)
    refund_request_deny(request_id=first.pk, actor=agent, explanation="The bag was complete.")
    # Asked and answered five hours later: the second request is now due after the third.
    client = client_for(agent)
    client.post(decide_url(second, "request_info"), {"question": "Was the bag sealed?"})
    clock.shift(5 * HOUR)
    refund_request_reply(request_id=second.pk, actor=buyer, body="Yes, sealed.")

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [third, second, first]
    second.refresh_from_db()
    assert second.review_due_at == NOW + HOUR + 48 * HOUR + 5 * HOUR
    counts = response.context["queue_counts"]
    assert {s["value"]: s["count"] for s in counts["states"]} == {
        "submitted": 0,
        "under_review": 2,
        "info_requested": 0,
        "awaiting_restaurant": 0,
        "approved": 0,
        "partially_approved": 0,
        "denied": 1,
        "refunded": 0,
    }
    page = response.content.decode()
    assert 'href="?status__exact=under_review" data-count="under_review">Under review: 2<' in page
    assert 'data-count="denied">Denied: 1<' in page


def _deadline(response) -> set[int]:
    return {request.pk for request in response.context["cl"].result_list}


def test_due_soon_and_overdue_filters_follow_the_clock(clock, agent, buyer, restaurant, menu):
    old = missing_tiramisu(buyer, restaurant, menu)  # due NOW + 48 h
    clock.shift(20 * HOUR)
    middle = missing_tiramisu(buyer, restaurant, menu)  # due NOW + 68 h
    paused = missing_tiramisu(buyer, restaurant, menu)  # due NOW + 68 h, then asked
    clock.shift(10 * HOUR)
    new = missing_tiramisu(buyer, restaurant, menu)  # due NOW + 78 h
    decided = missing_tiramisu(buyer, restaurant, menu)
    client = client_for(agent)
    client.post(decide_url(paused, "request_info"), {"question": "Which bag was it?"})
    refund_request_deny(request_id=decided.pk, actor=agent, explanation="The bag was complete.")

    def filtered(deadline):
        return _deadline(client.get(CHANGELIST, {"deadline": deadline}))

    # NOW + 30 h: only the oldest is in its last 24 hours.
    assert (filtered("due_soon"), filtered("overdue")) == ({old.pk}, set())
    clock.move_to(NOW + 44 * HOUR - dt.timedelta(seconds=1))
    assert filtered("due_soon") == {old.pk}
    clock.move_to(NOW + 44 * HOUR)  # the middle one has 24 h left: due soon from now on
    assert filtered("due_soon") == {old.pk, middle.pk}
    clock.move_to(NOW + 48 * HOUR - dt.timedelta(seconds=1))
    assert (filtered("due_soon"), filtered("overdue")) == ({old.pk, middle.pk}, set())
    clock.move_to(NOW + 48 * HOUR)  # the oldest is due: overdue, no longer "due soon"
    response = client.get(CHANGELIST)
    assert (filtered("due_soon"), filtered("overdue")) == ({middle.pk}, {old.pk})
    # The paused one is past the time it was due before the question: not overdue.
    clock.move_to(NOW + 80 * HOUR)
    assert (filtered("due_soon"), filtered("overdue")) == (set(), {old.pk, middle.pk, new.pk})
    counts = response.context["queue_counts"]
    assert (counts["overdue"], counts["due_soon"]) == (1, 1)
    assert 'data-count="overdue"><strong>Overdue: 1</strong>' in response.content.decode()


def test_the_deadline_column_says_where_each_request_stands(clock, agent, buyer, restaurant, menu):
    request = missing_tiramisu(buyer, restaurant, menu)
    client = client_for(agent)

    def deadline_cell():
        page = client.get(CHANGELIST).content.decode()
        return re.search(r'class="field-deadline"><a [^>]*>([^<]*)</a>', page).group(1)

    on_time = deadline_cell()
    clock.shift(30 * HOUR)
    soon = deadline_cell()
    clock.shift(20 * HOUR)
    late = deadline_cell()
    client.post(decide_url(request, "request_info"), {"question": "Which bag was it?"})
    paused = deadline_cell()

    assert (on_time, soon, late, paused) == (
        "in 2\xa0days",
        "due soon: in 18\xa0hours",
        "overdue by 2\xa0hours",
        "paused: waiting for the buyer",
    )


def test_the_queue_filters_by_status_reason_and_restaurant(clock, agent, buyer, restaurant, menu):
    tiramisu = missing_tiramisu(buyer, restaurant, menu)
    elsewhere = RestaurantFactory(name="Golden Dragon")
    dumplings = MenuItemFactory(restaurant=elsewhere, name="Dumplings", price=D("8.00"))
    wrong = refund_request_submit(
        order_id=delivered_order(buyer, elsewhere, {dumplings: 2}, actor=agent).pk,
        actor=buyer,
        reason="wrong_order",
    )
    client = client_for(agent)

    def listed(**params):
        return _deadline(client.get(CHANGELIST, params))

    assert listed(reason="wrong_order") == {wrong.pk}
    assert listed(order__restaurant__id__exact=restaurant.pk) == {tiramisu.pk}
    assert listed(status__exact="under_review") == {tiramisu.pk, wrong.pk}
    assert listed(status__exact="denied") == set()
    assert listed(q=f"#{wrong.order_id}") == {wrong.pk}


def test_the_queue_query_count_does_not_grow_with_requests(
    clock, agent, buyer, restaurant, menu, django_assert_num_queries
):
    client = client_for(agent)
    missing_tiramisu(buyer, restaurant, menu)
    client.get(CHANGELIST)  # warm up the session
    with CaptureQueriesContext(connection) as one_request:
        assert len(client.get(CHANGELIST).context["cl"].result_list) == 1
    for n in range(9):
        other = RestaurantFactory(name=f"Place {n}")
        dish = MenuItemFactory(restaurant=other, name="Soup")
        someone = UserFactory()
        order = delivered_order(someone, other, {dish: 2}, actor=agent)
        refund_request_submit(order_id=order.pk, actor=someone, reason="wrong_order")

    with django_assert_num_queries(len(one_request)):
        assert len(client.get(CHANGELIST).context["cl"].result_list) == 10


# -- the request page -------------------------------------------------------------------------


def test_the_request_page_shows_what_the_agent_needs_to_decide(
    clock, agent, buyer, restaurant, menu
):
    earlier = missing_tiramisu(buyer, restaurant, menu)
    refund_request_approve(request_id=earlier.pk, actor=agent)
    refunds_processed()
    request = missing_tiramisu(buyer, restaurant, menu, photos=[photo()])
    client_for(agent).post(decide_url(request, "request_info"), {"question": "Which bag?"})
    refund_request_reply(request_id=request.pk, actor=buyer, body="The brown one.")

    response = client_for(agent).get(change_url(request))

    assert response.status_code == 200
    page = response.content.decode()
    review = response.context["review"]
    assert review["refundable"] == D("33.99")
    assert [e.name for e in review["order_events"]] == [
        "place",
        "charge",
        "accept",
        "start_preparation",
        "mark_ready",
        "dispatch",
        "deliver",
    ]
    assert [p.amount for p in review["payments"]] == [D("33.99")]
    assert list(review["claims"]) == [earlier]
    assert (review["claims_count"], review["claims_refunded"], review["claims_refunded_total"]) == (
        1,
        1,
        D("6.00"),
    )
    formsets = {f.formset.prefix: f.formset for f in response.context["inline_admin_formsets"]}
    assert [(f.instance.order_item.name, f.instance.quantity) for f in formsets["items"].forms] == [
        ("Tiramisu", 1)
    ]
    assert [f.instance.role for f in formsets["messages"].forms] == ["support", "buyer"]
    assert [f.instance.name for f in formsets["events"].forms] == [
        "submit",
        "start_review",
        "request_info",
        "answer",
    ]
    (evidence,) = [f.instance for f in formsets["evidence"].forms]
    assert f'<img src="{evidence_url(evidence.pk)}?size=thumb" alt="Photo {evidence.pk}"' in page
    assert f"1 other claim;\n    1 refunded, {money('6.00')} in total." in page
    assert f'data-claim="{earlier.pk}"' in page
    assert "Which bag?" in page
    assert "The brown one." in page
    assert re.search(r'<a class="clause" href="/policy/#L-3\.2" title="L-3\.2 · [^"]+"', page)
    assert f"The policy suggests <strong>partial {money('6.00')}</strong>" in page
    assert f"<strong>{money('33.99')}</strong> of the order is still refundable" in page


def test_the_request_page_query_count_does_not_grow_with_history_photos_and_messages(
    clock, agent, buyer, restaurant, menu, django_assert_num_queries
):
    request = missing_tiramisu(buyer, restaurant, menu, photos=[photo()])
    client = client_for(agent)
    client.get(change_url(request))
    with CaptureQueriesContext(connection) as small:
        client.get(change_url(request))
    refund_request_add_evidence(
        request_id=request.pk, actor=buyer, photos=[photo("b.png"), photo("c.png")]
    )
    refund_request_reply(request_id=request.pk, actor=buyer, body="More photos.")
    for _ in range(3):
        refund_request_approve(request_id=missing_tiramisu(buyer, restaurant, menu).pk, actor=agent)

    with django_assert_num_queries(len(small)):
        response = client.get(change_url(request))
    assert response.context["review"]["claims_count"] == 3


# -- deciding ---------------------------------------------------------------------------------


def test_an_under_review_request_offers_the_review_decisions(agent, claim):
    response = client_for(agent).get(change_url(claim))

    assert decision_buttons(response) == REVIEW_DECISIONS
    page = response.content.decode()
    assert f"at most <strong data-bound>{money('33.99')}</strong>" in page
    assert f"Refund {money('6.00')}, the policy's suggestion" in page
    for name in REVIEW_DECISIONS:
        assert decide_url(claim, name) in page


def test_an_agent_approves_a_missing_item_and_the_money_moves_once(agent, buyer, claim):
    client = client_for(agent)

    response = client.post(decide_url(claim, "approve"), {"method": "original"})

    assert response.status_code == 302
    assert response["Location"] == change_url(claim)
    assert messages_of(response) == [
        (
            "success",
            f"Refund request #{claim.pk}: approved: {money('6.00')} on its way "
            f"({money('6.00')} to card); the buyer is told when the processor has sent it.",
        )
    ]
    assert refunds_processed() == {"succeeded": 1}
    claim.refresh_from_db()
    assert (claim.status, claim.decided_amount, claim.decided_by, claim.decided_method) == (
        RefundRequest.Status.REFUNDED,
        D("6.00"),
        agent,
        "original",
    )
    (refund,) = Refund.objects.all()
    assert (refund.request, refund.destination, refund.amount, refund.status) == (
        claim,
        "card",
        D("6.00"),
        "succeeded",
    )
    assert [(e.name, e.actor, e.to_status) for e in claim.events.all()][-3:] == [
        ("approve", agent, "approved"),
        ("refund_started", agent, "approved"),
        ("mark_refunded", None, "refunded"),  # when the processor made it (D-7)
    ]
    page = client.get(change_url(claim))
    assert decision_buttons(page) == []
    assert "This request is decided; nothing is left to do." in page.content.decode()
    assert f'data-refund="{refund.pk}"' in page.content.decode()
    again = client.post(decide_url(claim, "approve"), {"method": "original"})
    assert messages_of(again) == [
        ("error", f"Refund request #{claim.pk}: Request #{claim.pk} is refunded, not under review.")
    ]
    assert Refund.objects.count() == 1


def test_approving_as_account_credit_follows_the_chosen_method(agent, buyer, claim):
    client_for(agent).post(decide_url(claim, "approve"), {"method": "account_credit"})

    (refund,) = Refund.objects.all()
    assert (refund.destination, refund.amount) == ("account_credit", D("6.00"))
    assert CreditGrant.objects.get(buyer=buyer).amount == D("6.00")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"amount": "34.00", "explanation": "Half of the order was cold.", "method": "original"},
            "The amount must be more than zero and at most 33.99 USD.",
        ),
        (
            {"amount": "0.00", "explanation": "Half of the order was cold.", "method": "original"},
            "The amount must be more than zero and at most 33.99 USD.",
        ),
        (
            {"amount": "three", "explanation": "Half of the order was cold.", "method": "original"},
            "Enter a number.",
        ),
        ({"amount": "3.00", "explanation": "", "method": "original"}, None),
        ({"amount": "3.00", "explanation": "Half.", "method": "cash"}, None),
    ],
    ids=["above the bound", "zero", "not a number", "no explanation", "unknown method"],
)
def test_a_refused_partial_approval_is_a_message_and_changes_nothing(agent, claim, data, message):
    before = snapshot(claim)

    response = client_for(agent).post(decide_url(claim, "partially_approve"), data)

    assert response["Location"] == change_url(claim)
    ((level, text),) = messages_of(response)
    assert level == "error"
    if message:
        assert text == f"Refund request #{claim.pk}: {message}"
    assert snapshot(claim) == before


def test_a_partial_approval_within_the_bound_pays_that_amount(agent, claim):
    response = client_for(agent).post(
        decide_url(claim, "partially_approve"),
        {"amount": "3.00", "explanation": "Half a tiramisu was in the bag.", "method": "original"},
    )

    assert [level for level, _ in messages_of(response)] == ["success"]
    refunds_processed()
    claim.refresh_from_db()
    assert (claim.status, claim.decided_amount, claim.explanation) == (
        RefundRequest.Status.REFUNDED,
        D("3.00"),
        "Half a tiramisu was in the bag.",
    )
    assert [r.amount for r in Refund.objects.all()] == [D("3.00")]


@pytest.mark.parametrize("explanation", ["", "   ", "No."])
def test_a_denial_needs_an_explanation(agent, claim, explanation):
    before = snapshot(claim)

    response = client_for(agent).post(decide_url(claim, "deny"), {"explanation": explanation})

    assert messages_of(response) == [
        ("error", f"Refund request #{claim.pk}: Explain the decision to the buyer.")
    ]
    assert snapshot(claim) == before


def test_an_explained_denial_moves_no_money_and_tells_the_buyer(agent, buyer, claim):
    before = snapshot(claim)

    response = client_for(agent).post(
        decide_url(claim, "deny"), {"explanation": "The restaurant's photo shows the tiramisu."}
    )

    assert messages_of(response) == [
        ("success", f"Refund request #{claim.pk}: denied; the buyer was told why.")
    ]
    claim.refresh_from_db()
    assert (claim.status, claim.decided_by, claim.decided_amount) == ("denied", agent, None)
    assert Refund.objects.count() == before["refunds"]
    assert Notification.objects.filter(user=buyer, title__endswith="denied").count() == 1


def test_promotional_credit_instead_of_a_refund(agent, buyer, claim):
    response = client_for(agent).post(
        decide_url(claim, "offer_credit"),
        {"amount": "5.00", "explanation": "A treat on us for the next order."},
    )

    assert messages_of(response) == [
        (
            "success",
            f"Refund request #{claim.pk}: {money('5.00')} promotional credit given instead of "
            "a refund.",
        )
    ]
    (refund,) = Refund.objects.all()
    assert (refund.destination, refund.amount) == ("promo_credit", D("5.00"))
    grant = CreditGrant.objects.get(buyer=buyer)
    assert (grant.kind, grant.amount) == ("promo", D("5.00"))


def test_asking_the_buyer_pauses_the_clock_until_they_answer(clock, agent, buyer, claim):
    due = claim.review_due_at
    client = client_for(agent)
    empty = client_for(agent).post(decide_url(claim, "request_info"), {"question": "  "})

    asked = client.post(decide_url(claim, "request_info"), {"question": "A photo of the bag?"})
    page = client.get(change_url(claim))
    clock.shift(5 * HOUR)
    refund_request_reply(request_id=claim.pk, actor=buyer, body="Here.", photos=[photo()])

    assert messages_of(empty) == [("error", f"Refund request #{claim.pk}: Write a question.")]
    assert messages_of(asked) == [
        (
            "success",
            f"Refund request #{claim.pk}: question sent to the buyer; the review clock is paused "
            "until they answer.",
        )
    ]
    assert decision_buttons(page) == []
    assert "Waiting for the buyer&#x27;s answer; the review clock is paused." in (
        page.content.decode()
    )
    claim.refresh_from_db()
    assert claim.status == RefundRequest.Status.UNDER_REVIEW
    assert claim.review_due_at == due + 5 * HOUR
    assert list(claim.messages.values_list("role", "author__username", "body")) == [
        ("support", "agent", "A photo of the bag?"),
        ("buyer", "ada", "Here."),
    ]
    assert decision_buttons(client.get(change_url(claim))) == REVIEW_DECISIONS


def test_asking_the_restaurant_waits_for_its_answer(agent, partner, claim):
    response = client_for(agent).post(
        decide_url(claim, "ask_restaurant"), {"question": "Did the tiramisu leave the kitchen?"}
    )

    assert [level for level, _ in messages_of(response)] == ["success"]
    claim.refresh_from_db()
    assert claim.status == RefundRequest.Status.AWAITING_RESTAURANT
    assert Notification.objects.filter(user=partner, title__startswith="Please verify").exists()
    page = client_for(agent).get(change_url(claim))
    # K-OV: a restaurant that never answers does not leave the request stuck.
    assert decision_buttons(page) == [
        "approve",
        "partially_approve",
        "deny",
        "offer_credit",
        "offer_replacement",
    ]
    assert (
        "Waiting for the restaurant&#x27;s answer; support may decide without it (K-OV)."
        in page.content.decode()
    )


def test_support_decides_a_request_the_restaurant_never_answered(agent, partner, claim):
    """K-OV: the decision is taken from awaiting_restaurant, and an open review-overdue case on
    the request closes in the same transaction."""
    client_for(agent).post(
        decide_url(claim, "ask_restaurant"), {"question": "Did the tiramisu leave the kitchen?"}
    )
    case = Intervention.objects.create(
        order=claim.order,
        refund_request=claim,
        kind=Intervention.Kind.REVIEW_OVERDUE,
        summary="Refund request not decided within 48 h.",
    )

    response = client_for(agent).post(
        decide_url(claim, "deny"), {"explanation": "The restaurant's photo shows the tiramisu."}
    )

    assert [level for level, _ in messages_of(response)] == ["success"]
    claim.refresh_from_db()
    assert (claim.status, claim.decided_by) == (RefundRequest.Status.DENIED, agent)
    case.refresh_from_db()
    assert (case.status, case.resolved_by, case.action_taken) == (
        "resolved",
        agent,
        "Decided: denied",
    )
    assert not Refund.objects.filter(order=claim.order).exists()


def test_an_unknown_decision_is_a_message(agent, claim):
    before = snapshot(claim)

    response = client_for(agent).post(decide_url(claim, "refund_twice"))

    assert messages_of(response) == [
        ("error", f"Refund request #{claim.pk}: unknown decision 'refund_twice'.")
    ]
    assert snapshot(claim) == before


# -- four eyes (D-6) --------------------------------------------------------------------------


def test_above_the_threshold_a_supervisor_approves_before_money_moves(
    agent, supervisor, large_claim
):
    agent_client, supervisor_client = client_for(agent), client_for(supervisor)
    decided = agent_client.post(
        decide_url(large_claim, "partially_approve"),
        {"amount": "60.00", "explanation": "All but the drinks were wrong.", "method": "original"},
    )
    after_first = snapshot(large_claim)
    agent_page = agent_client.get(change_url(large_claim))
    agent_try = agent_client.post(decide_url(large_claim, "second_approve"))
    supervisor_page = supervisor_client.get(change_url(large_claim))

    confirmed = supervisor_client.post(decide_url(large_claim, "second_approve"))

    assert messages_of(decided) == [
        (
            "success",
            f"Refund request #{large_claim.pk}: partially approved: {money('60.00')} approved; "
            f"above {money('50.00')} a supervisor approves too before money moves.",
        )
    ]
    assert after_first["request"]["status"] == "partially_approved"
    assert after_first["refunds"] == 0
    assert decision_buttons(agent_page) == []
    assert "another supervisor gives the second approval" in agent_page.content.decode()
    assert messages_of(agent_try) == [
        (
            "error",
            f"Refund request #{large_claim.pk}: Only a supervisor can give the second approval.",
        )
    ]
    assert decision_buttons(supervisor_page) == ["second_approve", "send_back"]
    assert messages_of(confirmed) == [
        (
            "success",
            f"Refund request #{large_claim.pk}: second approval given: {money('60.00')} on its "
            f"way ({money('60.00')} to card); the buyer is told when the processor has sent it.",
        )
    ]
    refunds_processed()
    large_claim.refresh_from_db()
    assert (large_claim.status, large_claim.decided_by, large_claim.second_approved_by) == (
        "refunded",
        agent,
        supervisor,
    )
    assert [(r.destination, r.amount) for r in Refund.objects.all()] == [("card", D("60.00"))]


def test_the_same_supervisor_cannot_give_both_approvals(supervisor, large_claim):
    client = client_for(supervisor)
    client.post(
        decide_url(large_claim, "partially_approve"),
        {"amount": "60.00", "explanation": "All but the drinks were wrong.", "method": "original"},
    )
    before = snapshot(large_claim)

    page = client.get(change_url(large_claim))
    response = client.post(decide_url(large_claim, "second_approve"))

    assert decision_buttons(page) == []
    assert messages_of(response) == [
        (
            "error",
            f"Refund request #{large_claim.pk}: The second approval must come from someone else.",
        )
    ]
    assert snapshot(large_claim) == before
    assert before["refunds"] == 0


def test_a_second_approval_is_not_offered_before_a_decision(supervisor, claim):
    before = snapshot(claim)

    response = client_for(supervisor).post(decide_url(claim, "second_approve"))

    assert messages_of(response) == [
        (
            "error",
            f"Refund request #{claim.pk}: This request is not waiting for a supervisor.",
        )
    ]
    assert snapshot(claim) == before


# -- money once -------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_agents_approving_at_once_make_one_refund(agent, other_agent, buyer, restaurant, menu):
    claim = missing_tiramisu(buyer, restaurant, menu)
    clients = iter([client_for(agent), client_for(other_agent)])

    responses = run_concurrently(
        lambda: next(clients).post(decide_url(claim, "approve"), {"method": "original"}), 2
    )

    assert [r.status_code for r in responses] == [302, 302]
    outcomes = sorted(messages_of(r)[0][0] for r in responses)
    assert outcomes == ["error", "success"]
    assert [(r.destination, r.amount) for r in Refund.objects.filter(request=claim)] == [
        ("card", D("6.00"))
    ]
    assert len(processor_refunds()) == 1
    assert list(claim.events.filter(name="approve").values_list("name", flat=True)) == ["approve"]
    claim.refresh_from_db()
    assert claim.status == RefundRequest.Status.REFUNDED


def test_approving_when_the_order_was_already_refunded_in_full_is_refused(agent, claim):
    refund_order(
        order_id=claim.order_id,
        amount=D("33.99"),
        method="original",
        idempotency_key="outage-refund",
        actor=None,
        role=OrderEvent.Role.POLICY,
        reason="Outage: refunded in full",
    )
    before = snapshot(claim)
    client = client_for(agent)

    page = client.get(change_url(claim))
    response = client.post(decide_url(claim, "approve"), {"method": "original"})

    assert decision_buttons(page) == [
        "deny",
        "offer_credit",
        "offer_replacement",
        "request_info",
        "ask_restaurant",
    ]
    assert "Nothing is left to refund on this order (L-7.2)" in page.content.decode()
    assert messages_of(response) == [
        (
            "error",
            f"Refund request #{claim.pk}: There is nothing left to refund for this order; deny "
            "the request or offer a credit.",
        )
    ]
    assert snapshot(claim) == before


# -- who may --------------------------------------------------------------------------------


def test_non_staff_are_sent_to_the_admin_login(client, buyer, partner, claim):
    before = snapshot(claim)
    urls_and_methods = [
        (CHANGELIST, "get"),
        (change_url(claim), "get"),
        (decide_url(claim, "approve"), "post"),
    ]
    login = reverse("admin:login")

    for user in (None, buyer, partner):
        if user is not None:
            client.force_login(user)
        for url, method in urls_and_methods:
            response = getattr(client, method)(url, {"method": "original"})
            assert response.status_code == 302, (user, url)
            assert response["Location"].startswith(f"{login}?next=")
    assert snapshot(claim) == before


def test_staff_without_a_support_role_cannot_decide(claim):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_refundrequest"))
    editor = UserFactory(username="editor", is_staff=True)
    editor.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_refundrequest", "change_refundrequest"])
    )
    before = snapshot(claim)

    viewer_page = client_for(viewer).get(change_url(claim))
    viewer_post = client_for(viewer).post(decide_url(claim, "approve"), {"method": "original"})
    editor_post = client_for(editor).post(decide_url(claim, "approve"), {"method": "original"})

    assert viewer_page.status_code == 200
    assert decision_buttons(viewer_page) == []
    assert viewer_post.status_code == 403
    assert messages_of(editor_post) == [
        ("error", f"Refund request #{claim.pk}: Only support staff decide refund requests.")
    ]
    assert snapshot(claim) == before


def test_decisions_are_posted_with_a_csrf_token(agent, claim):
    before = snapshot(claim)
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)

    get = client.get(decide_url(claim, "approve"))
    post = client.post(decide_url(claim, "approve"), {"method": "original"})

    assert (get.status_code, post.status_code) == (405, 403)
    assert snapshot(claim) == before


@pytest.mark.parametrize("user_fixture", ["agent", "supervisor"])
def test_support_roles_see_requests_and_decide_and_nothing_more(request, user_fixture):
    user = request.getfixturevalue(user_fixture)
    models = ["refundrequest", "refundrequestitem", "refundevidence", "refundmessage",
              "refundrequestevent"]  # fmt: skip
    actions = ["view", "add", "change", "delete"]

    granted = [
        f"{action}_{model}"
        for model in models
        for action in actions
        if user.has_perm(f"refunds.{action}_{model}")
    ]

    assert granted == [
        "view_refundrequest",
        "change_refundrequest",
        "view_refundrequestitem",
        "view_refundevidence",
        "view_refundmessage",
        "view_refundrequestevent",
    ]
    # Incidents (L-10): both see them and work allergen investigations; supervisors enter them.
    assert user.has_perm("disputes.view_incident")
    assert user.has_perm("disputes.change_incident")
    assert user.has_perm("disputes.add_incident") == (user_fixture == "supervisor")
    assert not user.has_perm("disputes.delete_incident")


# -- evidence ---------------------------------------------------------------------------------


@pytest.mark.parametrize("user_fixture", ["agent", "supervisor"])
def test_support_opens_the_photos_the_request_page_shows(
    request, user_fixture, clock, buyer, restaurant, menu
):
    claim = missing_tiramisu(buyer, restaurant, menu, photos=[photo(colour="blue")])
    evidence = claim.evidence.get()
    client = client_for(request.getfixturevalue(user_fixture))

    page = client.get(change_url(claim)).content.decode()
    response = client.get(evidence_url(evidence.pk))

    assert f'<a href="{evidence_url(evidence.pk)}" target="_blank" rel="noopener">' in page
    assert response.status_code == 200
    # What is served is what is stored: the upload re-encoded (an opaque PNG as a JPEG).
    served = b"".join(response.streaming_content)
    with evidence.file.storage.open(evidence.file.name, "rb") as stored:
        assert served == stored.read() != png("blue")
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("inline")


# -- incidents (L-10) -------------------------------------------------------------------------


def test_supervisors_see_the_allergen_incident_a_request_opened(
    clock, agent, supervisor, buyer, restaurant, menu
):
    order = delivered_order(buyer, restaurant, {menu["Tiramisu"]: 1})
    request = refund_request_submit(
        order_id=order.pk,
        actor=buyer,
        reason="allergic_reaction",
        description="Nuts in the tiramisu",
    )
    incident = Incident.objects.get()
    changelist = reverse("admin:disputes_incident_changelist")
    change = reverse("admin:disputes_incident_change", args=[incident.pk])

    listed = client_for(supervisor).get(changelist)
    page = client_for(supervisor).get(change)
    agent_list = client_for(agent).get(changelist)

    assert list(listed.context["cl"].result_list) == [incident]
    assert page.status_code == 200
    assert f"Refund request #{request.pk}</a>" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert agent_list.status_code == 200  # agents work allergen investigations (L-10)
