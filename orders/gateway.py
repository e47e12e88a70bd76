"""The payment gateway interface and the built-in simulated gateway (D-5 `Payment`).

A real processor plugs in by implementing `PaymentGateway` and naming the class in
`LOJIX_PAYMENT_GATEWAY`. Every call carries an idempotency key: calling twice with the same key
returns the first result and moves no more money, as real processors do.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils.module_loading import import_string

from core.money import ZERO


@dataclass(frozen=True)
class GatewayResult:
    succeeded: bool
    reference: str
    message: str = ""


class PaymentGateway(Protocol):
    name: str

    def charge(
        self, *, amount: Decimal, currency: str, idempotency_key: str, description: str
    ) -> GatewayResult: ...

    def refund(
        self, *, charge_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult: ...


def get_gateway() -> PaymentGateway:
    return import_string(settings.LOJIX_PAYMENT_GATEWAY)()


class SimulatedGateway:
    """Records charges and refunds in `GatewayOperation`. It refuses a refund that would take
    back more than its charge, and declines charges described with `DECLINE` (for tests)."""

    name = "simulated"

    def charge(self, *, amount, currency, idempotency_key, description):
        declined = "DECLINE" in description
        return self._record(
            kind="charge",
            idempotency_key=idempotency_key,
            amount=amount,
            currency=currency,
            succeeded=not declined,
            message="Card declined." if declined else "",
        )

    def refund(self, *, charge_reference, amount, currency, idempotency_key):
        from orders.models import GatewayOperation

        charge = GatewayOperation.objects.select_for_update().get(
            reference=charge_reference, kind="charge", succeeded=True
        )
        refunded = (
            charge.refunds.filter(succeeded=True)
            .exclude(idempotency_key=idempotency_key)
            .aggregate(total=Sum("amount"))["total"]
            or ZERO
        )
        too_much = refunded + amount > charge.amount
        return self._record(
            kind="refund",
            idempotency_key=idempotency_key,
            amount=amount,
            currency=currency,
            charge=charge,
            succeeded=not too_much,
            message="Refund exceeds the charge." if too_much else "",
        )

    def _record(self, *, idempotency_key, **fields) -> GatewayResult:
        from orders.models import GatewayOperation

        try:
            with transaction.atomic():
                operation = GatewayOperation.objects.create(
                    idempotency_key=idempotency_key, **fields
                )
        except IntegrityError:
            operation = GatewayOperation.objects.get(idempotency_key=idempotency_key)
        return GatewayResult(operation.succeeded, operation.reference, operation.message)
