"""Allergen investigations (L-10): opened by an allergic-reaction refund request, assigned to
someone in support, worked with findings and closed; the restaurant is told at each step and
answers in the seller portal. Outages and force majeure are in `disputes.services.outages`."""

import datetime as dt

from django.db import transaction
from django.urls import reverse

from core.display import day_text
from core.errors import DomainError, InvalidInput
from core.services import notify, notify_restaurant
from disputes.lock_objects import incident_for_update
from disputes.models import Incident
from orders.models import Restaurant, is_support

MAX_TEXT = 4000
SELLER_URL = "seller:incidents"


def incident_open_allergen(*, request, now: dt.datetime) -> Incident:
    """An allergic reaction opens an allergen investigation against the restaurant (L-10), and
    the restaurant is told it may answer. Call inside the transaction that submits the request,
    holding the order's row lock. Raises no domain error."""
    order = request.order
    incident = Incident.objects.create(
        kind=Incident.Kind.ALLERGEN,
        title=f"Allergic reaction after order #{order.pk} at {order.restaurant.name}",
        description=request.description,
        order=order,
        refund_request=request,
        created_at=now,
    )
    incident.restaurants.add(order.restaurant)
    notify_restaurant(
        order.restaurant,
        title=f"Allergen investigation: order #{order.pk}",
        body=(
            f"A buyer reported an allergic reaction after order #{order.pk}. The buyer was "
            "refunded in full and we are investigating the allergen information (L-10, L-9: "
            "accurate menu information). Tell us what happened in the seller portal."
        ),
        url=reverse(SELLER_URL),
    )
    return incident


def _allergen_for_update(incident_id: int) -> Incident:
    incident = incident_for_update(incident_id)
    if incident.kind != Incident.Kind.ALLERGEN:
        raise DomainError(
            "not_an_allergen_investigation",
            "Only an allergen investigation is assigned and worked this way.",
            clauses=["L-10"],
        )
    if incident.status == Incident.Status.CLOSED:
        raise DomainError(
            "incident_closed",
            f"This investigation was closed on {day_text(incident.closed_at)}.",
            clauses=["L-10"],
        )
    return incident


def _require_support(user, what: str) -> None:
    if not is_support(user):
        raise DomainError("support_required", f"Only support {what}.", clauses=["L-10"])


@transaction.atomic
def allergen_investigation_assign(
    *, incident_id: int, assignee, actor, now: dt.datetime
) -> Incident:
    """Give an open allergen investigation to someone in support (L-10); it is then being
    investigated. Takes the incident's row lock. Raises `not_found` (404), `support_required`,
    `not_an_allergen_investigation`, `incident_closed` (409), `assignee_not_support` (400)."""
    _require_support(actor, "assigns an investigation")
    incident = _allergen_for_update(incident_id)
    if assignee is None or not is_support(assignee):
        raise InvalidInput(
            "assignee_not_support", "An investigation is assigned to someone in support."
        )
    incident.assigned_to = assignee
    incident.assigned_at = now
    incident.status = Incident.Status.INVESTIGATING
    incident.save(update_fields=["assigned_to", "assigned_at", "status"])
    if assignee.pk != actor.pk:
        notify(
            user=assignee,
            title=f"Assigned to you: {incident.title}",
            body="An allergen investigation (L-10) waits for your findings.",
            url=reverse("admin:disputes_incident_change", args=[incident.pk]),
        )
    return incident


@transaction.atomic
def allergen_investigation_record_findings(
    *, incident_id: int, actor, findings: str, close: bool, now: dt.datetime
) -> Incident:
    """Write down what the investigation found (L-10), and with `close` close it: the restaurant
    is told the findings. Takes the incident's row lock. Raises `not_found` (404),
    `support_required`, `not_an_allergen_investigation`, `incident_closed` (409),
    `findings_required`, `findings_too_long` (400)."""
    _require_support(actor, "works an investigation")
    incident = _allergen_for_update(incident_id)
    findings = findings.strip()
    if not findings:
        raise InvalidInput("findings_required", "Write down what the investigation found.")
    if len(findings) > MAX_TEXT:
        raise InvalidInput("findings_too_long", f"Findings are at most {MAX_TEXT} characters.")
    incident.findings = findings
    fields = ["findings"]
    if incident.assigned_to_id is None:
        incident.assigned_to, incident.assigned_at = actor, now
        fields += ["assigned_to", "assigned_at"]
    incident.status = Incident.Status.CLOSED if close else Incident.Status.INVESTIGATING
    fields.append("status")
    if close:
        incident.closed_at, incident.closed_by = now, actor
        fields += ["closed_at", "closed_by"]
    incident.save(update_fields=fields)
    if close:
        for restaurant in incident.restaurants.all():
            notify_restaurant(
                restaurant,
                title=f"Allergen investigation closed: {incident.title}",
                body=f"What we found (L-10): {findings}",
                url=reverse(SELLER_URL),
            )
    return incident


@transaction.atomic
def allergen_investigation_answer(
    *, incident_id: int, actor, answer: str, now: dt.datetime
) -> Incident:
    """The restaurant answers an allergen investigation against it (L-10), in the seller portal;
    a later answer replaces the earlier one until the investigation closes. The one who works
    it is told. Takes the incident's row lock. Raises `not_found` (404, also for an
    investigation against another restaurant), `incident_closed` (409), `answer_required`,
    `answer_too_long` (400)."""
    incident = incident_for_update(incident_id)
    partner_of = Restaurant.objects.filter(members=actor, incidents=incident)
    if incident.kind != Incident.Kind.ALLERGEN or not partner_of.exists():
        raise DomainError(
            "not_found", f"There is no investigation {incident_id}.", kind="not_found"
        )
    if incident.status == Incident.Status.CLOSED:
        raise DomainError("incident_closed", "This investigation is closed.", clauses=["L-10"])
    answer = answer.strip()
    if not answer:
        raise InvalidInput("answer_required", "Write your answer.")
    if len(answer) > MAX_TEXT:
        raise InvalidInput("answer_too_long", f"An answer is at most {MAX_TEXT} characters.")
    incident.restaurant_answer = answer
    incident.restaurant_answered_at, incident.restaurant_answered_by = now, actor
    incident.save(
        update_fields=["restaurant_answer", "restaurant_answered_at", "restaurant_answered_by"]
    )
    if incident.assigned_to is not None:
        notify(
            user=incident.assigned_to,
            title=f"The restaurant answered: {incident.title}",
            body=answer,
            url=reverse("admin:disputes_incident_change", args=[incident.pk]),
        )
    return incident
