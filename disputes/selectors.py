"""Read queries for the platform's oversight (K-OV) and its incidents (L-10)."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from core.money import ZERO
from core.money_db import MONEY_FIELD, Cents, MoneySum
from core.roles import SUPERVISOR, SUPPORT_AGENT
from disputes import policy
from disputes.models import Chargeback, Escalation, Incident, Intervention, Suspension
from orders.models import Order, OrderEvent, Restaurant
from orders.selectors import order_cancellation_support_decides_at
from refunds.models import Refund, RefundEvidence, RefundMessage, RefundRequest
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


# -- escalations (L-8.1, K-DR) ----------------------------------------------------------------

UNDECIDED_ESCALATION = [Escalation.Status.OPEN, Escalation.Status.UNDER_REVIEW]


def refund_request_decided_as(request: RefundRequest) -> str:
    """How the request was decided: `denied`, `partially_approved` (also once its money moved:
    a refunded request whose decision was a partial approval), `approved`, or `undecided`."""
    Status = RefundRequest.Status
    if request.status in (Status.DENIED, Status.PARTIALLY_APPROVED, Status.APPROVED):
        return request.status
    if request.status == Status.REFUNDED:
        partial = any(event.name == "partially_approve" for event in request.events.all())
        return Status.PARTIALLY_APPROVED if partial else Status.APPROVED
    return "undecided"


def escalation_facts_for_request(request: RefundRequest) -> policy.EscalationFacts:
    """The facts `policy.escalation_eligibility` takes for a refund decision (L-8.1)."""
    return policy.EscalationFacts(
        subject=policy.REFUND_DECISION,
        decided_as=refund_request_decided_as(request),
        awaits_second_approval=request.needs_second_approval
        and request.second_approved_by_id is None,
        already_escalated=Escalation.objects.filter(refund_request=request).exists(),
    )


def order_cancellation_decided_as(order: Order, subject: str) -> str:
    """How the restaurant answered the buyer's cancellation request (K-DR): `denied`,
    `fee_kept` (approved, keeping a fee) or `none`."""
    if subject == policy.CANCELLATION_DENIED and order.cancellation_denied_at is not None:
        return "denied"
    if (
        subject == policy.CANCELLATION_FEE
        and order.status == Order.Status.CANCELLED
        and order.cancellation_requested_at is not None
        and (order.cancellation_fee or ZERO) > ZERO
    ):
        return "fee_kept"
    return "none"


def escalation_facts_for_order(order: Order, subject: str) -> policy.EscalationFacts:
    """The facts `policy.escalation_eligibility` takes for a cancellation dispute (K-DR)."""
    return policy.EscalationFacts(
        subject=subject,
        decided_as=order_cancellation_decided_as(order, subject),
        already_escalated=Escalation.objects.filter(order=order, subject=subject).exists(),
    )


def escalation_detail_queryset() -> QuerySet[Escalation]:
    return Escalation.objects.select_related(
        "order", "order__restaurant", "refund_request", "buyer", "decided_by"
    ).prefetch_related("evidence")


def escalation_list_for_buyer(buyer) -> QuerySet[Escalation]:
    """The buyer's own escalations, newest first."""
    return escalation_detail_queryset().filter(buyer=buyer).order_by("-opened_at", "-pk")


def escalation_queue() -> QuerySet[Escalation]:
    """Supervisors' queue (L-8.1): undecided escalations first, soonest due first, then the
    decided ones."""
    return (
        escalation_detail_queryset()
        .alias(
            decided=Case(
                When(status__in=UNDECIDED_ESCALATION, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("decided", "due_at", "pk")
    )


def escalation_ids_due_for_sweep(*, now: dt.datetime, limit: int) -> list[int]:
    """Undecided escalations past their due-soon time not yet flagged, or past their due date
    with supervisors not yet told (L-8.1, K-OV), soonest due first, at most `limit`."""
    return list(
        Escalation.objects.filter(status__in=UNDECIDED_ESCALATION)
        .filter(
            Q(due_soon_flagged_at__isnull=True, due_soon_at__lte=now)
            | Q(overdue_notified_at__isnull=True, due_at__lte=now)
        )
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def refund_request_escalation_panel(request: RefundRequest) -> tuple[Escalation | None, bool]:
    """The request page's escalation (or None) and whether it offers "Ask a supervisor to
    review" (L-8.1): no query for a request that cannot have one (undecided, approved), one
    otherwise (its timeline comes from the page's prefetch)."""
    Status = RefundRequest.Status
    if request.status not in (Status.DENIED, Status.PARTIALLY_APPROVED, Status.REFUNDED):
        return None, False
    escalation = Escalation.objects.filter(refund_request=request).first()
    facts = policy.EscalationFacts(
        subject=policy.REFUND_DECISION,
        decided_as=refund_request_decided_as(request),
        awaits_second_approval=request.needs_second_approval
        and request.second_approved_by_id is None,
        already_escalated=escalation is not None,
    )
    return escalation, policy.escalation_eligibility(facts).allowed


def order_escalation_panel(order: Order) -> tuple[list[Escalation], list[str]]:
    """The order page's cancellation disputes (K-DR): the escalations of the restaurant's
    answers, and the subjects the buyer may still contest. No query for an order whose
    cancellation request was never denied nor approved with a fee; one otherwise."""
    subjects = (policy.CANCELLATION_DENIED, policy.CANCELLATION_FEE)
    decided = {subject: order_cancellation_decided_as(order, subject) for subject in subjects}
    if all(answer == "none" for answer in decided.values()):
        return [], []
    escalations = list(Escalation.objects.filter(order=order, refund_request__isnull=True))
    taken = {escalation.subject for escalation in escalations}
    open_subjects = [
        subject
        for subject in subjects
        if policy.escalation_eligibility(
            policy.EscalationFacts(subject, decided[subject], already_escalated=subject in taken)
        ).allowed
    ]
    return escalations, open_subjects


def escalation_refunds(escalation: Escalation) -> QuerySet:
    """The money an overturn moved (its key's parts, D-7), oldest first."""
    return Refund.objects.filter(
        idempotency_key__startswith=f"escalation:{escalation.pk}:"
    ).order_by("created_at", "pk")


# -- chargebacks and suspensions (L-8.2, D-4) -----------------------------------------------


def chargeback_ids_unsettled(*, limit: int) -> list[int]:
    """Lost or accepted chargebacks whose money the processor has not confirmed moving, the
    oldest decision first, at most `limit`."""
    return list(
        Chargeback.objects.filter(
            status__in=Chargeback.MONEY_MOVES_STATUSES, settled_at__isnull=True
        )
        .exclude(settlement_key="")
        .order_by("decided_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def chargeback_list() -> QuerySet[Chargeback]:
    """Chargebacks for support, the soonest evidence due date first."""
    return Chargeback.objects.select_related("order", "order__buyer", "payment").order_by(
        "evidence_due_by", "pk"
    )


def suspension_list() -> QuerySet[Suspension]:
    return Suspension.objects.select_related("buyer", "created_by", "lifted_by", "chargeback")


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds") if moment else None


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else f"{amount:.2f}"


def chargeback_evidence_bundle(chargeback_id: int) -> dict:
    """The evidence lojix gives the buyer's bank (L-8.2), built from the records: the dispute,
    the order with its lines, money and delivery times, the timeline, the card payments, the
    refunds already made (and what is still at stake), the refund requests with their messages
    and photos, and the policy version the buyer accepted at checkout. Plain JSON values
    (money as strings with two decimals, moments in ISO 8601 UTC); a constant number of
    queries. Raises Chargeback.DoesNotExist."""
    chargeback = (
        Chargeback.objects.select_related(
            "order", "order__buyer", "order__restaurant", "order__policy_version", "payment"
        )
        .prefetch_related(
            "order__items",
            "order__payments",
            Prefetch("order__events", queryset=OrderEvent.objects.select_related("actor")),
            Prefetch("order__refunds", queryset=Refund.objects.order_by("created_at", "pk")),
            Prefetch(
                "order__refund_requests",
                queryset=RefundRequest.objects.order_by("submitted_at").prefetch_related(
                    "events",
                    Prefetch("messages", queryset=RefundMessage.objects.order_by("created_at")),
                    Prefetch("evidence", queryset=RefundEvidence.objects.order_by("created_at")),
                ),
            ),
        )
        .get(pk=chargeback_id)
    )
    order = chargeback.order
    refunds = list(order.refunds.all())
    refunded = sum(
        (
            r.amount
            for r in refunds
            if r.status == Refund.Status.SUCCEEDED and r.destination != "promo_credit"
        ),
        Decimal("0.00"),
    )
    return {
        "currency": settings.LOJIX_CURRENCY,
        "chargeback": {
            "id": chargeback.pk,
            "bank_reference": chargeback.bank_reference,
            "reason_code": chargeback.reason_code,
            "amount": _money(chargeback.amount),
            "amount_at_stake": _money(chargeback.amount_at_stake),
            "status": chargeback.status,
            "received_at": _iso(chargeback.received_at),
            "evidence_due_by": _iso(chargeback.evidence_due_by),
        },
        "order": _order_facts(order),
        "timeline": [
            {
                "at": _iso(event.created_at),
                "by": event.get_actor_role_display(),
                "event": event.message or event.name,
                "from": event.from_status,
                "to": event.to_status,
                "amount": _money(event.amount),
                "clauses": event.clauses,
            }
            for event in order.events.all()
        ],
        "payments": [
            {
                "at": _iso(payment.created_at),
                "amount": _money(payment.amount),
                "status": payment.status,
                "reference": payment.gateway_reference,
            }
            for payment in order.payments.all()
        ],
        "refunds": [
            {
                "at": _iso(refund.created_at),
                "amount": _money(refund.amount),
                "to": refund.destination,
                "status": refund.status,
                "reason": refund.reason,
                "clauses": refund.clauses,
                "reference": refund.gateway_reference,
                "succeeded_at": _iso(refund.succeeded_at),
            }
            for refund in refunds
        ],
        "already_refunded": _money(refunded),
        "requests": [_request_facts(request) for request in order.refund_requests.all()],
        "policy_version": {
            "label": order.policy_version.label,
            "effective_from": _iso(order.policy_version.effective_from),
            "accepted_at": _iso(order.placed_at),
            "text": order.policy_version.text,
        },
    }


def _order_facts(order: Order) -> dict:
    return {
        "id": order.pk,
        "buyer": order.buyer.get_full_name() or order.buyer.username,
        "buyer_email": order.buyer.email,
        "restaurant": order.restaurant.name,
        "fulfillment": order.fulfillment,
        "status": order.status,
        "delivery_address": order.delivery_address,
        "items": [
            {
                "name": item.name,
                "quantity": item.quantity,
                "unit_price": _money(item.unit_price),
                "total": _money(item.unit_price * item.quantity),
            }
            for item in order.items.all()
        ],
        "money": {field: _money(getattr(order, field)) for field in Order.MONEY_FIELDS}
        | {"amount_paid": _money(order.amount_paid)},
        "times": {field: _iso(getattr(order, field)) for field in Order.TIME_FIELDS},
    }


def _request_facts(request: RefundRequest) -> dict:
    return {
        "id": request.pk,
        "reason": request.get_reason_display(),
        "status": request.get_status_display(),
        "submitted_at": _iso(request.submitted_at),
        "description": request.description,
        "decided_amount": _money(request.decided_amount),
        "explanation": request.explanation,
        "timeline": [
            {
                "at": _iso(event.created_at),
                "by": event.actor_role,
                "event": event.message,
                "clauses": event.clauses,
            }
            for event in request.events.all()
        ],
        "messages": [
            {"at": _iso(m.created_at), "from": m.get_role_display(), "body": m.body}
            for m in request.messages.all()
        ],
        "photos": [
            {
                "id": photo.pk,
                "at": _iso(photo.created_at),
                "name": photo.file.name,
                "content_type": photo.content_type,
                "width": photo.width,
                "height": photo.height,
            }
            for photo in request.evidence.all()
        ],
    }


def chargeback_evidence_photos(bundle: dict) -> dict[int, bytes]:
    """The bundle's evidence photos as image bytes by evidence id (the stored thumbnail, else
    the photo), read from storage, for the PDF (L-5.2, L-8.2). One query."""
    ids = [photo["id"] for request in bundle["requests"] for photo in request["photos"]]
    found = {}
    for evidence in RefundEvidence.objects.filter(pk__in=ids):
        stored = evidence.thumbnail or evidence.file
        with stored.open("rb") as handle:
            found[evidence.pk] = handle.read()
    return found


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
