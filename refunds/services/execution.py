"""Refund execution: every money movement back to a buyer starts in `refund_order` or
`refund_execute`, exactly once per idempotency key (D-7). Credit is given in the deciding
transaction; a card refund is committed pending and made by `refunds.services.processing`."""

import datetime as dt
import functools
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.business_days import add_business_days
from core.display import money_text
from core.errors import DomainError, InvalidInput
from core.money import ZERO
from core.outbox import outbox_enqueue_many
from credits import services as credit_services
from credits.models import CreditGrant
from orders.events import order_event
from orders.lock_objects import order_for_update
from orders.models import Order, OrderEvent
from refunds import policy
from refunds.models import Refund
from refunds.selectors import MONEY_BACK, paid_facts, refundable_payment_ids
from refunds.services.completion import refund_message, refunds_succeeded

# Card refunds per processing task: a batch (the late sweep) asks the broker for a handful of
# tasks; each stays well inside its time limit even against a slow processor.
PROCESS_TASK_CHUNK = 50


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
    keys = {d: refund_part_key(idempotency_key, d) for d in MONEY_BACK}
    existing = list(Refund.objects.filter(idempotency_key__in=keys.values()))
    if existing:
        _check_same_request(existing, amount, idempotency_key)
        return existing
    paid = paid_facts(order)
    _check_refundable(amount, paid)
    now = timezone.now()
    rows = [
        refund_row(
            order=order,
            amount=part.amount,
            destination=part.destination,
            idempotency_key=keys[part.destination],
            payment_id=_card_payment_id(order, part.destination),
            actor=actor,
            reason=reason,
            clauses=clauses,
            request=request,
            now=now,
        )
        for part in policy.split_refund(amount, paid, method=method)
    ]
    return refunds_start(rows, actor=actor, role=role, now=now)


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
                f"Only {money_text(paid.card_refundable)} can still go back to the card.",
                clauses=["L-7.2"],
            )
    elif amount <= ZERO:
        raise InvalidInput("invalid_amount", "A refund amount must be positive.")
    now = timezone.now()
    row = refund_row(
        order=order,
        amount=amount,
        destination=destination,
        idempotency_key=idempotency_key,
        payment_id=_card_payment_id(order, destination),
        actor=actor,
        reason=reason,
        clauses=clauses,
        request=request,
        now=now,
    )
    (refund,) = refunds_start([row], actor=actor, role=role, now=now)
    return refund


def _check_refundable(amount: Decimal, paid: policy.PaidFacts) -> None:
    if amount <= ZERO:
        raise InvalidInput("invalid_amount", "A refund amount must be positive.")
    if amount > paid.refundable:
        raise DomainError(
            "refund_exceeds_paid",
            f"Only {money_text(paid.refundable)} of the {money_text(paid.amount_paid)} paid can "
            "still be refunded.",
            clauses=["L-7.2"],
        )


def _check_same_request(existing: list[Refund], amount: Decimal, key: str) -> None:
    if sum(r.amount for r in existing) != amount:
        raise InvalidInput(
            "idempotency_key_reused",
            f"The key {key} was already used for a refund of a different amount.",
        )


def refund_part_key(idempotency_key: str, destination: str) -> str:
    """The key of one destination's part of a refund split by origin (`refund_order`, D-7)."""
    return f"{idempotency_key}:{destination}"


def refund_row(
    *,
    order: Order,
    amount: Decimal,
    destination: str,
    idempotency_key: str,
    payment_id: int | None,
    actor,
    reason: str,
    clauses=(),
    request=None,
    now: dt.datetime,
) -> Refund:
    """A refund of `amount` (deployment currency) to `destination`, not yet saved, with its
    expected dates (L-4.2): a card refund `pending` against charge `payment_id`, due for the
    processor at once; credit `succeeded` (it moves in the deciding transaction). Save with
    `refunds_start`."""
    dates = _expected_dates(order.policy_version, destination, timezone.localdate(now))
    is_card = destination == Refund.Destination.CARD
    return Refund(
        order=order,
        request=request,
        amount=amount,
        destination=destination,
        idempotency_key=idempotency_key,
        payment_id=payment_id,
        reason=reason,
        clauses=list(clauses),
        created_by=actor,
        created_at=now,
        status=Refund.Status.PENDING if is_card else Refund.Status.SUCCEEDED,
        succeeded_at=None if is_card else now,
        processor_key=idempotency_key if is_card else "",
        next_attempt_at=now if is_card else None,
        expected_processed_by=dates.processed_by,
        expected_in_bank_from=dates.in_bank_from,
        expected_in_bank_by=dates.in_bank_by,
    )


def refunds_start(refunds: list[Refund], *, actor, role: str, now: dt.datetime) -> list[Refund]:
    """Save `refund_row`s and start their money movements, a fixed number of statements for
    any number of refunds: credit moves at once, inside this transaction (it is lojix's own
    ledger: the grants, their ledger rows, the timeline, D-7); card refunds are committed
    `pending` and the processor is called after commit, with no transaction or lock held, by
    `refunds.tasks.process_refunds` requested through the outbox. Call inside the deciding
    transaction, holding the orders' row locks; the caller has checked the amounts. Raises
    IntegrityError for an idempotency key already used (the unique constraint)."""
    Refund.objects.bulk_create(refunds)
    credit = [r for r in refunds if r.destination != Refund.Destination.CARD]
    card = [r for r in refunds if r.destination == Refund.Destination.CARD]
    if credit:
        credit_services.credit_grants_create([_credit_grant(r, now) for r in credit])
        refunds_succeeded(credit, actor=actor, role=role, now=now)
    if card:
        refunds_process_requested([r.pk for r in card], now=now)
        OrderEvent.objects.bulk_create(
            order_event(
                order=r.order,
                kind=OrderEvent.Kind.REFUND,
                name="refund_pending",
                actor=actor,
                role=role,
                message=refund_message(r),
                reason=r.reason,
                clauses=r.clauses,
                amount=r.amount,
                at=now,
            )
            for r in card
        )
    return refunds


def refunds_process_requested(refund_ids: list[int], *, now: dt.datetime) -> None:
    """Ask a worker, through the outbox (after commit), to make these card refunds' money
    movements: one `refunds.tasks.process_refunds` task per `PROCESS_TASK_CHUNK`."""
    outbox_enqueue_many(
        task="refunds.tasks.process_refunds",
        kwargs_list=[
            {"refund_ids": refund_ids[start : start + PROCESS_TASK_CHUNK]}
            for start in range(0, len(refund_ids), PROCESS_TASK_CHUNK)
        ],
        now=now,
    )


def _credit_grant(refund: Refund, now: dt.datetime) -> CreditGrant:
    is_promo = refund.destination == Refund.Destination.PROMO_CREDIT
    order = refund.order
    return credit_services.credit_grant(
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


def _card_payment_id(order: Order, destination: str) -> int | None:
    """The charge a card refund goes back to (none for credit); raises `no_card_payment`."""
    if destination != Refund.Destination.CARD:
        return None
    payment_id = refundable_payment_ids([order]).get(order.pk)
    if payment_id is None:
        raise no_card_payment()
    return payment_id


def no_card_payment() -> DomainError:
    return DomainError("no_card_payment", "Nothing was charged to a card for this order.")


def _expected_dates(version, destination: str, on: dt.date) -> policy.RefundDates:
    return _refund_dates(
        destination,
        on,
        version.refund_processing_min_days,
        version.refund_processing_max_days,
        version.bank_processing_min_days,
        version.bank_processing_max_days,
        settings.LOJIX_HOLIDAY_COUNTRY,
    )


@functools.lru_cache(maxsize=256)
def _refund_dates(destination, on, processing_min, processing_max, bank_min, bank_max, country):
    """Cached: a batch of refunds made on one day shares a few sets of dates (D-8)."""
    return policy.refund_dates(
        destination=destination,
        on=on,
        processing_min_days=processing_min,
        processing_max_days=processing_max,
        bank_min_days=bank_min,
        bank_max_days=bank_max,
        add_business_days=lambda day, n: add_business_days(day, n, country=country),
    )
