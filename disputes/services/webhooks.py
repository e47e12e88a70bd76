"""The processor's webhook (D-10): signed events, each stored once by its id; a chargeback
opened at the bank becomes a `Chargeback` (L-8.2). A refused call changes nothing."""

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import DomainError, InvalidInput
from core.safe_json import UnsafeJson, safe_json_loads
from disputes.models import GatewayEvent
from disputes.services.chargebacks import chargeback_open
from orders.gateway import webhook_signature_problem
from orders.models import Payment

CHARGEBACK_OPENED = "chargeback.opened"
# Events the processor sends that lojix stores but does not act on: the refund worker learns
# each refund's outcome from its own call (D-7).
RECORDED_ONLY = ("refund.settled", "refund.failed")


def gateway_event_receive(*, body: bytes, signature: str) -> tuple[GatewayEvent, bool]:
    """Verify and record one webhook call, then act on it in the same transaction: an
    unsigned, wrongly signed or stale call (over `LOJIX_GATEWAY_WEBHOOK_TOLERANCE_SECONDS`) is
    refused before anything is read; an event id already stored is refused by the table's
    unique constraint (two deliveries at once store it once). Returns (event, handled).

    Errors, all changing nothing: 400 `signature_missing`, `signature_invalid`,
    `signature_stale`, `webhook_not_configured`, `invalid_event`, `unknown_event_type`,
    `unknown_charge`, `invalid_amount` and the chargeback's other input errors; 409
    `event_replayed`."""
    problem = webhook_signature_problem(
        secret=settings.LOJIX_GATEWAY_WEBHOOK_SECRET,
        header=signature,
        body=body,
        now=int(timezone.now().timestamp()),
        tolerance=settings.LOJIX_GATEWAY_WEBHOOK_TOLERANCE_SECONDS,
    )
    if problem is not None:
        raise InvalidInput(*problem)
    event_id, event_type, data = _event(body)
    try:
        with transaction.atomic():
            event = GatewayEvent.objects.create(
                event_id=event_id, type=event_type, payload=safe_json_loads(body)
            )
            if event_type != CHARGEBACK_OPENED:
                return event, False
            event.chargeback, _ = _chargeback_opened(data)
            event.save(update_fields=["chargeback"])
            return event, True
    except IntegrityError as error:
        if GatewayEvent.objects.filter(event_id=event_id).exists():
            raise DomainError(
                "event_replayed", f"Event {event_id} was already received; nothing changed."
            ) from error
        raise


def _event(body: bytes) -> tuple[str, str, dict]:
    try:
        event = safe_json_loads(body)
    except UnsafeJson as error:
        raise InvalidInput("invalid_event", f"The body is refused: {error.detail}") from error
    except ValueError as error:  # not UTF-8, not JSON
        raise InvalidInput("invalid_event", "The body is not JSON.") from error
    if not isinstance(event, dict):
        raise InvalidInput("invalid_event", "The body must be a JSON object.")
    event_id, event_type, data = event.get("id"), event.get("type"), event.get("data")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 120:
        raise InvalidInput("invalid_event", "The event has no id.")
    if not isinstance(data, dict):
        raise InvalidInput("invalid_event", "The event has no data object.")
    if event_type != CHARGEBACK_OPENED and event_type not in RECORDED_ONLY:
        raise InvalidInput("unknown_event_type", f"Unknown event type {event_type!r}.")
    return event_id, event_type, data


def _chargeback_opened(data: dict):
    """`data`: `charge_reference`, `amount` (a string in cents), `currency`, `bank_reference`,
    `reason_code`, optional `evidence_due_by` (ISO 8601)."""
    charge = str(data.get("charge_reference") or "")
    payment = Payment.objects.filter(
        gateway_reference=charge, status=Payment.Status.SUCCEEDED
    ).first()
    if not charge or payment is None:
        raise InvalidInput("unknown_charge", f"No payment has the charge {charge!r}.")
    if data.get("currency") != settings.LOJIX_CURRENCY:
        raise InvalidInput("invalid_event", f"The currency is not {settings.LOJIX_CURRENCY}.")
    return chargeback_open(
        order_id=payment.order_id,
        amount=data.get("amount"),
        bank_reference=str(data.get("bank_reference") or ""),
        reason_code=str(data.get("reason_code") or ""),
        actor=None,
        evidence_due_by=_due_by(data.get("evidence_due_by")),
        charge_reference=charge,
    )


def _due_by(value) -> dt.datetime | None:
    if value in (None, ""):
        return None
    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput("invalid_event", "evidence_due_by must be an ISO 8601 moment.")
    return moment
