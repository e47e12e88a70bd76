"""Chargebacks (L-8.2): opened by an agent or by the processor's webhook, answered with the
evidence bundle, decided by the bank (won, lost) or accepted; a lost or accepted chargeback
moves its money back through the processor, outside any transaction (D-7)."""

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.display import money_text, when_text
from core.errors import DomainError, InvalidInput
from core.fsm import apply_transition
from core.money import CENT, ZERO
from core.outbox import outbox_enqueue
from core.roles import User, is_supervisor
from core.services import notify
from disputes.lock_objects import chargeback_for_update
from disputes.models import Chargeback
from orders.events import order_event_record
from orders.gateway import GatewayOutcome, get_gateway
from orders.lock_objects import order_for_update
from orders.models import OrderEvent, Payment, is_support
from refunds.selectors import paid_facts, supervisor_list

SETTLE_TASK = "disputes.tasks.settle_chargeback"


def chargeback_open(
    *,
    order_id: int,
    amount,
    bank_reference: str,
    reason_code: str,
    actor: User | None,
    evidence_due_by: dt.datetime | None = None,
    charge_reference: str = "",
    now: dt.datetime | None = None,
) -> tuple[Chargeback, bool]:
    """Record a chargeback on the order's card payment (L-8.2): by a support agent (`actor`),
    or by the processor's webhook (`actor` None, the charge named by `charge_reference`). What
    can still be taken back (`amount_at_stake`) is the disputed amount less what the card
    refunds and other chargebacks already took (L-7.2). The due date is the bank's, or the
    pinned version's `chargeback_evidence_days` after now. Supervisors are told.

    Returns (chargeback, created): the same bank reference on the order again returns the first
    one for the processor, and is a 409 `chargeback_exists` for an agent. Takes the order's row
    lock. Errors: `forbidden` (403) for someone not of support; `not_found` (404); 400:
    `invalid_amount`, `bank_reference_required`, `reason_code_required`,
    `chargeback_exceeds_charge`; 409 `no_card_payment`."""
    if actor is not None and not is_support(actor):
        raise DomainError("forbidden", "Only support enters chargebacks.", kind="forbidden")
    amount = _money(amount)
    bank_reference = _required(bank_reference, "bank_reference", 80)
    reason_code = _required(reason_code, "reason_code", 40)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            return _open(
                order_id,
                amount=amount,
                bank_reference=bank_reference,
                reason_code=reason_code,
                actor=actor,
                evidence_due_by=evidence_due_by,
                charge_reference=charge_reference,
                now=now,
            )
    except IntegrityError as error:  # the same dispute, opened at the same moment
        existing = Chargeback.objects.filter(
            order_id=order_id, bank_reference=bank_reference
        ).first()
        if existing is None:
            raise
        if actor is not None:
            raise _exists(existing) from error
        return existing, False


def _open(
    order_id, *, amount, bank_reference, reason_code, actor, evidence_due_by, charge_reference, now
) -> tuple[Chargeback, bool]:
    order = order_for_update(order_id)
    existing = Chargeback.objects.filter(order=order, bank_reference=bank_reference).first()
    if existing is not None:
        if actor is not None:
            raise _exists(existing)
        return existing, False
    payment = _disputed_payment(order, charge_reference)
    if amount > payment.amount:
        raise InvalidInput(
            "chargeback_exceeds_charge",
            f"The card was charged {money_text(payment.amount)}; a chargeback cannot dispute more.",
            clauses=["L-7.2"],
        )
    at_stake = min(amount, paid_facts(order).card_refundable)
    chargeback = Chargeback.objects.create(
        order=order,
        payment=payment,
        amount=amount,
        amount_at_stake=at_stake,
        bank_reference=bank_reference,
        reason_code=reason_code,
        evidence_due_by=evidence_due_by
        or now + dt.timedelta(days=order.policy_version.chargeback_evidence_days),
        source=Chargeback.Source.PROCESSOR if actor is None else Chargeback.Source.AGENT,
        received_at=now,
        created_by=actor,
    )
    already = amount - at_stake
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.NOTE,
        name="chargeback_received",
        actor=actor,
        role=OrderEvent.Role.SYSTEM if actor is None else OrderEvent.Role.SUPPORT,
        message=(
            f"The buyer's bank opened a chargeback of {money_text(amount)} "
            f"(reference {bank_reference})"
            + (f"; {money_text(already)} of it was already refunded." if already else ".")
        ),
        clauses=("L-8.2",),
        amount=amount,
        at=now,
    )
    for supervisor in supervisor_list():
        notify(
            user=supervisor,
            title=f"Chargeback on order #{order.pk}",
            body=(
                f"{money_text(amount)} disputed by the buyer's bank; evidence due by "
                f"{when_text(chargeback.evidence_due_by)}."
            ),
            url=chargeback.get_absolute_url(),
        )
    return chargeback, True


def _disputed_payment(order, charge_reference: str) -> Payment:
    payments = Payment.objects.filter(order=order, status=Payment.Status.SUCCEEDED)
    if charge_reference:
        payments = payments.filter(gateway_reference=charge_reference)
    payment = payments.order_by("created_at", "pk").first()
    if payment is None:
        raise DomainError(
            "no_card_payment",
            f"Order #{order.pk} has no card payment a bank could take back.",
            clauses=["L-8.2"],
        )
    return payment


def _exists(chargeback: Chargeback) -> DomainError:
    return DomainError(
        "chargeback_exists",
        f"Chargeback #{chargeback.pk} already records bank reference "
        f"{chargeback.bank_reference} on this order.",
        extra={"chargeback": chargeback.pk},
    )


def _money(value) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError) as error:
        raise InvalidInput("invalid_amount", "The amount must be a number.") from error
    if not amount.is_finite() or amount <= ZERO or amount != amount.quantize(CENT):
        raise InvalidInput("invalid_amount", "The amount must be positive, in cents.")
    return amount


def _required(text: str, name: str, limit: int) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidInput(f"{name}_required", f"Give the {name.replace('_', ' ')}.")
    if len(text) > limit:
        raise InvalidInput(f"{name}_too_long", f"Keep the {name.replace('_', ' ')} short.")
    return text


@transaction.atomic
def chargeback_submit_evidence(*, chargeback_id: int, actor: User, note: str = "") -> Chargeback:
    """Support sends the evidence bundle to the bank (L-8.2 "we will provide evidence to your
    bank"), before `evidence_due_by`. Takes the order's and the chargeback's row locks.

    Errors: `forbidden` (403) for someone not of support; `not_found` (404);
    `chargeback_not_received` (409) once it moved on; `evidence_overdue` (409) after the due
    date."""
    if not is_support(actor):
        raise DomainError("forbidden", "Only support answers chargebacks.", kind="forbidden")
    chargeback, now = _locked(chargeback_id)
    if chargeback.status != Chargeback.Status.RECEIVED:
        raise DomainError(
            "chargeback_not_received",
            f"Chargeback #{chargeback.pk} is {chargeback.get_status_display().lower()}.",
        )
    if now > chargeback.evidence_due_by:
        raise DomainError(
            "evidence_overdue",
            f"The evidence was due by {when_text(chargeback.evidence_due_by)}.",
            clauses=["L-8.2"],
        )
    apply_transition(
        chargeback,
        chargeback.submit_evidence,
        at=now,
        evidence_submitted_by=actor,
        note=_with_note(chargeback, note),
    )
    _timeline(chargeback, actor, now, "chargeback_evidence", "Evidence sent to the bank.")
    return chargeback


@transaction.atomic
def chargeback_win(*, chargeback_id: int, actor: User, note: str = "") -> Chargeback:
    """The bank decided for the platform: nothing moves (L-8.2). Supervisors only."""
    return _decide(chargeback_id, actor, note, transition="win", message="The bank ruled for us.")


@transaction.atomic
def chargeback_lose(*, chargeback_id: int, actor: User, note: str = "") -> Chargeback:
    """The bank decided for the buyer: what is at stake goes back to the card through the
    processor, after commit (L-8.2). Supervisors only."""
    return _decide(
        chargeback_id, actor, note, transition="lose", message="The bank ruled for the buyer."
    )


@transaction.atomic
def chargeback_accept(*, chargeback_id: int, actor: User, note: str = "") -> Chargeback:
    """The platform does not contest: what is at stake goes back to the card through the
    processor, after commit (L-8.2). Supervisors only."""
    return _decide(
        chargeback_id, actor, note, transition="accept", message="Not contested: accepted."
    )


def _decide(chargeback_id, actor, note, *, transition: str, message: str) -> Chargeback:
    """Record the outcome under the order's and the chargeback's row locks; a lost or accepted
    one queues its settlement (outbox, `disputes.tasks.settle_chargeback`).

    Errors: `supervisor_required` (403); `not_found` (404); `chargeback_decided` (409) once
    decided, or `chargeback_contested` (409) to accept one whose evidence was sent."""
    if not is_supervisor(actor):
        raise DomainError(
            "supervisor_required", "Only a supervisor decides chargebacks.", kind="forbidden"
        )
    chargeback, now = _locked(chargeback_id)
    if chargeback.status not in Chargeback.OPEN_STATUSES:
        raise DomainError(
            "chargeback_decided",
            f"Chargeback #{chargeback.pk} is already {chargeback.get_status_display().lower()}.",
        )
    if transition == "accept" and chargeback.status != Chargeback.Status.RECEIVED:
        raise DomainError(
            "chargeback_contested", "Evidence was sent to the bank: wait for its decision."
        )
    apply_transition(
        chargeback,
        getattr(chargeback, transition),
        at=now,
        decided_by=actor,
        note=_with_note(chargeback, note),
    )
    moves = chargeback.status in Chargeback.MONEY_MOVES_STATUSES
    if moves and chargeback.amount_at_stake > ZERO:
        chargeback.settlement_key = f"chargeback:{chargeback.pk}"
        chargeback.save(update_fields=["settlement_key"])
        outbox_enqueue(task=SETTLE_TASK, kwargs={"chargeback_id": chargeback.pk}, now=now)
        message += (
            f" {money_text(chargeback.amount_at_stake)} goes back to the buyer's card through "
            "their bank."
        )
    elif moves:
        chargeback.settled_at = now
        chargeback.save(update_fields=["settled_at"])
        message += " The refunds already made covered it: nothing more moves."
    _timeline(chargeback, actor, now, f"chargeback_{chargeback.status}", message)
    return chargeback


def _locked(chargeback_id: int) -> tuple[Chargeback, dt.datetime]:
    order_id = (
        Chargeback.objects.filter(pk=chargeback_id).values_list("order_id", flat=True).first()
    )
    if order_id is None:
        raise DomainError("not_found", f"There is no chargeback {chargeback_id}.", kind="not_found")
    order_for_update(order_id)
    return chargeback_for_update(chargeback_id), timezone.now()


def _with_note(chargeback: Chargeback, note: str) -> str:
    note = (note or "").strip()
    if len(note) > 4000:
        raise InvalidInput("note_too_long", "Keep the note under 4000 characters.")
    return "\n".join(part for part in (chargeback.note, note) if part)


def _timeline(chargeback, actor, now, name: str, message: str) -> None:
    order_event_record(
        order=chargeback.order,
        kind=OrderEvent.Kind.NOTE,
        name=name,
        actor=actor,
        role=OrderEvent.Role.SUPPORT,
        message=f"Chargeback #{chargeback.pk}: {message}",
        clauses=("L-8.2",),
        at=now,
    )


def chargeback_settle(*, chargeback_id: int) -> str:
    """Move a lost or accepted chargeback's money back through the processor, once (its
    `settlement_key`), with no transaction open during the call; record the answer in a short
    transaction under the order's and the chargeback's locks. Safe to run twice at once (the
    processor dedups by key). Returns `settled`, `skipped` (nothing due) or `failed` (left for
    `disputes.tasks.settle_chargebacks` to retry)."""
    chargeback = Chargeback.objects.select_related("payment").filter(pk=chargeback_id).first()
    if chargeback is None or chargeback.settled_at or not chargeback.settlement_key:
        return "skipped"
    result = get_gateway().chargeback(
        charge_reference=chargeback.payment.gateway_reference,
        amount=chargeback.amount_at_stake,
        currency=settings.LOJIX_CURRENCY,
        idempotency_key=chargeback.settlement_key,
    )
    with transaction.atomic():
        order_for_update(chargeback.order_id)
        chargeback = chargeback_for_update(chargeback_id)
        if chargeback.settled_at:
            return "skipped"
        if result.outcome != GatewayOutcome.SUCCEEDED:
            chargeback.settlement_error = (result.message or result.outcome)[:240]
            chargeback.save(update_fields=["settlement_error"])
            return "failed"
        chargeback.settlement_reference = result.reference
        chargeback.settled_at = timezone.now()
        chargeback.settlement_error = ""
        chargeback.save(update_fields=["settlement_reference", "settled_at", "settlement_error"])
        order_event_record(
            order=chargeback.order,
            kind=OrderEvent.Kind.REFUND,
            name="chargeback_settled",
            actor=None,
            role=OrderEvent.Role.SYSTEM,
            message=(
                f"{money_text(chargeback.amount_at_stake)} went back to the card "
                f"through the buyer's bank (chargeback #{chargeback.pk})."
            ),
            clauses=("L-8.2",),
            amount=chargeback.amount_at_stake,
            at=chargeback.settled_at,
        )
    return "settled"
