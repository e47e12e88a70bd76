"""The restaurant's side of L-9 on PostgreSQL: each refund deduction is told to the partners
with its reason and clauses; a partner disputes it once (K-DR); a supervisor decides, and an
upheld dispute reverses the deduction with an entry of its own, exactly once."""

from decimal import Decimal as D

import pytest
from django.utils import timezone

from core.errors import DomainError
from core.models import Notification
from disputes.models import Intervention
from refunds.models import DeductionDispute, RestaurantLedgerEntry
from refunds.services.decisions import refund_request_approve
from refunds.services.deductions import deduction_dispute_decide, deduction_dispute_open
from refunds.services.requests import refund_request_submit
from tests.concurrency import run_concurrently
from tests.conftest import advance, place_order, refunds_processed
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

Kind = RestaurantLedgerEntry.Kind


def deducted(buyer, restaurant, menu, agent) -> RestaurantLedgerEntry:
    """2 Margherita + 1 Tiramisu delivered (sale 31.00); the tiramisu was missing, an agent
    approved its paid share (6.00) and the refund went through: 6.00 deducted (L-9)."""
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 1})
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    tiramisu = order.items.get(name="Tiramisu").pk
    request = refund_request_submit(
        order_id=order.pk, actor=buyer, reason="missing_items", items=[(tiramisu, 1)]
    )
    refund_request_approve(request_id=request.pk, actor=agent)
    refunds_processed()
    return RestaurantLedgerEntry.objects.get(kind=Kind.REFUND_DEDUCTION, order=order)


@pytest.fixture
def deduction(now, buyer, restaurant, menu, agent):
    return deducted(buyer, restaurant, menu, agent)


def dispute(entry, partner, note="The tiramisu was in the bag; the courier photo shows it."):
    return deduction_dispute_open(entry_id=entry.pk, actor=partner, note=note, now=timezone.now())


def decide(dispute_id, actor, outcome="upheld", explanation="The courier lost it, not you."):
    return deduction_dispute_decide(
        dispute_id=dispute_id,
        actor=actor,
        outcome=outcome,
        explanation=explanation,
        now=timezone.now(),
    )


def test_each_deduction_is_told_with_its_reason_and_clauses(deduction, partner):
    assert deduction.amount == D("-6.00")
    notice = Notification.objects.get(user=partner, title__contains="deducted")
    assert notice.title == f"Order #{deduction.order_id}: 6.00 USD deducted from your payout"
    assert (
        f"refunded for: Refund request #{deduction.refund.request_id}: Items are missing"
        in notice.body
    )
    assert "L-3.2, L-9" in notice.body
    assert "dispute the deduction once" in notice.body
    assert notice.url == f"/seller/ledger/{deduction.pk}/dispute/"


def test_a_partner_disputes_once_and_support_gets_the_case(deduction, partner):
    opened = dispute(deduction, partner)

    assert (opened.status, opened.restaurant_id, opened.opened_by) == (
        "open",
        deduction.restaurant_id,
        partner,
    )
    case = Intervention.objects.get(kind="deduction_dispute")
    assert (case.order_id, case.status) == (deduction.order_id, "open")
    with pytest.raises(DomainError) as again:
        dispute(deduction, partner, note="Again")
    assert (again.value.code, again.value.clauses) == ("already_disputed", ("L-9", "K-DR"))
    assert DeductionDispute.objects.count() == 1
    assert Intervention.objects.filter(kind="deduction_dispute").count() == 1


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("another restaurant's partner", "not_found"),
        ("a sale, not a deduction", "not_a_deduction"),
        ("an empty note", "note_required"),
        ("an unknown entry", "not_found"),
    ],
)
def test_refused_disputes_change_nothing(deduction, partner, other_partner, case, code):
    entry, actor, note = deduction, partner, "Not our error"
    if case == "another restaurant's partner":
        actor = other_partner
    elif case == "a sale, not a deduction":
        entry = RestaurantLedgerEntry.objects.get(kind=Kind.SALE)
    elif case == "an empty note":
        note = "   "
    elif case == "an unknown entry":
        entry = RestaurantLedgerEntry(pk=999_999)
    with pytest.raises(DomainError) as refused:
        dispute(entry, actor, note=note)
    assert refused.value.code == code
    assert not DeductionDispute.objects.exists()
    assert not Intervention.objects.filter(kind="deduction_dispute").exists()


def test_an_upheld_dispute_reverses_the_deduction_once(deduction, partner, supervisor):
    opened = dispute(deduction, partner)

    decided = decide(opened.pk, supervisor)

    assert (decided.status, decided.decided_by) == ("upheld", supervisor)
    reversal = RestaurantLedgerEntry.objects.get(kind=Kind.DEDUCTION_REVERSAL)
    assert (reversal.amount, reversal.reverses_id, reversal.order_id) == (
        D("6.00"),
        deduction.pk,
        deduction.order_id,
    )
    deduction.refresh_from_db()
    assert deduction.amount == D("-6.00")  # never edited: the reversal is an entry of its own
    case = Intervention.objects.get(kind="deduction_dispute")
    assert (case.status, case.resolved_by, case.action_taken) == (
        "resolved",
        supervisor,
        "Upheld: deduction reversed",
    )
    told = Notification.objects.filter(user=partner, title__contains="dispute was decided").get()
    assert "given back" in told.body
    assert "final" in told.body
    with pytest.raises(DomainError) as again:
        decide(opened.pk, supervisor, outcome="rejected")
    assert again.value.code == "already_decided"
    assert RestaurantLedgerEntry.objects.filter(kind=Kind.DEDUCTION_REVERSAL).count() == 1


def test_a_rejected_dispute_keeps_the_deduction(deduction, partner, supervisor):
    opened = dispute(deduction, partner)

    decided = decide(opened.pk, supervisor, outcome="rejected", explanation="Photo shows none.")

    assert decided.status == "rejected"
    assert not RestaurantLedgerEntry.objects.filter(kind=Kind.DEDUCTION_REVERSAL).exists()
    assert Intervention.objects.get(kind="deduction_dispute").status == "resolved"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("an agent", "supervisor_required"),
        ("no explanation", "explanation_required"),
        ("an unknown outcome", "invalid_outcome"),
    ],
)
def test_refused_decisions_change_nothing(deduction, partner, agent, supervisor, case, code):
    opened = dispute(deduction, partner)
    actor, outcome, explanation = supervisor, "upheld", "Not theirs"
    if case == "an agent":
        actor = agent
    elif case == "no explanation":
        explanation = ""
    elif case == "an unknown outcome":
        outcome = "maybe"
    with pytest.raises(DomainError) as refused:
        decide(opened.pk, actor, outcome=outcome, explanation=explanation)
    assert refused.value.code == code
    opened.refresh_from_db()
    assert (opened.status, opened.decided_by) == ("open", None)
    assert not RestaurantLedgerEntry.objects.filter(kind=Kind.DEDUCTION_REVERSAL).exists()


def test_a_later_deduction_on_the_same_order_counts_the_reversal(
    deduction, buyer, partner, supervisor
):
    """What was given back may be deducted again for another refund (never more than the sale)."""
    decide(dispute(deduction, partner).pk, supervisor)
    order = deduction.order
    booked = sum(
        RestaurantLedgerEntry.objects.filter(order=order).values_list("amount", flat=True), D(0)
    )
    assert booked == order.subtotal - order.discount_amount  # 31.00: whole again


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_disputes_at_once_open_one(buyer, restaurant, menu, agent, partner):
    entry = deducted(buyer, restaurant, menu, agent)
    colleague = UserFactory(username="gino")
    restaurant.members.add(colleague)
    partners = iter([partner, colleague])

    results = run_concurrently(lambda: dispute(entry, next(partners)), 2)

    assert sorted(type(r).__name__ for r in results) == ["DeductionDispute", "DomainError"]
    assert DeductionDispute.objects.count() == 1
    assert Intervention.objects.filter(kind="deduction_dispute").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_supervisors_upholding_at_once_reverse_once(
    buyer, restaurant, menu, agent, partner, supervisor
):
    entry = deducted(buyer, restaurant, menu, agent)
    opened = dispute(entry, partner)
    second = UserFactory(username="boss2", is_staff=True, groups=["supervisor"])
    supervisors = iter([supervisor, second])

    results = run_concurrently(lambda: decide(opened.pk, next(supervisors)), 2)

    assert sorted(type(r).__name__ for r in results) == ["DeductionDispute", "DomainError"]
    refused = next(r for r in results if isinstance(r, DomainError))
    assert refused.code == "already_decided"
    reversals = RestaurantLedgerEntry.objects.filter(kind=Kind.DEDUCTION_REVERSAL)
    assert [(r.amount, r.reverses_id) for r in reversals] == [(D("6.00"), entry.pk)]
