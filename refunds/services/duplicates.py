"""A duplicate charge (L-3.1): the buyer paid twice for one order that stands. The second charge
is found in the card processor's records and cancelled in full; the order's own payment is not
touched (D-7).

`duplicate_charge_settle` runs as a task after the claim commits, in the three steps of every
processor call: read and cancel at the processor with no transaction held, then record the
outcome in a short transaction under the order's and the request's locks.
"""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.money import ZERO
from core.services import notify
from orders.gateway import VOIDED, GatewayOutcome, ProcessorRecord, get_gateway
from orders.lock_objects import order_for_update
from orders.models import Order, Payment
from refunds import policy
from refunds.events import refund_request_event_record, refund_request_step
from refunds.lock_objects import refund_request_for_update
from refunds.models import RefundRequest

# How far from the order's placement a second charge of the same buyer is looked for.
SEARCH_WINDOW = dt.timedelta(hours=2)
CHECK_CODE = "duplicate_charge_check"


def duplicate_charge_settle(*, request_id: int) -> str:
    """Find the second charge a `duplicate_charge` claim is about and cancel it in full (L-3.1).
    Call with no transaction open. Returns `cancelled`, `not_found` (left with support) or
    `skipped` (not waiting for this check, e.g. run twice)."""
    request = RefundRequest.objects.select_related("order").get(pk=request_id)
    if not _waiting_for_check(request):
        return "skipped"
    cancelled = sum(
        (charge.amount for charge in _extra_charges(request.order) if _cancel(charge)), ZERO
    )
    return _record(request_id, cancelled=cancelled, now=timezone.now())


def _waiting_for_check(request: RefundRequest) -> bool:
    return (
        request.status == RefundRequest.Status.UNDER_REVIEW and request.suggested_code == CHECK_CODE
    )


def _extra_charges(order: Order) -> list[ProcessorRecord]:
    """The buyer's checkout charges around the order that no lojix order recorded (their keys
    start with the buyer's checkout prefix, D-7)."""
    charges = get_gateway().charges_between(
        start=order.placed_at - SEARCH_WINDOW, end=order.placed_at + SEARCH_WINDOW
    )
    mine = [
        charge
        for charge in charges
        if charge.idempotency_key.startswith(f"checkout:{order.buyer_id}:")
        and charge.status in (GatewayOutcome.SUCCEEDED, VOIDED)
    ]
    recorded = set(
        Payment.objects.filter(gateway_reference__in=[c.reference for c in mine]).values_list(
            "gateway_reference", flat=True
        )
    )
    return [charge for charge in mine if charge.reference not in recorded]


def _cancel(charge: ProcessorRecord) -> bool:
    """Void the charge under the same key as the orphan-charge reconciliation, so the two never
    cancel it twice; a charge that reconciliation already voided counts as cancelled."""
    if charge.status == VOIDED:
        return True
    result = get_gateway().void(
        charge_reference=charge.reference, idempotency_key=f"void:{charge.reference}"
    )
    return result.succeeded


@transaction.atomic
def _record(request_id: int, *, cancelled: Decimal, now: dt.datetime) -> str:
    request = RefundRequest.objects.only("order_id").get(pk=request_id)
    order_for_update(request.order_id)
    request = refund_request_for_update(request_id)
    if not _waiting_for_check(request):
        return "skipped"
    decision = policy.duplicate_charge_found(cancelled, settings.LOJIX_CURRENCY)
    if decision.route != policy.Route.AUTOMATIC:
        refund_request_event_record(
            request,
            name="duplicate_charge_not_found",
            from_status=request.status,
            actor=None,
            role="policy",
            at=now,
            clauses=decision.clauses,
            message=decision.detail,
        )
        request.suggested_code = decision.code
        request.save(update_fields=["suggested_code"])
        return "not_found"
    changes = {
        "decided_amount": decision.amount,
        "resolution": RefundRequest.Resolution.CHARGE_CANCELLED,
        "explanation": decision.detail,
        "decision_clauses": list(decision.clauses),
        "suggested_code": decision.code,
        "suggested_amount": decision.amount,
    }
    refund_request_step(
        request,
        request.approve,
        actor=None,
        role="policy",
        at=now,
        clauses=decision.clauses,
        message=decision.detail,
        **changes,
    )
    refund_request_step(
        request,
        request.mark_refunded,
        actor=None,
        role="policy",
        at=now,
        clauses=decision.clauses,
        message=decision.detail,
    )
    notify(
        user=request.buyer,
        title=f"Refund request #{request.pk}: second charge cancelled",
        body=decision.detail,
        url=request.get_absolute_url(),
    )
    return "cancelled"
