"""Support's and the policy's decisions on refund requests (L-3, L-4.1, L-4.3, L-9), and the
money they move."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core.display import money_text
from core.errors import DomainError, InvalidInput
from core.money import ZERO, to_cents
from core.roles import User, is_supervisor
from core.services import notify
from disputes.services.interventions import intervention_resolve_for_refund_request
from orders.services.placement import order_place_replacement
from refunds import policy
from refunds.events import refund_request_event_record, refund_request_step
from refunds.lock_objects import refund_request_for_update
from refunds.models import Refund, RefundRequest, RefundRequestItem
from refunds.selectors import order_refund_facts, paid_facts
from refunds.services.common import require_explanation, require_reviewable, require_support
from refunds.services.completion import refund_message
from refunds.services.execution import refund_execute, refund_order


@transaction.atomic
def refund_request_approve(
    *, request_id: int, actor: User, method: str | None = None
) -> RefundRequest:
    """Support approves what the policy suggests (L-4.1 step 4), at most what is still
    refundable (L-7.2), paid by origin or as the buyer chose (D-7); above the four-eyes
    threshold a supervisor must approve too (D-6). Takes the request's row lock (the refund then
    locks the order, D-7).

    Errors: `not_found` (404); `forbidden` (400) for someone not of support; `not_under_review`
    (409); `nothing_to_refund` (409, L-7.2)."""
    request = refund_request_for_update(request_id)
    require_support(actor)
    require_reviewable(request)
    amount = policy.approve_amount(request.suggested_amount, paid_facts(request.order).refundable)
    if amount <= ZERO:
        raise DomainError(
            "nothing_to_refund",
            "There is nothing left to refund for this order; deny the request or offer a credit.",
            clauses=["L-7.2"],
        )
    decide(
        request,
        request.approve,
        actor=actor,
        amount=amount,
        method=method,
        explanation="Approved at the amount the policy sets for this reason.",
        clauses=request.suggested_clauses,
        now=timezone.now(),
    )
    return request


@transaction.atomic
def refund_request_partially_approve(
    *, request_id: int, actor: User, amount: Decimal, explanation: str, method: str | None = None
) -> RefundRequest:
    """Support approves part (L-3.2, L-4.1): `amount` (in the order's currency) up to what can
    still be refunded (L-7.2), explained to the buyer; above the four-eyes threshold a supervisor
    must approve too (D-6). Takes the request's row lock.

    Errors: `not_found` (404); `forbidden` (400) for someone not of support; `not_under_review`
    (409); `invalid_amount`, `explanation_required`, `explanation_too_long` (400)."""
    request = refund_request_for_update(request_id)
    require_support(actor)
    require_reviewable(request)
    refundable = paid_facts(request.order).refundable
    if not ZERO < amount <= refundable:
        raise InvalidInput(
            "invalid_amount",
            f"The amount must be more than zero and at most {money_text(refundable)}.",
        )
    require_explanation(explanation)
    decide(
        request,
        request.partially_approve,
        actor=actor,
        amount=amount,
        method=method,
        explanation=explanation,
        clauses=("L-3.2", "L-4.1"),
        now=timezone.now(),
    )
    return request


@transaction.atomic
def refund_request_deny(*, request_id: int, actor: User, explanation: str) -> RefundRequest:
    """Support denies with an explanation the buyer reads (L-4.1 step 4); the buyer may
    escalate (L-8.1). Takes the request's row lock.

    Errors: `not_found` (404); `forbidden` (400) for someone not of support; `not_under_review`
    (409); `explanation_required` / `explanation_too_long` (400)."""
    request = refund_request_for_update(request_id)
    require_support(actor)
    require_reviewable(request)
    require_explanation(explanation)
    decide(
        request,
        request.deny,
        actor=actor,
        amount=None,
        explanation=explanation,
        clauses=("L-4.1",),
        now=timezone.now(),
    )
    return request


@transaction.atomic
def refund_request_offer_credit(
    *, request_id: int, actor: User, amount: Decimal, explanation: str
) -> RefundRequest:
    """Support resolves a minor issue with promotional credit instead of money (L-4.3): `amount`
    up to the order's total, expiring after the version's `promo_credit_expiry_days` (L-7.1).
    Above `supervisor_approval_above` it is granted only at a supervisor's second approval
    (four eyes, D-6). Takes the request's row lock.

    Errors: `not_found` (404); `forbidden` (400) for someone not of support; `not_under_review`
    (409); `invalid_amount`, `explanation_required`, `explanation_too_long` (400)."""
    request = refund_request_for_update(request_id)
    require_support(actor)
    require_reviewable(request)
    if not ZERO < amount <= request.order.total:
        raise InvalidInput(
            "invalid_amount",
            f"The credit must be more than zero and at most {money_text(request.order.total)}.",
        )
    require_explanation(explanation)
    decide(
        request,
        request.partially_approve,
        actor=actor,
        amount=amount,
        resolution=RefundRequest.Resolution.PROMO_CREDIT,
        explanation=explanation,
        clauses=("L-4.3", "L-7.1"),
        now=timezone.now(),
    )
    return request


@transaction.atomic
def refund_request_offer_replacement(
    *, request_id: int, actor: User, explanation: str
) -> RefundRequest:
    """Support sends a replacement instead of a refund (L-4.1 step 4, L-6.2): the claimed items
    (or the whole order) again, free; the restaurant prepares it like any order. Takes the
    request's row lock. A replacement worth more than `supervisor_approval_above` waits for a
    supervisor and is placed only at the second approval (four eyes, D-6).

    Errors: `not_found` (404), `forbidden` (400), `not_under_review` (409),
    `explanation_required` / `explanation_too_long` (400); placing it now (at or under the
    threshold) may be refused with `restaurant_closed` / `fulfillment_not_offered` (400)."""
    request = refund_request_for_update(request_id)
    require_support(actor)
    require_reviewable(request)
    require_explanation(explanation)
    now = timezone.now()
    items = _replacement_items(request)
    value = to_cents(sum((item.price * quantity for item, quantity in items), ZERO))
    version = request.order.policy_version
    waits = policy.needs_second_approval(
        resolution=RefundRequest.Resolution.REPLACEMENT,
        amount=value,
        threshold=version.supervisor_approval_above,
        by_person=True,
    )
    replacement = (
        None
        if waits
        else order_place_replacement(
            original=request.order, items=items, actor=actor, note=explanation
        )
    )
    what = f"worth {value}" if waits else f"#{replacement.pk} is on its way"
    refund_request_step(
        request,
        request.approve,
        actor=actor,
        role="support",
        at=now,
        clauses=("L-4.1", "L-6.2"),
        message=f"A replacement order {what} instead of a refund. {explanation}",
        resolution=RefundRequest.Resolution.REPLACEMENT,
        decided_amount=value if waits else None,
        explanation=explanation,
        decision_clauses=["L-4.1", "L-6.2"],
        decided_by=actor,
        needs_second_approval=waits,
        replacement_order=replacement,
    )
    if waits:
        _awaiting_supervisor(request, version.supervisor_approval_above, now=now)
    else:
        _tell_replacement(request, replacement)
    _close_overdue_case(request, actor=actor, now=now)
    return request


def _replacement_items(request: RefundRequest) -> list:
    claimed = [
        (i.order_item.menu_item, i.quantity)
        for i in request.items.select_related("order_item__menu_item")
    ]
    return claimed or [
        (i.menu_item, i.quantity) for i in request.order.items.select_related("menu_item")
    ]


def _place_replacement(request: RefundRequest, *, actor, now) -> None:
    replacement = order_place_replacement(
        original=request.order,
        items=_replacement_items(request),
        actor=actor,
        note=request.explanation,
    )
    request.replacement_order = replacement
    request.save(update_fields=["replacement_order"])
    refund_request_event_record(
        request,
        name="replacement_placed",
        from_status=request.status,
        actor=actor,
        role="support",
        at=now,
        clauses=("L-4.1", "L-6.2"),
        message=f"A replacement order #{replacement.pk} is on its way instead of a refund. "
        f"{request.explanation}",
    )
    _tell_replacement(request, replacement)


def _tell_replacement(request: RefundRequest, replacement) -> None:
    notify(
        user=request.buyer,
        title=f"Refund request #{request.pk}: a replacement is coming",
        body=f"{request.explanation}\nYour replacement is order #{replacement.pk}, free of charge.",
        url=replacement.get_absolute_url(),
    )


def _awaiting_supervisor(request: RefundRequest, threshold, *, now) -> None:
    refund_request_event_record(
        request,
        name="awaiting_supervisor",
        from_status=request.status,
        actor=None,
        role="policy",
        at=now,
        clauses=("L-4.1",),
        message=f"Above {threshold}: a supervisor approves too.",
    )


def _close_overdue_case(request: RefundRequest, *, actor, now) -> None:
    intervention_resolve_for_refund_request(
        refund_request=request,
        actor=actor,
        action=f"Decided: {request.get_status_display().lower()}",
        now=now,
    )


def decide(
    request,
    transition,
    *,
    actor: User | None,
    amount,
    explanation,
    clauses,
    now,
    method=None,
    resolution=RefundRequest.Resolution.REFUND,
) -> None:
    """Record a decision (L-4.1 step 4; `actor` None for the policy's automatic ones) and,
    unless a supervisor must approve it too (four eyes, D-6), pay it once (D-7) or tell the
    buyer of the denial (L-8.1); close the request's review-overdue case (K-OV). Call while
    holding the request's row lock. Raises nothing of its own; the refund's `refund_exceeds_paid`
    (409) if the amount is over what is still refundable."""
    version = request.order.policy_version
    needs_second = policy.needs_second_approval(
        resolution=resolution,
        amount=amount,
        threshold=version.supervisor_approval_above,
        by_person=actor is not None,
    )
    who = "policy" if actor is None else "support"
    verdict = {"approve": "Approved", "partially_approve": "Partially approved", "deny": "Denied"}[
        transition.__name__
    ]
    refund_request_step(
        request,
        transition,
        actor=actor,
        role=who,
        at=now,
        clauses=clauses,
        message=_decision_message(verdict, amount, explanation),
        decided_amount=amount,
        decided_method=method or request.preferred_method,
        resolution=resolution if amount is not None else "",
        explanation=explanation,
        decision_clauses=list(clauses),
        decided_by=actor,
        needs_second_approval=needs_second,
    )
    _close_overdue_case(request, actor=actor, now=now)
    if resolution == RefundRequest.Resolution.REFUND and amount is not None:
        _record_line_refunds(request, amount)
    if needs_second:
        _awaiting_supervisor(request, version.supervisor_approval_above, now=now)
    elif amount is not None:
        _pay(request, actor=actor, now=now)
    else:
        notify(
            user=request.buyer,
            title=f"Refund request #{request.pk} denied",
            body=f"{explanation}\nWhy: {', '.join(clauses)}. You may ask a supervisor to "
            "review this decision (L-8.1).",
            url=request.get_absolute_url(),
        )


def _decision_message(verdict: str, amount: Decimal | None, explanation: str) -> str:
    """The timeline line of a decision: "Approved: 6.00 USD. <explanation>"."""
    money = f": {money_text(amount)}" if amount else ""
    return f"{verdict}{money}. {explanation}".strip()


def _record_line_refunds(request: RefundRequest, amount: Decimal) -> None:
    """Book the decided money against the lines the claim named, each at most the named units'
    paid share less what earlier claims gave back for the line (D-7, L-7.2), so a later claim
    on the same line is suggested only what is left. Call while holding the request's lock."""
    items = list(request.items.all())
    if not items:
        return
    caps = policy.claim_line_caps(
        order_refund_facts(request.order), tuple((i.order_item_id, i.quantity) for i in items)
    )
    shares = dict(policy.allocate_to_lines(amount, caps))
    for item in items:
        item.refunded_amount = shares.get(item.order_item_id, ZERO)
    RefundRequestItem.objects.bulk_update(items, ["refunded_amount"])


@transaction.atomic
def refund_request_second_approve(*, request_id: int, actor: User) -> RefundRequest:
    """A supervisor, not the agent who decided, confirms a resolution above the four-eyes
    threshold (D-6): then the money moves, the promotional credit is granted, or the replacement
    order is placed. Takes the request's row lock.

    Errors: `not_found` (404); `supervisor_required` (403); `no_second_approval_due`,
    `four_eyes` (409); a replacement placed now may be refused with `restaurant_closed` /
    `fulfillment_not_offered` (400)."""
    request = refund_request_for_update(request_id)
    if not actor.groups.filter(name="supervisor").exists() and not actor.is_superuser:
        raise DomainError(
            "supervisor_required",
            "Only a supervisor can give the second approval.",
            kind="forbidden",
        )
    if not request.needs_second_approval or request.second_approved_by_id:
        raise DomainError("no_second_approval_due", "This request is not waiting for a supervisor.")
    if request.decided_by_id == actor.pk:
        raise DomainError("four_eyes", "The second approval must come from someone else.")
    now = timezone.now()
    request.second_approved_by, request.second_approved_at = actor, now
    request.save(update_fields=["second_approved_by", "second_approved_at"])
    refund_request_event_record(
        request,
        name="second_approval",
        from_status=request.status,
        actor=actor,
        role="support",
        at=now,
        message="Approved by a supervisor.",
        clauses=("L-4.1",),
    )
    if request.resolution == RefundRequest.Resolution.REPLACEMENT:
        _place_replacement(request, actor=actor, now=now)
    else:
        _pay(request, actor=actor, now=now)
    return request


@transaction.atomic
def refund_request_second_reject(
    *, request_id: int, actor: User, explanation: str
) -> RefundRequest:
    """A supervisor refuses the second approval of a resolution above the four-eyes threshold
    (D-6, L-4.1): nothing was paid, credited or placed, so the request goes back under review
    with its decision cleared (amount, method, resolution, who, the lines' booked shares) and
    the explanation on its timeline, which the deciding agent and the buyer read. Takes the
    request's row lock.

    Errors: `not_found` (404); `supervisor_required` (403); `no_second_approval_due` (409);
    `explanation_required` / `explanation_too_long` (400)."""
    request = refund_request_for_update(request_id)
    if not is_supervisor(actor):
        raise DomainError(
            "supervisor_required",
            "Only a supervisor can refuse the second approval.",
            kind="forbidden",
        )
    if not _waits_for_second_approval(request):
        raise DomainError("no_second_approval_due", "This request is not waiting for a supervisor.")
    require_explanation(explanation)
    refund_request_step(
        request,
        request.send_back,
        actor=actor,
        role="support",
        at=timezone.now(),
        clauses=("L-4.1",),
        message=f"Sent back for another review by a supervisor: {explanation.strip()}",
        decided_amount=None,
        decided_method="",
        resolution="",
        explanation="",
        decision_clauses=[],
        decided_by=None,
        decided_at=None,
        needs_second_approval=False,
    )
    request.items.update(refunded_amount=ZERO)
    return request


def _waits_for_second_approval(request: RefundRequest) -> bool:
    return policy.waits_for_second_approval(
        status=request.status,
        needs_second_approval=request.needs_second_approval,
        second_approved=request.second_approved_by_id is not None,
    )


def _pay(request: RefundRequest, *, actor, now) -> None:
    """Start the decided money once (the request's key, D-7). Credit is given at once and marks
    the request refunded; a card refund is on its way, and the request is refunded, the buyer
    told and the restaurant's deduction booked (L-9) when the processor has made it
    (`refunds.services.completion.refund_succeeded`)."""
    role = "policy" if actor is None else "support"
    key = f"refund-request:{request.pk}"
    reason = f"Refund request #{request.pk}: {request.get_reason_display()}"
    if request.resolution == RefundRequest.Resolution.PROMO_CREDIT:
        refunds = [
            refund_execute(
                order_id=request.order_id,
                amount=request.decided_amount,
                destination=Refund.Destination.PROMO_CREDIT,
                idempotency_key=key,
                actor=actor,
                role=role,
                reason=reason,
                clauses=request.decision_clauses,
                request=request,
            )
        ]
    else:
        refunds = refund_order(
            order_id=request.order_id,
            amount=request.decided_amount,
            method=request.decided_method,
            idempotency_key=key,
            actor=actor,
            role=role,
            reason=reason,
            clauses=request.decision_clauses,
            request=request,
        )
    if request.status == RefundRequest.Status.REFUNDED:
        return  # all of it was credit, given in this transaction
    message = " ".join(refund_message(r) for r in refunds)
    refund_request_event_record(
        request,
        name="refund_started",
        from_status=request.status,
        actor=actor,
        role=role,
        at=now,
        message=message,
    )
    notify(
        user=request.buyer,
        title=f"Refund request #{request.pk}: {money_text(request.decided_amount)} on its way",
        body=message,
        url=request.get_absolute_url(),
    )
