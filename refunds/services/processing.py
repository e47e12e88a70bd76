"""Card refunds through the processor, outside any transaction (D-7).

A card refund is committed `pending` by `refunds.services.execution`; `refund_process` then
makes its money movement in three steps, after Brandur Leach's recovery points and pretix's
automatic refunds: claim it in a short transaction (a lease so two workers do not both call),
call the processor with no transaction or lock held, record the outcome in a second short
transaction. An unknown outcome (error, timeout) is retried with the same key; a decline as a
new attempt with its own key; after `refund_max_attempts` support takes it over (K-OV) and may
retry it or pay it as account credit.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.display import money_text
from core.errors import DomainError
from core.roles import User
from orders.events import order_event_record
from orders.gateway import GatewayOutcome, GatewayResult, get_gateway
from orders.lock_objects import order_for_update
from orders.models import OrderEvent, is_support
from refunds import policy
from refunds.lock_objects import refund_for_update, refund_request_for_update
from refunds.models import Refund
from refunds.services.completion import refund_given_up, refund_message, refund_succeeded
from refunds.services.execution import refund_execute, refunds_process_requested


def _seconds(setting: str) -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, setting))


@dataclass(frozen=True)
class _Claim:
    key: str
    charge: str
    amount: Decimal


def refund_process(*, refund_id: int) -> str:
    """Make a due card refund's money movement once (D-7). Call with no transaction open: the
    processor is called between two short transactions, never inside one.

    Returns what happened: `succeeded`, `retrying`, `given_up`, or `skipped` (not due, already
    made, or claimed by another worker) and `stale` (another worker recorded it first).
    """
    claim = _claim(refund_id, now=timezone.now())
    if claim is None:
        return "skipped"
    result = get_gateway().refund(
        charge_reference=claim.charge,
        amount=claim.amount,
        currency=settings.LOJIX_CURRENCY,
        idempotency_key=claim.key,
    )
    return _record(refund_id, key=claim.key, result=result, now=timezone.now())


@transaction.atomic
def _claim(refund_id: int, *, now: dt.datetime) -> _Claim | None:
    refund = (
        Refund.objects.select_for_update(of=("self",))
        .select_related("payment")
        .filter(pk=refund_id, destination=Refund.Destination.CARD)
        .first()
    )
    if refund is None or refund.next_attempt_at is None or refund.next_attempt_at > now:
        return None
    # Left to this worker for the lease; if it dies meanwhile, the retry sweep takes it again.
    refund.next_attempt_at = now + _seconds("LOJIX_REFUND_CLAIM_LEASE_SECONDS")
    refund.save(update_fields=["next_attempt_at"])
    return _Claim(refund.processor_key, refund.payment.gateway_reference, refund.amount)


@transaction.atomic
def _record(refund_id: int, *, key: str, result: GatewayResult, now: dt.datetime) -> str:
    """Record the processor's answer under the locks of the order, the request and the refund
    (in that order); an answer for a key the refund no longer uses is ignored."""
    refund = _lock_with_order(refund_id)
    if refund.status == Refund.Status.SUCCEEDED or refund.processor_key != key:
        return "stale"
    if result.outcome == GatewayOutcome.SUCCEEDED:
        refund.status, refund.succeeded_at = Refund.Status.SUCCEEDED, now
        refund.gateway_reference, refund.failure_message = result.reference, ""
        refund.next_attempt_at = None
        refund.save(
            update_fields=[
                "status",
                "succeeded_at",
                "gateway_reference",
                "failure_message",
                "next_attempt_at",
            ]
        )
        refund_succeeded(refund, actor=None, role=OrderEvent.Role.SYSTEM, now=now)
        return "succeeded"
    refund.attempts += 1
    refund.status = Refund.Status.FAILED
    refund.failure_message = (result.message or "The processor did not answer.")[:240]
    if result.outcome == GatewayOutcome.DECLINED:
        refund.processor_key = policy.refund_attempt_key(
            refund.idempotency_key, refund.attempts + 1
        )
    given_up = refund.attempts >= refund.order.policy_version.refund_max_attempts
    delay = policy.refund_retry_delay(
        refund.attempts,
        first=_seconds("LOJIX_REFUND_RETRY_FIRST_SECONDS"),
        longest=_seconds("LOJIX_REFUND_RETRY_LONGEST_SECONDS"),
    )
    refund.next_attempt_at = None if given_up else now + delay
    refund.save(
        update_fields=["attempts", "status", "failure_message", "processor_key", "next_attempt_at"]
    )
    if given_up:
        refund_given_up(refund, now=now)
        return "given_up"
    return "retrying"


def _lock_with_order(refund_id: int) -> Refund:
    refund = Refund.objects.only("order_id", "request_id").get(pk=refund_id)
    order_for_update(refund.order_id)
    if refund.request_id is not None:
        refund_request_for_update(refund.request_id)
    return refund_for_update(refund_id)


@transaction.atomic
def refund_retry_by_support(*, refund_id: int, actor: User) -> Refund:
    """Support tries a refund the processor kept refusing once more (K-OV, D-7); the case
    closes when it goes through. Requires support; raises `not_found` (404) and
    `refund_not_given_up` (409)."""
    refund = _given_up_for_support(refund_id, actor)
    now = timezone.now()
    refund.next_attempt_at = now
    refund.save(update_fields=["next_attempt_at"])
    refunds_process_requested([refund.pk], now=now)
    _support_note(
        refund, actor, f"Support tries the refund of {money_text(refund.amount)} again.", now
    )
    return refund


def refund_pay_as_account_credit(*, refund_id: int, actor: User) -> Refund:
    """Support pays a card refund that kept failing as account credit instead (K-OV, D-7),
    after asking the processor whether any of its attempts went through after all (then that
    is recorded and nothing else moves). Returns the refund that paid. Requires support;
    raises `not_found` (404), `refund_not_given_up` and `refund_made_after_all` (409). Call with
    no transaction open."""
    refund = Refund.objects.filter(pk=refund_id).first()
    if refund is None or not is_support(actor):
        raise DomainError("not_found", f"There is no refund {refund_id}.", kind="not_found")
    made = _attempt_the_processor_made(refund)
    if made is not None:
        _record(refund.pk, key=refund.processor_key, result=made, now=timezone.now())
        raise DomainError(
            "refund_made_after_all",
            "The processor made this refund after all; it is now recorded as sent.",
            clauses=["K-OV"],
        )
    return _replace_with_account_credit(refund_id, actor)


def _attempt_the_processor_made(refund: Refund) -> GatewayResult | None:
    gateway = get_gateway()
    for attempt in range(1, refund.attempts + 2):
        record = gateway.find(
            idempotency_key=policy.refund_attempt_key(refund.idempotency_key, attempt)
        )
        if record is not None and record.status == GatewayOutcome.SUCCEEDED:
            Refund.objects.filter(pk=refund.pk).update(processor_key=record.idempotency_key)
            refund.processor_key = record.idempotency_key
            return GatewayResult(GatewayOutcome.SUCCEEDED, record.reference)
    return None


@transaction.atomic
def _replace_with_account_credit(refund_id: int, actor: User) -> Refund:
    refund = _given_up_for_support(refund_id, actor)
    credit = refund_execute(
        order_id=refund.order_id,
        amount=refund.amount,
        destination=Refund.Destination.ACCOUNT_CREDIT,
        idempotency_key=f"{refund.idempotency_key}:as-account-credit",
        actor=actor,
        role=OrderEvent.Role.SUPPORT,
        reason=f"{refund.reason} (paid as account credit: the card refund kept failing)",
        clauses=[*refund.clauses, "K-OV"],
        request=refund.request,
        replacing=refund,
    )
    refund.replaced_by = credit
    refund.save(update_fields=["replaced_by"])
    return credit


def _given_up_for_support(refund_id: int, actor: User) -> Refund:
    if not is_support(actor):
        raise DomainError("not_found", f"There is no refund {refund_id}.", kind="not_found")
    refund = _lock_with_order(refund_id)
    if not (
        refund.status == Refund.Status.FAILED
        and refund.next_attempt_at is None
        and refund.replaced_by_id is None
    ):
        raise DomainError(
            "refund_not_given_up",
            "Only a refund that failed its last attempt can be retried or paid as credit.",
        )
    return refund


def _support_note(refund: Refund, actor: User, message: str, now: dt.datetime) -> None:
    order_event_record(
        order=refund.order,
        kind=OrderEvent.Kind.REFUND,
        name="refund_retry",
        actor=actor,
        role=OrderEvent.Role.SUPPORT,
        message=f"{message} {refund_message(refund)}",
        clauses=("K-OV",),
        amount=refund.amount,
        at=now,
    )
