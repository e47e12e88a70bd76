"""The money invariants of D-7, checked by `manage.py check_ledgers` and after every test."""

from django.db.models import Count, F, OuterRef, Prefetch, Q, Subquery, Value
from django.db.models.functions import Coalesce

from core.money import ZERO
from core.money_db import MONEY_FIELD, Cents, MoneySum
from credits.models import CreditGrant, CreditTransaction
from disputes.models import Chargeback
from orders.gateway import PaymentGateway, get_gateway
from orders.models import Order, Payment
from refunds.models import Refund, RestaurantLedgerEntry


def _sum(queryset, group_by: str):
    """A correlated subquery: the sum of `amount` over `queryset` (0 when empty)."""
    totals = queryset.order_by().values(group_by).annotate(total=MoneySum("amount")).values("total")
    return Cents(Coalesce(Subquery(totals), Value(ZERO), output_field=MONEY_FIELD))


def _refunded(order_ref, destinations):
    refunds = Refund.objects.filter(
        order=order_ref, status=Refund.Status.SUCCEEDED, destination__in=destinations
    )
    return _sum(refunds, "order")


def _charged_back(order_ref):
    """What lost and accepted chargebacks took back of the order's card payment (L-8.2)."""
    chargebacks = Chargeback.objects.filter(
        order=order_ref, status__in=Chargeback.MONEY_MOVES_STATUSES
    )
    totals = (
        chargebacks.order_by().values("order").annotate(total=MoneySum("amount_at_stake"))
    ).values("total")
    return Cents(Coalesce(Subquery(totals), Value(ZERO), output_field=MONEY_FIELD))


def refund_violations() -> list[str]:
    """Refunds of money plus chargebacks never exceed what was paid (L-7.2, L-8.2), and each
    refund moved money once."""
    problems = []
    orders = Order.objects.annotate(
        refunded=_refunded(OuterRef("pk"), ["card", "account_credit"]),
        refunded_card=_refunded(OuterRef("pk"), ["card"]),
        charged_back=_charged_back(OuterRef("pk")),
    ).filter(
        Q(refunded__gt=Cents(F("amount_charged") + F("account_credit_applied") - F("charged_back")))
        | Q(refunded_card__gt=Cents(F("amount_charged") - F("charged_back")))
    )
    for order in orders:
        problems.append(
            f"{order}: refunded {order.refunded} ({order.refunded_card} to card) and charged "
            f"back {order.charged_back} but paid {order.amount_paid} ({order.amount_charged} "
            "by card)"
        )
    succeeded = Refund.objects.filter(status=Refund.Status.SUCCEEDED)
    credit = succeeded.exclude(destination=Refund.Destination.CARD).annotate(
        grants=Count("credit_grant")
    )
    problems += [f"{r} ({r.idempotency_key}): no credit grant" for r in credit if r.grants != 1]
    unsettled = Refund.objects.exclude(status=Refund.Status.SUCCEEDED).filter(
        credit_grant__isnull=False
    )
    problems += [f"{r} ({r.idempotency_key}): credit granted but not succeeded" for r in unsettled]
    return problems


def credit_violations() -> list[str]:
    """Each grant's `remaining` equals the sum of its ledger."""
    grants = CreditGrant.objects.annotate(
        ledger=_sum(CreditTransaction.objects.filter(grant=OuterRef("pk")), "grant")
    ).exclude(remaining=F("ledger"))
    return [f"{g}: remaining {g.remaining} but ledger sums to {g.ledger}" for g in grants]


def payment_violations() -> list[str]:
    """Each order's successful card payments add up to what it charged."""
    orders = Order.objects.annotate(
        paid=_sum(
            Payment.objects.filter(order=OuterRef("pk"), status=Payment.Status.SUCCEEDED), "order"
        )
    ).exclude(paid=F("amount_charged"))
    return [f"{o}: charged {o.amount_charged} but payments total {o.paid}" for o in orders]


def order_violations() -> list[str]:
    """Each order's money adds up (D-7): total = lines + fee - discount, and the card paid the
    total less credit."""
    problems = []
    for order in Order.objects.only(*Order.MONEY_FIELDS).iterator(chunk_size=2000):
        if order.total != order.subtotal + order.delivery_fee - order.discount_amount:
            problems.append(f"{order}: total {order.total} is not lines + fee - discount")
        credit = order.promo_credit_applied + order.account_credit_applied
        if order.amount_charged != order.total - credit:
            problems.append(f"{order}: charged {order.amount_charged} is not total - credit")
    return problems


def restaurant_ledger_violations() -> list[str]:
    """A restaurant is booked a sale only for a fulfilled order, at its food value less the
    discount, and keeps a cancellation fee only as quoted on an order cancelled at its request."""
    sales = RestaurantLedgerEntry.objects.filter(kind="sale").select_related("order")
    problems = [
        f"{e}: order #{e.order_id} is {e.order.status}, sold at {e.amount}"
        for e in sales
        if not (e.order.status in Order.COMPLETED_STATUSES or _sold_before_reported_missing(e))
        or e.amount != e.order.subtotal - e.order.discount_amount
    ]
    fees = RestaurantLedgerEntry.objects.filter(kind="cancellation_fee").select_related("order")
    problems += [
        f"{e}: order #{e.order_id} quoted {e.order.cancellation_fee}"
        for e in fees
        if e.order.status != Order.Status.CANCELLED or e.amount != e.order.cancellation_fee
    ]
    return problems


def _sold_before_reported_missing(sale: RestaurantLedgerEntry) -> bool:
    """L-6.2, L-9: a sale booked at the delivery mark stands when the buyer then reports the
    order missing, whatever the case ends in (the loss after the handover is not the
    restaurant's)."""
    reported_at = sale.order.reported_missing_at
    return (
        sale.order.status in (Order.Status.MISSING, Order.Status.UNDELIVERABLE)
        and reported_at is not None
        and sale.created_at <= reported_at
    )


def processor_violations() -> list[str]:
    """lojix's card money agrees with the processor's own records (D-5 `Payment`).

    Every succeeded payment is a succeeded processor charge with its reference and amount; every
    succeeded card refund is a succeeded processor refund of that charge with its reference and
    amount; and the processor refunded nothing of a charge that lojix does not know as a
    succeeded refund, or as a refund still being tried under that very key and amount (D-7: the
    processor's answer was lost, or a worker has not recorded it yet; the retry with the same
    key records it). Charges the processor made without a payment in lojix (a placement rolled
    back after charging) are not lojix's money and are not reported here. Asks the configured
    gateway about the payments it made (`Payment.gateway`).
    """
    gateway = get_gateway()
    card = Refund.objects.filter(destination=Refund.Destination.CARD)
    card_refunds = card.filter(status=Refund.Status.SUCCEEDED)
    being_tried = card.filter(
        status__in=[Refund.Status.PENDING, Refund.Status.FAILED],
        replaced_by__isnull=True,
        next_attempt_at__isnull=False,
    )
    payments = (
        Payment.objects.filter(gateway=gateway.name)
        .filter(Q(status=Payment.Status.SUCCEEDED) | Q(refunds__in=card_refunds))
        .distinct()
        .prefetch_related(
            Prefetch("refunds", queryset=card_refunds, to_attr="card_refunds"),
            Prefetch("refunds", queryset=being_tried, to_attr="refunds_being_tried"),
        )
    )
    problems = []
    for payment in payments.iterator(chunk_size=2000):
        problems += _charge_problems(gateway, payment) + _refund_problems(gateway, payment)
    return problems + chargeback_violations(gateway)


def chargeback_violations(gateway: PaymentGateway) -> list[str]:
    """Every settled chargeback (lost or accepted, money moved, L-8.2) is a succeeded processor
    chargeback of its payment's charge with its reference and amount; the processor took back
    nothing by chargeback that lojix does not record as settled; and a chargeback is settled
    only once it was lost or accepted."""
    problems = [
        f"{c}: settled but {c.status}"
        for c in Chargeback.objects.filter(settled_at__isnull=False).exclude(
            status__in=Chargeback.MONEY_MOVES_STATUSES
        )
    ]
    payments = Payment.objects.filter(gateway=gateway.name, chargebacks__isnull=False).distinct()
    for payment in payments.prefetch_related("chargebacks"):
        settled = {  # a chargeback the refunds already covered settles with nothing to move
            c.settlement_reference: c
            for c in payment.chargebacks.all()
            if c.settled_at and c.amount_at_stake > ZERO
        }
        made = {
            record.reference: record
            for record in gateway.chargebacks_of(charge_reference=payment.gateway_reference)
            if record.status == "succeeded"
        }
        problems += [
            f"{c}: no processor chargeback {reference} of {c.amount_at_stake}"
            for reference, c in settled.items()
            if reference not in made or made[reference].amount != c.amount_at_stake
        ]
        problems += [
            f"Payment {payment}: the processor took back {record.amount} ({record.reference}) "
            "by a chargeback lojix does not record as settled"
            for reference, record in made.items()
            if reference not in settled
        ]
    return problems


def _charge_problems(gateway: PaymentGateway, payment: Payment) -> list[str]:
    if payment.status != Payment.Status.SUCCEEDED:
        return []
    charge = gateway.find(idempotency_key=payment.idempotency_key)
    if charge is None or charge.kind != "charge" or charge.status != "succeeded":
        found = f"{charge.kind} {charge.status}" if charge else "nothing"
        return [f"Payment {payment} ({payment.idempotency_key}): the processor has {found}"]
    if (charge.reference, charge.amount) != (payment.gateway_reference, payment.amount):
        return [
            f"Payment {payment} ({payment.idempotency_key}): the processor charged "
            f"{charge.amount} as {charge.reference}"
        ]
    return []


def _refund_problems(gateway: PaymentGateway, payment: Payment) -> list[str]:
    made = {
        record.reference: record
        for record in gateway.refunds_of(charge_reference=payment.gateway_reference)
        if record.status == "succeeded"
    }
    problems = [
        f"{refund} ({refund.idempotency_key}): no processor refund {refund.gateway_reference} "
        f"of {refund.amount}"
        for refund in payment.card_refunds
        if refund.gateway_reference not in made
        or made[refund.gateway_reference].amount != refund.amount
    ]
    known = {refund.gateway_reference for refund in payment.card_refunds}
    tried = {refund.processor_key: refund.amount for refund in payment.refunds_being_tried}
    unrecorded = [
        record
        for record in made.values()
        if record.reference not in known and tried.get(record.idempotency_key) == record.amount
    ]
    problems += [
        f"Payment {payment}: the processor refunded {record.amount} ({record.reference}, key "
        f"{record.idempotency_key}) that lojix does not record as a succeeded refund"
        for record in made.values()
        if record.reference not in known and record not in unrecorded
    ]
    ours = sum((refund.amount for refund in payment.card_refunds), ZERO)
    ours += sum((record.amount for record in unrecorded), ZERO)
    theirs = sum((record.amount for record in made.values()), ZERO)
    if ours != theirs:
        problems.append(
            f"Payment {payment}: lojix refunded {ours} to the card, the processor {theirs}"
        )
    return problems


def ledger_violations() -> list[str]:
    return (
        order_violations()
        + refund_violations()
        + credit_violations()
        + payment_violations()
        + restaurant_ledger_violations()
        + processor_violations()
    )
