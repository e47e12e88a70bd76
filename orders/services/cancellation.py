"""Cancellation (L-2.1, L-2.2, K-B1..3, K-S1..3, K-OV): by the buyer, the restaurant's answer to
a request, and by the restaurant."""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.display import money_text
from core.errors import DomainError, InvalidInput
from core.money import ZERO
from core.roles import User
from core.services import notify, notify_restaurant
from credits import services as credit_services
from disputes.guards import buyer_must_not_be_suspended
from disputes.models import Intervention
from disputes.services.interventions import intervention_resolve_for_order
from orders import policy
from orders.events import actor_role, by_whom, order_event_record, order_step, stepping_in
from orders.lock_objects import order_for_update
from orders.models import Order, OrderEvent, is_restaurant_member, is_support
from orders.selectors import (
    buyer_cancellation_decision,
    cancellation_summary,
    order_cancellation_request_refund,
)
from refunds.selectors import paid_facts
from refunds.services.execution import refund_order
from refunds.services.ledger import restaurant_ledger_record

CANCELLATION_REFUND_KEY = "order:{}:cancellation"


@transaction.atomic
def order_cancel_by_buyer(*, order_id: int, actor: User, quote: Decimal | None = None):
    """The buyer cancels (L-2.1, K-B1..3): at once and free before acceptance, with what is
    still refundable started back by origin (D-7), or as a request to the restaurant at the fee
    quoted. `quote` is the fee the buyer was shown, in the order's currency: if the outcome or
    the fee changed since, nothing happens and the new outcome is returned in the error.
    Takes the order's row lock. Returns (order, decision).

    Errors: `not_found` (404, also for another buyer's order); `quote_changed` (409, with the
    new `cancellation`); the policy's refusals `window_passed`, `request_denied`,
    `already_requested`, `preparation_started`, `order_delivered`, `order_closed` (409)."""
    order = order_for_update(order_id, buyer=actor)
    buyer_must_not_be_suspended(actor)
    now = timezone.now()
    decision = buyer_cancellation_decision(order, now=now)
    if quote is not None and (not decision.allowed or decision.fee != quote):
        raise DomainError(
            "quote_changed",
            f"The cancellation terms changed since you saw them. {decision.detail}",
            clauses=decision.clauses,
            extra={"cancellation": cancellation_summary(decision)},
        )
    if not decision.allowed:
        raise DomainError(decision.code, decision.detail, clauses=decision.clauses)
    if decision.outcome == policy.CancelOutcome.CANCEL_NOW:
        _cancel_and_refund(
            order,
            transition=order.cancel,
            refund=decision.refund,
            actor=actor,
            role=OrderEvent.Role.BUYER,
            message="You cancelled the order before the restaurant accepted it: free.",
            clauses=decision.clauses,
            now=now,
        )
        notify_restaurant(
            order.restaurant,
            title=f"Order #{order.pk} cancelled",
            body=f"The buyer cancelled order #{order.pk} before it was accepted.",
            url="/seller/",
        )
    else:
        _request_cancellation(order, decision, actor=actor, now=now)
    return order, decision


def _request_cancellation(order, decision, *, actor, now) -> None:
    minutes = order.policy_version.cancellation_response_minutes
    order_step(
        order,
        order.request_cancellation,
        cancellation_fee=decision.fee,
        actor=actor,
        role=OrderEvent.Role.BUYER,
        message=f"You asked to cancel; if the restaurant agrees you get "
        f"{money_text(decision.refund)} back ({money_text(decision.fee)} fee). Waiting for the "
        "restaurant.",
        clauses=decision.clauses,
        amount=decision.fee,
        at=now,
    )
    notify_restaurant(
        order.restaurant,
        title=f"Cancellation request for order #{order.pk}",
        body=f"The buyer asks to cancel order #{order.pk}. Approve (you keep "
        f"{money_text(decision.fee)}) or "
        f"deny within {minutes} minutes, or support decides.",
        order=None,
        url="/seller/cancellation-requests/",
    )


@transaction.atomic
def order_cancellation_approve(*, order_id: int, actor: User) -> Order:
    """The restaurant (or support, K-OV) approves a buyer's cancellation request: the buyer gets
    what is still refundable less the quoted fee (`orders.policy.cancellation_request_refund`),
    which the restaurant keeps and is booked to its ledger (L-2.1, L-7.2, L-9). Takes the order's
    row lock; resolves the request's K-OV case.

    Errors: `not_found` (404) for someone not of the restaurant nor support;
    `no_cancellation_request` (409) when no request waits."""
    order = _order_with_request_for_update(order_id, actor, order_transition="approve")
    now = timezone.now()
    fee = order.cancellation_fee or ZERO
    role = actor_role(order, actor)
    _cancel_and_refund(
        order,
        transition=order.approve,
        refund=order_cancellation_request_refund(order),
        actor=actor,
        role=role,
        message=f"Cancellation approved{by_whom(role)}; a fee of {money_text(fee)} applies.",
        clauses=("K-B1", "L-2.1", *stepping_in(role)),
        now=now,
    )
    if fee > ZERO:
        restaurant_ledger_record(
            restaurant_id=order.restaurant_id,
            kind="cancellation_fee",
            amount=fee,
            order=order,
            description=f"Cancellation fee kept: order #{order.pk}",
        )
    _close_cancellation_case(order, actor=actor, action="Cancellation approved", now=now)
    return order


@transaction.atomic
def order_cancellation_deny(*, order_id: int, actor: User, reason: str) -> Order:
    """The restaurant (or support, K-OV) denies a buyer's cancellation request with a reason the
    buyer reads on the notification and the timeline (K-S2's spirit, L-2.1): the order goes on,
    and the buyer cannot ask again. Takes the order's row lock.

    Errors: `reason_required` / `reason_too_long` (400) before anything is locked or changed;
    `not_found` (404) for someone not of the restaurant nor support; `no_cancellation_request`
    (409) when no request waits.
    """
    code, detail = policy.denial_reason_error(reason)
    if code:
        raise InvalidInput(code, detail, clauses=["L-2.1"])
    reason = reason.strip()
    order = _order_with_request_for_update(order_id, actor, order_transition="deny")
    now = timezone.now()
    role = actor_role(order, actor)
    message = f"Cancellation request denied{by_whom(role)}: {reason} The order goes on."
    order_step(
        order,
        order.deny,
        cancellation_fee=None,
        cancellation_denied_at=now,
        actor=actor,
        role=role,
        message=message,
        reason=reason,
        clauses=("L-2.1", *stepping_in(role)),
        at=now,
    )
    notify(
        user=order.buyer,
        title=f"Order #{order.pk}: cancellation denied"
        + (" by support" if stepping_in(role) else " by the restaurant"),
        body=f"Cancellation request denied{by_whom(role)}; the order goes on. {reason}",
        order=order,
    )
    _close_cancellation_case(order, actor=actor, action="Cancellation denied", now=now)
    return order


def _order_with_request_for_update(order_id: int, actor, *, order_transition: str) -> Order:
    order = order_for_update(order_id)
    if not (is_restaurant_member(order.restaurant_id, actor) or is_support(actor)):
        raise DomainError("not_found", f"There is no order {order_id}.", kind="not_found")
    if order.status != Order.Status.CANCELLATION_REQUESTED:
        raise DomainError(
            "no_cancellation_request",
            f"Order #{order.pk} has no cancellation request waiting (it is "
            f"{order.get_status_display().lower()}).",
        )
    return order


def _close_cancellation_case(order, *, actor, action, now) -> None:
    intervention_resolve_for_order(
        order=order,
        kind=Intervention.Kind.UNANSWERED_CANCELLATION,
        actor=actor,
        action=action,
        now=now,
    )


@transaction.atomic
def order_cancel_by_restaurant(
    *, order_id: int, actor: User, reason: str, explanation: str
) -> Order:
    """The restaurant (or support, K-OV) cancels (L-2.2, K-S1..3): the buyer is told at once
    with the explanation, refunded what is still refundable in full, and given the version's
    goodwill promotional credit (L-7.1). Takes the order's row lock.

    Errors: `not_found` (404) for someone not of the restaurant nor support; `not_cancellable`
    (409) once the order has left the restaurant; `invalid_reason`, `explanation_required`,
    `explanation_too_long` (400)."""
    order = order_for_update(order_id)
    if not (is_restaurant_member(order.restaurant_id, actor) or is_support(actor)):
        raise DomainError("not_found", f"There is no order {order_id}.", kind="not_found")
    version = order.policy_version
    decision = policy.decide_restaurant_cancellation(
        status=order.status,
        reason=reason,
        explanation=explanation,
        refundable=paid_facts(order).refundable,
        goodwill=version.restaurant_cancel_goodwill,
        currency=settings.LOJIX_CURRENCY,
    )
    if not decision.allowed:
        kind = "conflict" if decision.code == "not_cancellable" else "invalid"
        raise DomainError(decision.code, decision.detail, clauses=decision.clauses, kind=kind)
    now = timezone.now()
    explanation = explanation.strip()
    label = policy.RestaurantCancelReason.LABELS[reason]
    role = actor_role(order, actor)
    _cancel_and_refund(
        order,
        transition=order.cancel_by_restaurant,
        refund=decision.refund,
        actor=actor,
        role=role,
        message=f"Cancelled by the restaurant ({label.lower()}): {explanation}",
        clauses=decision.clauses + stepping_in(role),
        now=now,
        notify_buyer=False,
        changes={"cancellation_reason": reason, "cancellation_explanation": explanation},
    )
    goodwill = _grant_goodwill(order, decision.goodwill_credit, now=now)
    notify(
        user=order.buyer,
        title=f"{order.restaurant.name} cancelled order #{order.pk}",
        body=f"{order.restaurant.name} cancelled your order: {explanation}\n"
        f"Reason: {label}. A full refund of {money_text(decision.refund)} is on its way to you"
        + (
            f", and {money_text(goodwill)} promotional credit is in your wallet."
            if goodwill
            else "; the order page shows when it is sent."
        ),
        order=order,
    )
    return order


def _grant_goodwill(order: Order, amount: Decimal, *, now) -> Decimal:
    if amount <= ZERO:
        return ZERO
    credit_services.credit_grant_create(
        buyer=order.buyer,
        kind="promo",
        amount=amount,
        source="restaurant_cancel_goodwill",
        reason=f"Sorry: {order.restaurant.name} cancelled order #{order.pk}",
        expires_at=now + dt.timedelta(days=order.policy_version.promo_credit_expiry_days),
        order=order,
    )
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.CREDIT,
        name="goodwill_credit",
        actor=None,
        role=OrderEvent.Role.POLICY,
        message=f"{money_text(amount)} promotional credit for the inconvenience.",
        clauses=("L-2.2", "L-7.1"),
        amount=amount,
        at=now,
    )
    return amount


def _cancel_and_refund(
    order,
    *,
    transition,
    refund,
    actor,
    role,
    message,
    clauses,
    now,
    notify_buyer=True,
    changes=None,
) -> None:
    """Cancel, refund what is due by origin (D-7), give back promotional credit the order spent
    and tell the buyer. The refund's key is the order's, so it happens once."""
    order_step(
        order,
        transition,
        actor=actor,
        role=role,
        message=message,
        clauses=clauses,
        at=now,
        **(changes or {}),
    )
    if refund > ZERO:
        refund_order(
            order_id=order.pk,
            amount=refund,
            method="original",
            idempotency_key=CANCELLATION_REFUND_KEY.format(order.pk),
            actor=actor,
            role=role,
            reason=message,
            clauses=clauses,
        )
    credit_services.credit_restore_for_order(order=order, now=now)
    if notify_buyer:
        notify(
            user=order.buyer,
            title=f"Order #{order.pk} cancelled",
            body=f"{message} {money_text(refund)} is on its way back to you; the order page "
            "shows when it is sent.",
            order=order,
        )
