"""Support's and the policy's decisions on refund requests (L-3, L-4.1, L-4.3, L-9), and the
money they move."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core.errors import DomainError, InvalidInput
from core.money import ZERO
from core.services import notify
from orders.services.placement import order_place_replacement
from refunds import policy
from refunds.events import refund_request_event_record, refund_request_step
from refunds.lock_objects import refund_request_for_update
from refunds.models import Refund, RefundRequest, RefundRequestItem
from refunds.selectors import order_refund_facts, paid_facts
from refunds.services.common import require_explanation, require_reviewable, require_support
from refunds.services.execution import refund_execute, refund_message, refund_order
from refunds.services.ledger import restaurant_deduct_refunds


@transaction.atomic
def refund_request_approve(*, request_id: int, actor, method: str | None = None) -> RefundRequest:
    """Support approves what the policy suggests (L-4.1 step 4), paid by origin or as the
    buyer chose; above the four-eyes threshold a supervisor must approve too (D-6)."""
    request = refund_request_for_update(request_id)
    require_support(actor)
    require_reviewable(request)
    amount = min(request.suggested_amount, paid_facts(request.order).refundable)
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
        explanation="Approved.",
        clauses=request.suggested_clauses,
        now=timezone.now(),
    )
    return request


@transaction.atomic
def refund_request_partially_approve(
    *, request_id: int, actor, amount: Decimal, explanation: str, method: str | None = None
) -> RefundRequest:
    """Support approves part (L-3.2): an amount up to what can still be refunded, explained."""
    request = refund_request_for_update(request_id)
    require_support(actor)
    require_reviewable(request)
    refundable = paid_facts(request.order).refundable
    if not ZERO < amount <= refundable:
        raise InvalidInput(
            "invalid_amount", f"The amount must be more than 0 and at most {refundable}."
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
def refund_request_deny(*, request_id: int, actor, explanation: str) -> RefundRequest:
    """Support denies with an explanation the buyer reads (L-4.1 step 4)."""
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
    *, request_id: int, actor, amount: Decimal, explanation: str
) -> RefundRequest:
    """Support resolves a minor issue with promotional credit instead of money (L-4.3), up to
    the order's total."""
    request = refund_request_for_update(request_id)
    require_support(actor)
    require_reviewable(request)
    if not ZERO < amount <= request.order.total:
        raise InvalidInput(
            "invalid_amount", f"The credit must be more than 0 and at most {request.order.total}."
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
def refund_request_offer_replacement(*, request_id: int, actor, explanation: str) -> RefundRequest:
    """Support sends a replacement instead of a refund (L-4.1 step 4, L-6.2): the claimed items
    (or the whole order) again, free; the restaurant prepares it like any order."""
    request = refund_request_for_update(request_id)
    require_support(actor)
    require_reviewable(request)
    require_explanation(explanation)
    claimed = [
        (i.order_item.menu_item, i.quantity)
        for i in request.items.select_related("order_item__menu_item")
    ]
    items = claimed or [
        (i.menu_item, i.quantity) for i in request.order.items.select_related("menu_item")
    ]
    replacement = order_place_replacement(
        original=request.order, items=items, actor=actor, note=explanation
    )
    now = timezone.now()
    refund_request_step(
        request,
        request.approve,
        actor=actor,
        role="support",
        at=now,
        clauses=("L-4.1", "L-6.2"),
        message=f"A replacement order #{replacement.pk} is on its way instead of a refund. "
        f"{explanation}",
        resolution=RefundRequest.Resolution.REPLACEMENT,
        explanation=explanation,
        decision_clauses=["L-4.1", "L-6.2"],
        decided_by=actor,
        replacement_order=replacement,
    )
    notify(
        user=request.buyer,
        title=f"Refund request #{request.pk}: a replacement is coming",
        body=f"{explanation}\nYour replacement is order #{replacement.pk}, free of charge.",
        url=replacement.get_absolute_url(),
    )
    return request


def decide(
    request,
    transition,
    *,
    actor,
    amount,
    explanation,
    clauses,
    now,
    method=None,
    resolution=RefundRequest.Resolution.REFUND,
) -> None:
    """Record a decision and, unless a supervisor must approve it too, pay it."""
    version = request.order.policy_version
    money = resolution == RefundRequest.Resolution.REFUND and amount is not None
    needs_second = money and amount > version.supervisor_approval_above and actor is not None
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
        message=f"{verdict}{f': {amount}' if amount else ''}. {explanation}".strip(),
        decided_amount=amount,
        decided_method=method or request.preferred_method,
        resolution=resolution if amount is not None else "",
        explanation=explanation,
        decision_clauses=list(clauses),
        decided_by=actor,
        needs_second_approval=needs_second,
    )
    if money:
        _record_line_refunds(request, amount)
    if needs_second:
        refund_request_event_record(
            request,
            name="awaiting_supervisor",
            from_status=request.status,
            actor=None,
            role="policy",
            at=now,
            clauses=("L-4.1",),
            message=f"Above {version.supervisor_approval_above}: a supervisor approves too.",
        )
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
def refund_request_second_approve(*, request_id: int, actor) -> RefundRequest:
    """A supervisor, not the agent who decided, confirms a large refund; then money moves."""
    request = refund_request_for_update(request_id)
    if not actor.groups.filter(name="supervisor").exists() and not actor.is_superuser:
        raise DomainError("supervisor_required", "Only a supervisor can give the second approval.")
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
    _pay(request, actor=actor, now=now)
    return request


def _pay(request: RefundRequest, *, actor, now) -> None:
    """Move the decided money once (the request's key), deduct what the restaurant caused from
    its payouts (L-9), mark the request refunded and tell the buyer when it arrives (L-4.2)."""
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
        if request.reason in policy.RESTAURANT_CAUSED:
            restaurant_deduct_refunds(request.order, refunds)
    refund_request_step(
        request,
        request.mark_refunded,
        actor=actor,
        role=role,
        at=now,
        message=" ".join(refund_message(r) for r in refunds),
    )
    notify(
        user=request.buyer,
        title=f"Refund request #{request.pk}: {request.decided_amount} back",
        body=" ".join(refund_message(r) for r in refunds),
        url=request.get_absolute_url(),
    )
