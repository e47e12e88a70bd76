"""Escalations (L-8.1, K-DR): a buyer asks a supervisor to review a decision again, once; the
supervisor upholds it or overturns it with a new total, whose difference moves once through
the refund service (key `escalation:<id>`)."""

import datetime as dt
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from core.business_days import add_business_days
from core.display import day_text, money_text
from core.errors import DomainError, InvalidInput
from core.roles import User, is_supervisor
from core.services import notify
from disputes import policy
from disputes.guards import buyer_must_not_be_suspended
from disputes.lock_objects import escalation_for_update, escalation_for_update_skip_locked
from disputes.models import Escalation, EscalationEvidence
from disputes.selectors import escalation_facts_for_order, escalation_facts_for_request
from orders.events import order_event_record
from orders.lock_objects import order_for_update
from orders.models import OrderEvent
from orders.policy import explanation_error
from refunds.events import refund_request_event_record
from refunds.lock_objects import refund_request_for_update
from refunds.models import RefundRequest
from refunds.photos import Photo
from refunds.selectors import paid_facts, supervisor_list
from refunds.services.completion import refund_message
from refunds.services.evidence import held_photos_attach, held_photos_owned, validated_photos
from refunds.services.execution import refund_order

MAX_STATEMENT = 4000
OUTCOMES = (Escalation.Status.UPHELD, Escalation.Status.OVERTURNED)


def escalation_refund_key(escalation: Escalation) -> str:
    """The idempotency key of an overturn's money: one per escalation, so it moves once."""
    return f"escalation:{escalation.pk}"


@transaction.atomic
def escalation_open(
    *, request_id: int, actor: User, statement: str, photos=(), held_photo_ids=()
) -> Escalation:
    """The buyer asks a supervisor to review a denied or partially approved refund request
    (L-8.1), once, with a statement and photos (uploads, and `held_photo_ids`: the buyer's
    photos held for the order after a refused try); due in the version's `escalation_max_days`
    business days. Takes the request's row lock (the one-to-one constraint settles two at once).

    Errors: `not_found` (404, also another buyer's request); `account_suspended` (403,
    L-8.2); `already_escalated`,
    `not_escalatable`, `decision_pending` (409, L-8.1); `statement_required`,
    `statement_too_long` and the photos' codes (400). A refusal stores nothing."""
    request = refund_request_for_update(request_id, buyer=actor)
    buyer_must_not_be_suspended(actor)
    _require_allowed(escalation_facts_for_request(request))
    previous = (
        request.decided_amount or Decimal("0.00")
        if request.resolution == RefundRequest.Resolution.REFUND
        else Decimal("0.00")
    )
    escalation = _create(
        order=request.order,
        subject=policy.REFUND_DECISION,
        refund_request=request,
        actor=actor,
        statement=statement,
        photos=photos,
        held_photo_ids=held_photo_ids,
        previous_amount=previous,
    )
    refund_request_event_record(
        request,
        name="escalation_opened",
        from_status=request.status,
        actor=actor,
        role="buyer",
        at=escalation.opened_at,
        clauses=("L-8.1",),
        message=f"Escalated to a supervisor, who decides by {day_text(escalation.due_at)}.",
    )
    return escalation


@transaction.atomic
def escalation_open_for_order(
    *, order_id: int, actor: User, subject: str, statement: str, photos=(), held_photo_ids=()
) -> Escalation:
    """The buyer contests the restaurant's denial of their cancellation request, or the fee it
    kept on approving one (K-DR, L-8.1): an escalation on the order, once per subject. Takes the
    order's row lock. Photos as for `escalation_open`.

    Errors: `not_found` (404, also another buyer's order); `account_suspended` (403, L-8.2);
    `already_escalated`,
    `not_escalatable` (409); `invalid_subject`, `statement_required`, `statement_too_long`
    and the photos' codes (400)."""
    if subject not in (policy.CANCELLATION_DENIED, policy.CANCELLATION_FEE):
        raise InvalidInput("invalid_subject", f"Unknown subject {subject!r}.")
    order = order_for_update(order_id, buyer=actor)
    buyer_must_not_be_suspended(actor)
    _require_allowed(escalation_facts_for_order(order, subject))
    previous = paid_facts(order).refunded_total if subject == policy.CANCELLATION_FEE else None
    return _create(
        order=order,
        subject=subject,
        refund_request=None,
        actor=actor,
        statement=statement,
        photos=photos,
        held_photo_ids=held_photo_ids,
        previous_amount=previous or Decimal("0.00"),
    )


def _require_allowed(facts: policy.EscalationFacts) -> None:
    answer = policy.escalation_eligibility(facts)
    if not answer.allowed:
        raise DomainError(answer.code, answer.detail, clauses=answer.clauses)


def _require_statement(statement: str) -> str:
    statement = statement.strip()
    if not statement:
        raise InvalidInput(
            "statement_required", "Tell the supervisor why you disagree.", clauses=["L-8.1"]
        )
    if len(statement) > MAX_STATEMENT:
        raise InvalidInput(
            "statement_too_long", f"Keep the statement under {MAX_STATEMENT} characters."
        )
    return statement


def _create(
    *, order, subject, refund_request, actor, statement, photos, held_photo_ids, previous_amount
) -> Escalation:
    statement = _require_statement(statement)
    held = held_photos_owned(order=order, actor=actor, ids=held_photo_ids)
    prepared = validated_photos(list(photos), already=len(held))
    now = timezone.now()
    version = order.policy_version
    deadlines = policy.escalation_deadlines(
        opened_at=timezone.localtime(now),
        min_days=version.escalation_min_days,
        max_days=version.escalation_max_days,
        add_business_days=lambda day, n: add_business_days(
            day, n, country=settings.LOJIX_HOLIDAY_COUNTRY
        ),
    )
    try:
        with transaction.atomic():
            escalation = Escalation.objects.create(
                subject=subject,
                order=order,
                refund_request=refund_request,
                buyer=actor,
                statement=statement,
                opened_at=now,
                due_soon_at=deadlines.due_soon_at,
                due_at=deadlines.due_at,
                previous_amount=previous_amount,
            )
    except IntegrityError as error:
        raise DomainError(
            "already_escalated",
            "This decision was already escalated; the supervisor's decision is final.",
            clauses=["L-8.1"],
        ) from error
    held_photos_attach(
        held,
        order=escalation.order,
        actor=actor,
        evidence=EscalationEvidence,
        escalation=escalation,
    )
    _store_photos(escalation, prepared, actor=actor, now=now)
    _opened_told(escalation, now=now)
    return escalation


def _store_photos(escalation: Escalation, photos: list[Photo], *, actor, now) -> None:
    for photo in photos:
        stem = uuid.uuid4().hex
        EscalationEvidence.objects.create(
            escalation=escalation,
            file=ContentFile(photo.content, name=f"{stem}.{photo.extension}"),
            thumbnail=ContentFile(photo.thumbnail, name=f"{stem}-thumb.{photo.extension}"),
            content_type=photo.content_type,
            size=photo.size,
            width=photo.width,
            height=photo.height,
            uploaded_by=actor,
            created_at=now,
        )


def _opened_told(escalation: Escalation, *, now) -> None:
    what = _subject_text(escalation)
    order_event_record(
        order=escalation.order,
        kind=OrderEvent.Kind.NOTE,
        name="escalation_opened",
        actor=escalation.buyer,
        role=OrderEvent.Role.BUYER,
        message=f"{what} escalated to a supervisor (decision by {day_text(escalation.due_at)}).",
        clauses=_clauses(escalation),
        at=now,
    )
    notify(
        user=escalation.buyer,
        title=f"Escalation #{escalation.pk}: a supervisor decides by {day_text(escalation.due_at)}",
        body=f"We received your request to review the {what.lower()}. A supervisor decides by "
        f"{day_text(escalation.due_at)} (L-8.1); the decision is final and sent to you by email.",
        url=escalation.get_absolute_url(),
    )
    for supervisor in supervisor_list():
        notify(
            user=supervisor,
            title=f"Escalation #{escalation.pk} to decide by {day_text(escalation.due_at)}",
            body=f"{what} on order #{escalation.order_id}: {escalation.statement[:200]}",
            url=reverse("admin:disputes_escalation_change", args=[escalation.pk]),
            email=False,
        )


def _subject_text(escalation: Escalation) -> str:
    if escalation.subject == policy.REFUND_DECISION:
        return f"The decision on refund request #{escalation.refund_request_id}"
    if escalation.subject == policy.CANCELLATION_DENIED:
        return "The restaurant's denial of your cancellation request"
    return "The cancellation fee the restaurant kept"


def _clauses(escalation: Escalation) -> tuple[str, ...]:
    return ("L-8.1",) if escalation.subject == policy.REFUND_DECISION else ("K-DR", "L-8.1")


def _require_supervisor(actor: User) -> None:
    if not is_supervisor(actor):
        raise DomainError(
            "supervisor_required", "Only a supervisor decides an escalation.", clauses=["L-8.1"]
        )


def _locked(escalation_id: int) -> Escalation:
    """The escalation with its order and request locked first (order, request, escalation)."""
    found = (
        Escalation.objects.filter(pk=escalation_id)
        .values_list("order_id", "refund_request_id")
        .first()
    )
    if found is None:
        raise DomainError("not_found", f"There is no escalation {escalation_id}.", kind="not_found")
    order_for_update(found[0])
    if found[1] is not None:
        refund_request_for_update(found[1])
    return escalation_for_update(escalation_id)


def _require_undecided(escalation: Escalation) -> None:
    if escalation.is_final:
        raise DomainError(
            "escalation_decided",
            f"Escalation #{escalation.pk} was already {escalation.status}; the decision is final.",
            clauses=["L-8.1"],
        )


@transaction.atomic
def escalation_take(*, escalation_id: int, actor: User) -> Escalation:
    """A supervisor takes an open escalation for review. Takes the escalation's locks.

    Errors: `not_found` (404); `supervisor_required`, `escalation_decided`, `already_taken`
    (409)."""
    _require_supervisor(actor)
    escalation = _locked(escalation_id)
    _require_undecided(escalation)
    if escalation.status != Escalation.Status.OPEN:
        raise DomainError("already_taken", f"Escalation #{escalation.pk} is already in review.")
    escalation.take(at=timezone.now())
    escalation.reviewer = actor
    escalation.save(update_fields=["status", "reviewer"])
    return escalation


@transaction.atomic
def escalation_decide(
    *,
    escalation_id: int,
    actor: User,
    outcome: str,
    explanation: str,
    amount: Decimal | None = None,
) -> Escalation:
    """A supervisor decides, finally (L-8.1, K-DR): `upheld` keeps the decision; `overturned`
    sets the new total refund `amount` (default: everything still refundable) and the
    difference with what the contested decision gave moves once through the refund service,
    by origin (key `escalation:<id>`, D-7). The buyer is told by email. Takes the order's, the
    request's and the escalation's row locks in that order, so two supervisors at once decide
    once and the second gets `escalation_decided`.

    Errors: `not_found` (404); `supervisor_required`, `escalation_decided` (409);
    `invalid_outcome`, `explanation_required`, `explanation_too_long`, `invalid_amount` (400);
    the refund's own `refund_exceeds_paid` (409)."""
    if outcome not in OUTCOMES:
        raise InvalidInput("invalid_outcome", "The outcome is `upheld` or `overturned`.")
    _require_supervisor(actor)
    escalation = _locked(escalation_id)
    _require_undecided(escalation)
    code, detail = explanation_error(explanation)
    if code:
        raise InvalidInput(code, detail)
    now = timezone.now()
    if outcome == Escalation.Status.UPHELD:
        _decide(escalation, escalation.uphold, actor=actor, explanation=explanation, now=now)
        _tell_decision(escalation, money="", now=now)
        return escalation
    refundable = paid_facts(escalation.order).refundable
    if amount is None:
        amount = policy.overturn_default_amount(
            previous_amount=escalation.previous_amount, refundable=refundable
        )
    error = policy.overturn_amount_error(
        amount=amount,
        previous_amount=escalation.previous_amount,
        refundable=refundable,
        currency=settings.LOJIX_CURRENCY,
    )
    if error:
        raise InvalidInput("invalid_amount", error, clauses=["L-7.2"])
    _decide(
        escalation,
        escalation.overturn,
        actor=actor,
        explanation=explanation,
        now=now,
        amount=amount,
    )
    refunds = refund_order(
        order_id=escalation.order_id,
        amount=amount - escalation.previous_amount,
        method=_method(escalation),
        idempotency_key=escalation_refund_key(escalation),
        actor=actor,
        role=OrderEvent.Role.SUPPORT,
        reason=f"Escalation #{escalation.pk}: decision overturned",
        clauses=_clauses(escalation),
        request=escalation.refund_request,
    )
    _tell_decision(escalation, money=" ".join(refund_message(r) for r in refunds), now=now)
    return escalation


def _method(escalation: Escalation) -> str:
    request = escalation.refund_request
    if request is None:
        return RefundRequest.Method.ORIGINAL
    return request.decided_method or request.preferred_method


def _decide(escalation: Escalation, transition, *, actor, explanation, now, amount=None) -> None:
    transition(at=now)
    escalation.decided_by = actor
    escalation.explanation = explanation.strip()
    escalation.amount = amount
    escalation.save(update_fields=["status", "decided_at", "decided_by", "explanation", "amount"])


def _tell_decision(escalation: Escalation, *, money: str, now) -> None:
    """The final decision on the request's and the order's timelines, and to the buyer by email
    (L-8.1 "Receive final decision via email")."""
    verdict = (
        "upheld: the decision stands"
        if escalation.status == Escalation.Status.UPHELD
        else f"overturned: the new total refund is {money_text(escalation.amount)}"
    )
    message = (
        f"Escalation #{escalation.pk} {verdict}. Final decision. {escalation.explanation} {money}"
    ).strip()
    if escalation.refund_request is not None:
        refund_request_event_record(
            escalation.refund_request,
            name=f"escalation_{escalation.status}",
            from_status=escalation.refund_request.status,
            actor=escalation.decided_by,
            role="support",
            at=now,
            clauses=_clauses(escalation),
            message=message[:500],
        )
    order_event_record(
        order=escalation.order,
        kind=OrderEvent.Kind.NOTE,
        name=f"escalation_{escalation.status}",
        actor=escalation.decided_by,
        role=OrderEvent.Role.SUPPORT,
        message=message[:500],
        clauses=_clauses(escalation),
        at=now,
    )
    notify(
        user=escalation.buyer,
        title=f"Escalation #{escalation.pk}: final decision ({escalation.status})",
        body=f"A supervisor reviewed {_subject_text(escalation).lower()}: {verdict}.\n"
        f"{escalation.explanation}\n{money}\nThis decision is final (L-8.1).".replace("\n\n", "\n"),
        url=escalation.get_absolute_url(),
    )


@transaction.atomic
def escalation_check_due(*, escalation_id: int, now: dt.datetime) -> str:
    """L-8.1 / K-OV: flag an undecided escalation due soon (`escalation_min_days` business days
    in) and tell every supervisor once it is overdue (`escalation_max_days`), once each. Locks
    the escalation with SKIP LOCKED (one held elsewhere is left to the next run) and re-checks
    under the lock. Returns what it did: "", "due_soon" or "overdue"."""
    escalation = escalation_for_update_skip_locked(escalation_id)
    if escalation is None:
        return ""
    clock = policy.escalation_clock(
        status=escalation.status,
        due_soon_at=escalation.due_soon_at,
        due_at=escalation.due_at,
        now=now,
    )
    done = ""
    if clock.due_soon and escalation.due_soon_flagged_at is None:
        escalation.due_soon_flagged_at = now
        escalation.save(update_fields=["due_soon_flagged_at"])
        done = "due_soon"
    if clock.overdue and escalation.overdue_notified_at is None:
        escalation.overdue_notified_at = now
        escalation.save(update_fields=["overdue_notified_at"])
        for supervisor in supervisor_list():
            notify(
                user=supervisor,
                title=f"Escalation #{escalation.pk} is overdue",
                body=f"Escalation #{escalation.pk} on order #{escalation.order_id} was due by "
                f"{day_text(escalation.due_at)} (L-8.1); decide it now.",
                url=reverse("admin:disputes_escalation_change", args=[escalation.pk]),
            )
        done = "overdue"
    return done
