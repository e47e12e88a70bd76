"""Refund execution: every money movement back to a buyer goes through `refund_order` or
`refund_execute`, exactly once per idempotency key (D-7)."""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.business_days import add_business_days
from core.errors import DomainError, InvalidInput
from core.money import ZERO
from credits import services as credit_services
from credits.models import CreditGrant
from orders.events import order_event_record
from orders.gateway import get_gateway
from orders.lock_objects import order_for_update
from orders.models import Order, OrderEvent, Payment
from refunds import policy
from refunds.models import Refund
from refunds.selectors import MONEY_BACK, paid_facts


@transaction.atomic
def refund_order(
    *,
    order_id: int,
    amount: Decimal,
    method: str,
    idempotency_key: str,
    actor,
    role: str,
    reason: str,
    clauses=(),
    request=None,
) -> list[Refund]:
    """Give `amount` of what was paid back: card and account-credit parts by origin, or all as
    account credit (`method="account_credit"`, D-7). Repeating the call with the same key
    returns the same refunds and moves nothing more."""
    order = order_for_update(order_id)
    keys = {d: f"{idempotency_key}:{d}" for d in MONEY_BACK}
    existing = list(Refund.objects.filter(idempotency_key__in=keys.values()))
    if existing:
        _check_same_request(existing, amount, idempotency_key)
        return [_complete(refund, order) for refund in existing]
    paid = paid_facts(order)
    _check_refundable(amount, paid)
    return [
        _create_and_move(
            order=order,
            amount=part.amount,
            destination=part.destination,
            idempotency_key=keys[part.destination],
            actor=actor,
            role=role,
            reason=reason,
            clauses=clauses,
            request=request,
        )
        for part in policy.split_refund(amount, paid, method=method)
    ]


@transaction.atomic
def refund_execute(
    *,
    order_id: int,
    amount: Decimal,
    destination: str,
    idempotency_key: str,
    actor,
    role: str,
    reason: str,
    clauses=(),
    request=None,
) -> Refund:
    """One money movement to one destination, exactly once per idempotency key."""
    order = order_for_update(order_id)
    existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
    if existing:
        _check_same_request([existing], amount, idempotency_key)
        return _complete(existing, order)
    if destination not in Refund.Destination.values:
        raise InvalidInput("invalid_destination", f"Unknown refund destination {destination!r}.")
    if destination in MONEY_BACK:
        paid = paid_facts(order)
        _check_refundable(amount, paid)
        if destination == Refund.Destination.CARD and amount > paid.card_refundable:
            raise DomainError(
                "refund_exceeds_card",
                f"Only {paid.card_refundable} can still go back to the card.",
                clauses=["L-7.2"],
            )
    elif amount <= ZERO:
        raise InvalidInput("invalid_amount", "A refund amount must be positive.")
    return _create_and_move(
        order=order,
        amount=amount,
        destination=destination,
        idempotency_key=idempotency_key,
        actor=actor,
        role=role,
        reason=reason,
        clauses=clauses,
        request=request,
    )


def _check_refundable(amount: Decimal, paid: policy.PaidFacts) -> None:
    if amount <= ZERO:
        raise InvalidInput("invalid_amount", "A refund amount must be positive.")
    if amount > paid.refundable:
        raise DomainError(
            "refund_exceeds_paid",
            f"Only {paid.refundable} of the {paid.amount_paid} paid can still be refunded.",
            clauses=["L-7.2"],
        )


def _check_same_request(existing: list[Refund], amount: Decimal, key: str) -> None:
    if sum(r.amount for r in existing) != amount:
        raise InvalidInput(
            "idempotency_key_reused",
            f"The key {key} was already used for a refund of a different amount.",
        )


def _create_and_move(
    *, order, amount, destination, idempotency_key, actor, role, reason, clauses, request=None
) -> Refund:
    now = timezone.now()
    dates = _expected_dates(order, destination, now)
    refund = Refund.objects.create(
        order=order,
        request=request,
        amount=amount,
        destination=destination,
        idempotency_key=idempotency_key,
        payment=_refundable_payment(order) if destination == Refund.Destination.CARD else None,
        reason=reason,
        clauses=list(clauses),
        created_by=actor,
        created_at=now,
        expected_processed_by=dates.processed_by,
        expected_in_bank_from=dates.in_bank_from,
        expected_in_bank_by=dates.in_bank_by,
    )
    _move_money(refund, order, now)
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.REFUND,
        name=f"refund_{refund.status}",
        actor=actor,
        role=role,
        message=refund_message(refund),
        reason=reason,
        clauses=clauses,
        amount=amount,
        at=now,
    )
    return refund


def _complete(refund: Refund, order: Order) -> Refund:
    """A repeated call: a failed card refund is tried again; anything else is returned as is."""
    if refund.status == Refund.Status.FAILED:
        _move_money(refund, order, timezone.now(), attempt="retry")
    return refund


def _move_money(refund: Refund, order: Order, now: dt.datetime, attempt: str = "") -> None:
    """The single money movement of a refund; its status records the outcome."""
    if refund.destination == Refund.Destination.CARD:
        result = get_gateway().refund(
            charge_reference=refund.payment.gateway_reference,
            amount=refund.amount,
            currency=settings.LOJIX_CURRENCY,
            idempotency_key=f"{refund.idempotency_key}{':' + attempt if attempt else ''}",
        )
        refund.gateway_reference = result.reference
        refund.failure_message = result.message
        succeeded = result.succeeded
    else:
        _grant_credit(refund, order, now)
        succeeded = True
    refund.status = Refund.Status.SUCCEEDED if succeeded else Refund.Status.FAILED
    refund.succeeded_at = now if succeeded else None
    refund.save(update_fields=["status", "succeeded_at", "gateway_reference", "failure_message"])


def _grant_credit(refund: Refund, order: Order, now: dt.datetime) -> None:
    is_promo = refund.destination == Refund.Destination.PROMO_CREDIT
    credit_services.credit_grant_create(
        buyer=order.buyer,
        kind=CreditGrant.Kind.PROMO if is_promo else CreditGrant.Kind.ACCOUNT,
        amount=refund.amount,
        source=CreditGrant.Source.AGENT if is_promo else CreditGrant.Source.REFUND,
        reason=refund.reason,
        expires_at=(
            now + dt.timedelta(days=order.policy_version.promo_credit_expiry_days)
            if is_promo
            else None
        ),
        order=order,
        refund=refund,
        granted_by=refund.created_by,
    )


def _refundable_payment(order: Order) -> Payment:
    payment = order.payments.filter(status=Payment.Status.SUCCEEDED).order_by("created_at").first()
    if payment is None:
        raise DomainError("no_card_payment", "Nothing was charged to a card for this order.")
    return payment


def _expected_dates(order: Order, destination: str, now: dt.datetime) -> policy.RefundDates:
    version = order.policy_version
    return policy.refund_dates(
        destination=destination,
        on=timezone.localdate(now),
        processing_min_days=version.refund_processing_min_days,
        processing_max_days=version.refund_processing_max_days,
        bank_min_days=version.bank_processing_min_days,
        bank_max_days=version.bank_processing_max_days,
        add_business_days=lambda day, n: add_business_days(
            day, n, country=settings.LOJIX_HOLIDAY_COUNTRY
        ),
    )


def refund_message(refund: Refund) -> str:
    currency = settings.LOJIX_CURRENCY
    if refund.status == Refund.Status.FAILED:
        return f"Refund of {refund.amount} {currency} to the card failed: {refund.failure_message}"
    if refund.destination == Refund.Destination.CARD:
        return (
            f"Refund of {refund.amount} {currency} to your card; expected at your bank between "
            f"{refund.expected_in_bank_from:%d %b} and {refund.expected_in_bank_by:%d %b %Y}."
        )
    kind = refund.get_destination_display().lower()
    return f"{refund.amount} {currency} added to your wallet as {kind}."
