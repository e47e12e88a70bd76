"""Refund execution: every money movement back to a buyer starts in `refund_order` or
`refund_execute`, exactly once per idempotency key (D-7). Credit is given in the deciding
transaction; a card refund is committed pending and made by `refunds.services.processing`."""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.business_days import add_business_days
from core.errors import DomainError, InvalidInput
from core.money import ZERO
from core.outbox import outbox_enqueue
from credits import services as credit_services
from credits.models import CreditGrant
from orders.events import order_event_record
from orders.lock_objects import order_for_update
from orders.models import Order, OrderEvent, Payment
from refunds import policy
from refunds.models import Refund
from refunds.selectors import MONEY_BACK, paid_facts
from refunds.services.completion import refund_message, refund_succeeded


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
        return existing
    paid = paid_facts(order)
    _check_refundable(amount, paid)
    return [
        _create(
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
    replacing: Refund | None = None,
) -> Refund:
    """One money movement to one destination, exactly once per idempotency key. `replacing` is
    a card refund support pays this way instead (it no longer counts against what is paid).

    Takes the order's row lock. Raises `invalid_destination`, `invalid_amount` (400),
    `refund_exceeds_paid`, `refund_exceeds_card` (409, L-7.2), `idempotency_key_reused` (400)."""
    order = order_for_update(order_id)
    existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
    if existing:
        _check_same_request([existing], amount, idempotency_key)
        return existing
    if destination not in Refund.Destination.values:
        raise InvalidInput("invalid_destination", f"Unknown refund destination {destination!r}.")
    if destination in MONEY_BACK:
        paid = paid_facts(order, excluding=replacing)
        _check_refundable(amount, paid)
        if destination == Refund.Destination.CARD and amount > paid.card_refundable:
            raise DomainError(
                "refund_exceeds_card",
                f"Only {paid.card_refundable} can still go back to the card.",
                clauses=["L-7.2"],
            )
    elif amount <= ZERO:
        raise InvalidInput("invalid_amount", "A refund amount must be positive.")
    return _create(
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


def _create(
    *, order, amount, destination, idempotency_key, actor, role, reason, clauses, request=None
) -> Refund:
    """Create the refund row. Credit moves at once, inside this transaction (it is lojix's own
    ledger); a card refund is committed `pending` and the processor is called after commit, with
    no transaction or lock held, by `refunds.tasks.process_refund` (D-7)."""
    now = timezone.now()
    dates = _expected_dates(order, destination, now)
    is_card = destination == Refund.Destination.CARD
    refund = Refund.objects.create(
        order=order,
        request=request,
        amount=amount,
        destination=destination,
        idempotency_key=idempotency_key,
        payment=_refundable_payment(order) if is_card else None,
        reason=reason,
        clauses=list(clauses),
        created_by=actor,
        created_at=now,
        processor_key=idempotency_key if is_card else "",
        next_attempt_at=now if is_card else None,
        expected_processed_by=dates.processed_by,
        expected_in_bank_from=dates.in_bank_from,
        expected_in_bank_by=dates.in_bank_by,
    )
    if not is_card:
        _grant_credit(refund, order, now)
        refund.status, refund.succeeded_at = Refund.Status.SUCCEEDED, now
        refund.save(update_fields=["status", "succeeded_at"])
        refund_succeeded(refund, actor=actor, role=role, now=now)
        return refund
    outbox_enqueue(task="refunds.tasks.process_refund", kwargs={"refund_id": refund.pk}, now=now)
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.REFUND,
        name="refund_pending",
        actor=actor,
        role=role,
        message=refund_message(refund),
        reason=reason,
        clauses=clauses,
        amount=amount,
        at=now,
    )
    return refund


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
