"""Read queries for the platform's oversight (K-OV) and its incidents (L-10)."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Case, Count, F, OuterRef, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce

from core.money import ZERO
from core.money_db import MONEY_FIELD, Cents, MoneySum
from core.roles import SUPERVISOR, SUPPORT_AGENT
from disputes.models import Incident, Intervention
from orders.models import Order, Restaurant
from orders.selectors import order_cancellation_support_decides_at
from refunds.models import Refund, RefundRequest
from refunds.selectors import MONEY_BACK


def order_ids_with_unanswered_cancellation(*, now: dt.datetime, limit: int) -> list[int]:
    """Orders whose cancellation request has waited longer than the pinned version's
    `cancellation_response_minutes`, not yet handed to support; oldest first."""
    waiting = (
        Order.objects.filter(status=Order.Status.CANCELLATION_REQUESTED)
        .exclude(
            interventions__kind=Intervention.Kind.UNANSWERED_CANCELLATION,
            interventions__status=Intervention.Status.OPEN,
        )
        .select_related("policy_version")
        .only("pk", "cancellation_requested_at", "policy_version__cancellation_response_minutes")
        .order_by("cancellation_requested_at", "pk")
    )
    due = []
    for order in waiting.iterator(chunk_size=500):
        if order_cancellation_support_decides_at(order) <= now:
            due.append(order.pk)
            if len(due) == limit:
                break
    return due


def refund_requests_with_unanswered_verification(
    *, now: dt.datetime, limit: int
) -> list[tuple[int, int]]:
    """Refund requests support asked the restaurant to verify (`awaiting_restaurant`) that
    have waited longer than their order's pinned `verification_response_hours`, with no open
    `unanswered_verification` case: (request id, order id) pairs, the longest waiting first.
    Reads the partial index on `restaurant_asked_at` (only the waiting requests are in it)."""
    waiting = (
        RefundRequest.objects.filter(
            status=RefundRequest.Status.AWAITING_RESTAURANT, restaurant_asked_at__lte=now
        )
        .exclude(
            interventions__kind=Intervention.Kind.UNANSWERED_VERIFICATION,
            interventions__status=Intervention.Status.OPEN,
        )
        .values_list(
            "pk",
            "order_id",
            "restaurant_asked_at",
            "order__policy_version__verification_response_hours",
        )
        .order_by("restaurant_asked_at", "pk")
    )
    due = []
    for request_id, order_id, asked_at, hours in waiting.iterator(chunk_size=500):
        if asked_at + dt.timedelta(hours=hours) <= now:
            due.append((request_id, order_id))
            if len(due) == limit:
                break
    return due


def intervention_queue() -> QuerySet[Intervention]:
    return Intervention.objects.filter(status=Intervention.Status.OPEN).select_related(
        "order", "order__restaurant", "order__buyer"
    )


# -- incidents (L-10) ------------------------------------------------------------------------


@dataclass(frozen=True)
class RestaurantShare:
    """One restaurant's part of an outage: its orders and their money (deployment currency)."""

    restaurant_id: int
    restaurant: str
    orders: int
    amount: Decimal


@dataclass(frozen=True)
class OutageEstimate:
    """What an outage's bulk refund would give back now (its dry run): the orders, the money
    and the split per restaurant (by name)."""

    affected_orders: int
    total_amount: Decimal
    per_restaurant: tuple[RestaurantShare, ...]


def outage_affected_orders(
    *, starts_at: dt.datetime, ends_at: dt.datetime, restaurant_ids: list[int]
) -> QuerySet[Order]:
    """The orders an outage affects (L-10): placed in its window (both ends included) at its
    restaurants (`restaurant_ids`, empty for all), not already refunded in full, each annotated
    with `refundable`: what was paid (card and account credit) less every refund not replaced
    (pending ones count, D-7). Reads the `placed_at` index."""
    refunded = (
        Refund.objects.filter(
            order=OuterRef("pk"), replaced_by__isnull=True, destination__in=MONEY_BACK
        )
        .order_by()
        .values("order")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    orders = Order.objects.filter(placed_at__gte=starts_at, placed_at__lte=ends_at)
    if restaurant_ids:
        orders = orders.filter(restaurant_id__in=restaurant_ids)
    already = Coalesce(Subquery(refunded, output_field=MONEY_FIELD), Value(ZERO))
    return orders.annotate(
        refundable=Cents(F("amount_charged") + F("account_credit_applied") - already)
    ).filter(refundable__gt=0)


def outage_estimate(
    *, starts_at: dt.datetime, ends_at: dt.datetime, restaurant_ids: list[int]
) -> OutageEstimate:
    """The dry run of an outage's bulk refund (L-10): `outage_affected_orders` added up per
    restaurant, in one query, writing nothing."""
    rows = (
        outage_affected_orders(starts_at=starts_at, ends_at=ends_at, restaurant_ids=restaurant_ids)
        .order_by()
        .values("restaurant_id", "restaurant__name")
        .annotate(orders=Count("pk"), amount=MoneySum("refundable"))
        .order_by("restaurant__name", "restaurant_id")
    )
    shares = tuple(
        RestaurantShare(r["restaurant_id"], r["restaurant__name"], r["orders"], r["amount"])
        for r in rows
    )
    return OutageEstimate(
        affected_orders=sum(share.orders for share in shares),
        total_amount=sum((share.amount for share in shares), ZERO),
        per_restaurant=shares,
    )


def incident_restaurant_ids(incident: Incident) -> list[int]:
    """The restaurants an incident names, by id (empty: all). One query."""
    return sorted(incident.restaurants.values_list("pk", flat=True))


def incident_estimate(incident: Incident) -> OutageEstimate:
    """`outage_estimate` over an outage incident's window and restaurants (two queries)."""
    return outage_estimate(
        starts_at=incident.starts_at,
        ends_at=incident.ends_at,
        restaurant_ids=incident_restaurant_ids(incident),
    )


def outage_order_ids_to_refund(
    incident: Incident, *, restaurant_ids: list[int], after: int | None, limit: int
) -> list[int]:
    """The next `limit` orders an outage still has to refund, by id after the keyset `after`."""
    orders = outage_affected_orders(
        starts_at=incident.starts_at, ends_at=incident.ends_at, restaurant_ids=restaurant_ids
    )
    if after is not None:
        orders = orders.filter(pk__gt=after)
    return list(orders.order_by("pk").values_list("pk", flat=True)[:limit])


def outage_refund_key_prefix(incident_id: int) -> str:
    """Every refund of an outage's bulk refund has a key `outage:<incident>:<order>:<part>`."""
    return f"outage:{incident_id}:"


def outage_refunds_by_restaurant(incident: Incident) -> tuple[RestaurantShare, ...]:
    """What an outage's bulk refund has given back so far, per restaurant (its summary), from
    the refunds it made, in one query."""
    rows = (
        Refund.objects.filter(idempotency_key__startswith=outage_refund_key_prefix(incident.pk))
        .order_by()
        .values("order__restaurant_id", "order__restaurant__name")
        .annotate(orders=Count("order", distinct=True), amount=MoneySum("amount"))
        .order_by("order__restaurant__name", "order__restaurant_id")
    )
    return tuple(
        RestaurantShare(
            r["order__restaurant_id"], r["order__restaurant__name"], r["orders"], r["amount"]
        )
        for r in rows
    )


def incident_ids_refunding(*, limit: int) -> list[int]:
    """Outages whose bulk refund is started and not finished, the oldest started first."""
    return list(
        Incident.objects.filter(kind=Incident.Kind.OUTAGE, status=Incident.Status.REFUNDING)
        .order_by("refund_started_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def incident_detail_queryset() -> QuerySet[Incident]:
    return Incident.objects.select_related(
        "opened_by", "refund_started_by", "assigned_to", "closed_by", "order", "refund_request"
    ).prefetch_related("restaurants")


def allergen_investigations_for_partner(user) -> QuerySet[Incident]:
    """The allergen investigations (L-10) against the partner's restaurants, open ones first
    and the newest first, with their order and restaurants."""
    return (
        Incident.objects.filter(
            kind=Incident.Kind.ALLERGEN, restaurants__in=Restaurant.objects.filter(members=user)
        )
        .distinct()
        .select_related("order", "assigned_to")
        .prefetch_related("restaurants")
        .order_by(
            Case(When(status=Incident.Status.CLOSED, then=Value(1)), default=Value(0)),
            "-created_at",
        )
    )


def incident_for_refund_run(incident_id: int) -> Incident | None:
    """The outage whose bulk refund is running (`refunding`), with who started it; None if it
    is not (not started, finished, or not an outage)."""
    return (
        Incident.objects.filter(
            pk=incident_id, kind=Incident.Kind.OUTAGE, status=Incident.Status.REFUNDING
        )
        .select_related("refund_started_by")
        .first()
    )


def support_user_list() -> QuerySet:
    """Staff who may work an investigation (agents and supervisors), by username."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[SUPPORT_AGENT, SUPERVISOR])
        .distinct()
        .order_by("username")
    )
