"""Thousands of real orders fast, for the tests that need them (issue 8: a sweep over 5,000 late
orders). Placing an order through the services costs about 30 ms (5,000 take 2.5 minutes on the
CI machine), so one order is placed and moved on through the services and the rest are made
exactly like it in bulk, each paid by a charge of its own that the processor really made."""

import uuid

from django.conf import settings
from django.db import transaction

from core.money import ZERO
from orders.gateway import get_gateway
from orders.models import Order, OrderEvent, OrderItem, Payment


@transaction.atomic
def orders_like(template: Order, count: int) -> list[Order]:
    """`count` more orders like `template`, an order paid by card alone that the services placed
    (and moved on): the same fields (buyer, restaurant, status, money, times, pinned version and
    terms), lines and timeline, and a payment of the same amount that the processor charged
    under a checkout key of its own, through the gateway as placement charges (D-7). Processor
    records are dated by the clock, as placement's are: call it at the template's placement
    time. Returns the new orders with their primary keys."""
    [payment] = template.payments.all()
    assert template.discount_code_id is None
    assert template.promo_credit_applied == template.account_credit_applied == ZERO
    charges = [_charge(template, payment) for _ in range(count)]
    orders = Order.objects.bulk_create(
        [Order(**_copied(template, Order)) for _ in range(count)], batch_size=1000
    )
    _copy_rows(OrderItem, template.items.all(), orders)
    _copy_rows(OrderEvent, template.events.order_by("pk"), orders)
    Payment.objects.bulk_create(
        [
            Payment(**{**_copied(payment, Payment), "order_id": order.pk, **charge})
            for order, charge in zip(orders, charges, strict=True)
        ],
        batch_size=1000,
    )
    return orders


def _charge(template: Order, payment: Payment) -> dict:
    key = f"checkout:{uuid.uuid4()}"
    result = get_gateway().charge(
        amount=payment.amount,
        currency=settings.LOJIX_CURRENCY,
        idempotency_key=key,
        description=f"lojix checkout at {template.restaurant.name}",
    )
    assert result.succeeded, result
    return {"idempotency_key": key, "gateway_reference": result.reference}


def _copied(row, model) -> dict:
    """The row's column values, without its primary key."""
    return {
        field.attname: getattr(row, field.attname)
        for field in model._meta.concrete_fields
        if not field.primary_key
    }


def _copy_rows(model, rows, orders: list[Order]) -> None:
    values = [_copied(row, model) for row in rows]
    model.objects.bulk_create(
        [model(**{**row, "order_id": order.pk}) for order in orders for row in values],
        batch_size=2000,
    )
