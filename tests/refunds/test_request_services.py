"""Refund request services on PostgreSQL: routing by the policy, decisions, money once."""

import datetime as dt
import io
from decimal import Decimal as D

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from core.errors import DomainError
from disputes.models import Incident, Intervention
from refunds.models import Refund, RefundEvidence, RefundRequest, RestaurantLedgerEntry
from refunds.services.decisions import (
    refund_request_approve,
    refund_request_deny,
    refund_request_offer_credit,
    refund_request_offer_replacement,
    refund_request_partially_approve,
    refund_request_second_approve,
)
from refunds.services.execution import refund_order
from refunds.services.requests import (
    refund_request_reply,
    refund_request_request_info,
    refund_request_submit,
)
from refunds.services.sla import refund_request_review_sla
from tests.concurrency import run_concurrently
from tests.conftest import advance, place_order, processor_refunds, refunds_processed

pytestmark = pytest.mark.django_db


def photo(name="spill.png"):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture
def delivered(now, buyer, restaurant, menu):
    """2 Margherita + 1 Tiramisu + 2.99 delivery = 33.99 by card, delivered at NOW."""
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 1})
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def line(order, name):
    return order.items.get(name=name).pk


def submit(order, buyer, reason, **kwargs):
    return refund_request_submit(order_id=order.pk, actor=buyer, reason=reason, **kwargs)


def test_a_missing_item_claim_goes_to_review_with_its_paid_share(delivered, buyer):
    request = submit(delivered, buyer, "missing_items", items=[(line(delivered, "Tiramisu"), 1)])

    assert request.status == RefundRequest.Status.UNDER_REVIEW
    assert (request.suggested_outcome, request.suggested_amount) == ("partial", D("6.00"))
    assert request.review_due_at == request.submitted_at + dt.timedelta(hours=48)
    assert not Refund.objects.exists()


def test_a_not_covered_reason_is_refused_at_once_by_the_policy(delivered, buyer):
    request = submit(delivered, buyer, "change_of_mind")

    assert (request.status, request.decided_by, request.decision_clauses) == (
        "denied",
        None,
        ["L-3.3"],
    )
    assert request.decided_by_label == "policy"


def test_a_health_concern_is_refunded_in_full_at_once(delivered, buyer):
    request = submit(delivered, buyer, "health_concern", description="Felt ill")

    assert request.status == RefundRequest.Status.APPROVED  # started at once, no review
    assert refunds_processed() == {"succeeded": 1}
    request.refresh_from_db()
    assert request.status == RefundRequest.Status.REFUNDED
    assert [(r.destination, r.amount, r.request_id) for r in Refund.objects.all()] == [
        ("card", D("33.99"), request.pk)
    ]


def test_an_allergic_reaction_also_opens_an_investigation(delivered, buyer, restaurant):
    request = submit(delivered, buyer, "allergic_reaction", description="Nuts in the tiramisu")
    assert not RestaurantLedgerEntry.objects.filter(kind="refund_deduction").exists()
    refunds_processed()  # the L-9 deduction is booked when the money moved (D-7)

    incident = Incident.objects.get()
    assert (incident.kind, list(incident.restaurants.all()), incident.refund_request) == (
        "allergen",
        [restaurant],
        request,
    )
    deduction = RestaurantLedgerEntry.objects.get(kind="refund_deduction")
    assert deduction.amount == D("-31.00")  # the whole sale, never more


def test_a_quality_claim_needs_a_photo_and_changes_nothing_without(delivered, buyer):
    with pytest.raises(DomainError) as refused:
        submit(delivered, buyer, "item_quality", items=[(line(delivered, "Tiramisu"), 1)],
               description="Soggy")  # fmt: skip
    assert (refused.value.code, refused.value.kind) == ("evidence_required", "invalid")
    assert not RefundRequest.objects.exists()


@pytest.mark.parametrize(
    ("upload", "code"),
    [
        (SimpleUploadedFile("fake.png", b"not an image at all", content_type="image/png"),
         "not_an_image"),
        (None, "file_too_large"),
    ],
)  # fmt: skip
def test_bad_photos_are_refused_and_nothing_is_stored(delivered, buyer, upload, code, settings):
    if upload is None:
        settings.LOJIX_PHOTO_MAX_BYTES = 10
        upload = photo()
    with pytest.raises(DomainError) as refused:
        submit(delivered, buyer, "item_quality", items=[(line(delivered, "Tiramisu"), 1)],
               description="Soggy", photos=[upload])  # fmt: skip
    assert refused.value.code == code
    assert (RefundRequest.objects.count(), RefundEvidence.objects.count()) == (0, 0)


def test_a_quality_claim_with_a_photo_stores_it(delivered, buyer):
    request = submit(delivered, buyer, "item_quality", items=[(line(delivered, "Tiramisu"), 1)],
                     description="Soggy", photos=[photo()])  # fmt: skip
    evidence = request.evidence.get()
    # An opaque PNG is stored re-encoded as a JPEG (refunds.photos).
    assert (evidence.content_type, evidence.width, evidence.height) == ("image/jpeg", 8, 8)


def test_an_agent_approves_and_the_money_moves_once(delivered, buyer, agent, restaurant):
    request = submit(delivered, buyer, "missing_items", items=[(line(delivered, "Tiramisu"), 1)])

    refund_request_approve(request_id=request.pk, actor=agent)
    refunds_processed()

    request.refresh_from_db()
    assert (request.status, request.decided_amount, request.decided_by) == (
        "refunded",
        D("6.00"),
        agent,
    )
    refund = Refund.objects.get(request=request)
    assert (refund.destination, refund.amount) == ("card", D("6.00"))
    assert refund.expected_in_bank_by is not None
    assert RestaurantLedgerEntry.objects.get(kind="refund_deduction").amount == D("-6.00")
    with pytest.raises(DomainError) as again:
        refund_request_approve(request_id=request.pk, actor=agent)
    assert again.value.code == "not_under_review"
    assert Refund.objects.count() == 1


def test_partial_approval_is_bounded_and_explained(delivered, buyer, agent):
    request = submit(delivered, buyer, "missing_items", items=[(line(delivered, "Tiramisu"), 1)])
    for amount, explanation in [(D("34.00"), "Too much for this order"), (D("3.00"), "")]:
        with pytest.raises(DomainError):
            refund_request_partially_approve(
                request_id=request.pk, actor=agent, amount=amount, explanation=explanation
            )
    assert not Refund.objects.exists()
    refund_request_partially_approve(
        request_id=request.pk, actor=agent, amount=D("3.00"), explanation="Half the tiramisu"
    )
    assert Refund.objects.get().amount == D("3.00")


def test_a_denial_needs_an_explanation(delivered, buyer, agent):
    request = submit(delivered, buyer, "wrong_order")
    with pytest.raises(DomainError):
        refund_request_deny(request_id=request.pk, actor=agent, explanation=" ")
    refund_request_deny(request_id=request.pk, actor=agent, explanation="The photos show it right")
    request.refresh_from_db()
    assert request.status == "denied"


def test_asking_the_buyer_pauses_the_clock(now, delivered, buyer, agent):
    request = submit(delivered, buyer, "wrong_order")
    due = request.review_due_at
    refund_request_request_info(request_id=request.pk, actor=agent, question="A photo please?")
    now.shift(dt.timedelta(hours=5))

    refund_request_reply(request_id=request.pk, actor=buyer, body="Here", photos=[photo()])

    request.refresh_from_db()
    assert request.status == "under_review"
    assert dt.timedelta(hours=5) <= request.review_due_at - due < dt.timedelta(hours=5, seconds=5)


def test_four_eyes_above_the_threshold(now, buyer, agent, supervisor, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 5})  # 65.49
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    request = submit(order, buyer, "wrong_order")

    refund_request_approve(request_id=request.pk, actor=agent)

    request.refresh_from_db()
    assert (request.status, request.needs_second_approval) == ("approved", True)
    assert not Refund.objects.exists()
    with pytest.raises(DomainError):
        refund_request_second_approve(request_id=request.pk, actor=agent)
    refund_request_second_approve(request_id=request.pk, actor=supervisor)
    refunds_processed()
    request.refresh_from_db()
    assert (request.status, request.second_approved_by) == ("refunded", supervisor)
    assert Refund.objects.get().amount == D("65.49")


def test_approving_after_the_order_was_fully_refunded_is_refused(delivered, buyer, agent):
    request = submit(delivered, buyer, "wrong_order")
    refund_order(order_id=delivered.pk, amount=D("33.99"), method="original",
                 idempotency_key="elsewhere", actor=None, role="policy", reason="Test")  # fmt: skip

    with pytest.raises(DomainError) as refused:
        refund_request_approve(request_id=request.pk, actor=agent)

    assert refused.value.code == "nothing_to_refund"
    assert Refund.objects.filter(request=request).count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_agents_approving_at_once_make_one_refund(buyer, agent, supervisor, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2})
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    request = submit(order, buyer, "wrong_order")
    agents = iter([agent, supervisor])

    results = run_concurrently(
        lambda: refund_request_approve(request_id=request.pk, actor=next(agents)), 2
    )

    assert sorted(type(r).__name__ for r in results) == ["DomainError", "RefundRequest"]
    assert Refund.objects.filter(request=request).count() == 1
    assert len(processor_refunds()) == 1


def test_sla_flags_due_soon_then_escalates_once(now, delivered, buyer):
    request = submit(delivered, buyer, "wrong_order")

    assert refund_request_review_sla(request_id=request.pk, now=request.submitted_at) == ""
    at_24h = request.submitted_at + dt.timedelta(hours=24)
    assert refund_request_review_sla(request_id=request.pk, now=at_24h) == "due_soon"
    at_48h = request.submitted_at + dt.timedelta(hours=48)
    assert refund_request_review_sla(request_id=request.pk, now=at_48h) == "escalated"
    assert refund_request_review_sla(request_id=request.pk, now=at_48h) == ""
    assert Intervention.objects.get().kind == "review_overdue"


def test_a_credit_offer_is_bounded_by_the_order(delivered, buyer, agent):
    request = submit(delivered, buyer, "temperature", items=[(line(delivered, "Tiramisu"), 1)],
                     description="Cold", photos=[photo()])  # fmt: skip
    with pytest.raises(DomainError) as refused:
        refund_request_offer_credit(
            request_id=request.pk, actor=agent, amount=D("34.00"), explanation="Sorry it was cold"
        )
    assert refused.value.code == "invalid_amount"
    refund_request_offer_credit(
        request_id=request.pk, actor=agent, amount=D("4.00"), explanation="Sorry it was cold"
    )
    grant = Refund.objects.get(request=request).credit_grant
    assert (grant.kind, grant.amount) == ("promo", D("4.00"))


def test_an_overlong_explanation_is_refused(delivered, buyer, agent):
    request = submit(delivered, buyer, "wrong_order")
    with pytest.raises(DomainError) as refused:
        refund_request_deny(request_id=request.pk, actor=agent, explanation="x" * 401)
    assert refused.value.code == "explanation_too_long"
    request.refresh_from_db()
    assert request.status == "under_review"


def test_a_replacement_order_instead_of_a_refund(delivered, buyer, agent, restaurant):
    request = submit(delivered, buyer, "missing_items", items=[(line(delivered, "Tiramisu"), 1)])

    refund_request_offer_replacement(
        request_id=request.pk, actor=agent, explanation="A fresh tiramisu is on its way"
    )

    request.refresh_from_db()
    replacement = request.replacement_order
    assert (request.status, request.resolution) == ("approved", "replacement")
    assert [(i.name, i.quantity) for i in replacement.items.all()] == [("Tiramisu", 1)]
    assert (replacement.total, replacement.amount_charged, replacement.status) == (
        D("0.00"),
        D("0.00"),
        "placed",
    )
    assert not Refund.objects.exists()
    advance(replacement, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    assert not RestaurantLedgerEntry.objects.filter(order=replacement).exists()
