"""The restaurant's side of L-9: a partner disputes a refund deduction once (K-DR), and a
supervisor decides; an upheld dispute reverses the deduction by a ledger entry of its own, once.

Who decides: supervisors. A deduction follows a refund that the policy or an agent already
decided; the restaurant's dispute asks for that decision to be looked at again, which is a
supervisor's job as for a buyer's escalation (L-8.1, D-4), and an upheld dispute moves money
from the platform to the restaurant. Agents see the disputes (read-only) but do not decide them.
"""

import datetime as dt

from django.db import IntegrityError, transaction
from django.urls import reverse

from core.display import money_text
from core.errors import DomainError, InvalidInput
from core.roles import User, is_supervisor
from core.services import notify_restaurant
from disputes.models import Intervention
from disputes.services.interventions import intervention_open, interventions_resolve_for_orders
from orders.lock_objects import order_for_update
from orders.models import is_restaurant_member
from refunds import policy
from refunds.models import DeductionDispute, RestaurantLedgerEntry
from refunds.services.common import require_explanation, require_text
from refunds.services.ledger import restaurant_ledger_record

Outcome = DeductionDispute.Status


@transaction.atomic
def deduction_dispute_open(
    *, entry_id: int, actor: User, note: str, now: dt.datetime
) -> DeductionDispute:
    """A partner of the restaurant contests one refund deduction with a note (L-9, K-DR), once;
    support is handed the case (a `deduction_dispute` intervention, K-OV). Takes the order's
    row lock, then the entry's.

    Errors: `not_found` (404) for an entry that is not one of the partner's restaurants';
    `note_required` / `note_too_long` (400); `not_a_deduction`, `already_disputed` (409)."""
    entry = _entry_of_partner(entry_id, actor)
    require_text(note, "note")
    order_for_update(entry.order_id)
    entry = (
        RestaurantLedgerEntry.objects.select_for_update(of=("self",))
        .select_related("order")
        .get(pk=entry.pk)
    )
    _refuse(
        policy.deduction_dispute_refusal(
            kind=entry.kind, disputed=DeductionDispute.objects.filter(deduction=entry).exists()
        )
    )
    try:
        with transaction.atomic():
            dispute = DeductionDispute.objects.create(
                deduction=entry,
                restaurant_id=entry.restaurant_id,
                note=note.strip(),
                opened_by=actor,
                opened_at=now,
            )
    except IntegrityError as error:  # the one-to-one: disputed meanwhile
        raise DomainError(
            "already_disputed", "This deduction was already disputed.", clauses=["K-DR"]
        ) from error
    intervention_open(
        order=entry.order,
        kind=Intervention.Kind.DEDUCTION_DISPUTE,
        summary=(f"{entry.restaurant} disputes a deduction of {money_text(-entry.amount)}: {note}")[
            :240
        ],
        now=now,
    )
    return dispute


@transaction.atomic
def deduction_dispute_decide(
    *, dispute_id: int, actor: User, outcome: str, explanation: str, now: dt.datetime
) -> DeductionDispute:
    """A supervisor upholds a dispute (a `deduction_reversal` entry gives the deduction back,
    exactly once) or rejects it (the deduction stands), with an explanation the restaurant is
    told (L-9, K-DR); the intervention closes. Takes the order's row lock, then the dispute's.

    Errors: `not_found` (404); `supervisor_required` (409) for anyone else;
    `explanation_required` / `explanation_too_long`, `invalid_outcome` (400);
    `already_decided` (409)."""
    if outcome not in (Outcome.UPHELD, Outcome.REJECTED):
        raise InvalidInput("invalid_outcome", "The outcome is `upheld` or `rejected`.")
    if not is_supervisor(actor):
        raise DomainError(
            "supervisor_required", "Only a supervisor decides a deduction dispute.", clauses=["L-9"]
        )
    require_explanation(explanation)
    dispute = _dispute_for_update(dispute_id)
    _refuse(policy.deduction_dispute_decision_refusal(is_open=dispute.is_open))
    dispute.status, dispute.decided_by, dispute.decided_at = outcome, actor, now
    dispute.explanation = explanation.strip()
    dispute.save(update_fields=["status", "decided_by", "decided_at", "explanation"])
    deduction = dispute.deduction
    if outcome == Outcome.UPHELD:
        restaurant_ledger_record(
            restaurant_id=deduction.restaurant_id,
            kind=RestaurantLedgerEntry.Kind.DEDUCTION_REVERSAL,
            amount=-deduction.amount,
            order=deduction.order,
            reverses=deduction,
            description=f"Deduction reversed: order #{deduction.order_id} (dispute upheld)",
            created_at=now,
        )
    others_open = DeductionDispute.objects.filter(
        deduction__order_id=deduction.order_id, status=Outcome.OPEN
    ).exists()
    if not others_open:  # one case per order covers every deduction of it disputed (K-OV)
        interventions_resolve_for_orders(
            order_ids=[deduction.order_id],
            kind=Intervention.Kind.DEDUCTION_DISPUTE,
            actor=actor,
            action=dispute.get_status_display(),
            now=now,
        )
    _decision_notice(dispute)
    return dispute


def _entry_of_partner(entry_id: int, actor: User) -> RestaurantLedgerEntry:
    entry = RestaurantLedgerEntry.objects.select_related("restaurant").filter(pk=entry_id).first()
    if entry is None or not is_restaurant_member(entry.restaurant_id, actor):
        raise DomainError("not_found", f"There is no ledger entry {entry_id}.", kind="not_found")
    return entry


def _dispute_for_update(dispute_id: int) -> DeductionDispute:
    """Lock the order first (D-3), then the dispute, and read it again under the locks."""
    found = DeductionDispute.objects.filter(pk=dispute_id).values("deduction__order_id").first()
    if found is None:
        raise DomainError("not_found", f"There is no dispute {dispute_id}.", kind="not_found")
    order_for_update(found["deduction__order_id"])
    return (
        DeductionDispute.objects.select_for_update(of=("self",))
        .select_related("deduction__order", "restaurant")
        .get(pk=dispute_id)
    )


def _refuse(refusal: tuple[str, str] | None) -> None:
    if refusal is not None:
        code, detail = refusal
        raise DomainError(code, detail, clauses=policy.DISPUTE_CLAUSES)


def _decision_notice(dispute: DeductionDispute) -> None:
    amount = money_text(-dispute.deduction.amount)
    if dispute.status == Outcome.UPHELD:
        verdict = f"we agree: the {amount} deducted is given back to your next payout."
    else:
        verdict = f"the deduction of {amount} stands."
    notify_restaurant(
        dispute.restaurant,
        title=f"Order #{dispute.deduction.order_id}: your dispute was decided",
        body=f"About the deduction you disputed, {verdict}\n{dispute.explanation}\n"
        f"This decision is final (clauses {', '.join(policy.DISPUTE_CLAUSES)}).",
        url=reverse("seller:deduction-dispute", args=[dispute.deduction_id]),
    )
