"""Read queries for the platform's oversight (K-OV)."""

import datetime as dt

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from core.money import ZERO
from disputes import policy
from disputes.models import Escalation, Intervention
from orders.models import Order
from orders.selectors import order_cancellation_support_decides_at
from refunds.models import Refund, RefundRequest


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
