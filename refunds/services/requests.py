"""Refund requests from buyers (L-3 .. L-7, L-10): submitted, routed by the policy, replied to,
and the questions support asks the buyer or the restaurant (L-4.1)."""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from core.display import when_text
from core.errors import DomainError, InvalidInput
from core.money import ZERO
from core.outbox import outbox_enqueue
from core.roles import User
from core.services import notify, notify_restaurant
from disputes.guards import buyer_must_not_be_suspended, order_must_not_have_chargeback
from disputes.services.incidents import incident_open_allergen
from disputes.services.interventions import intervention_resolve_unanswered_verification
from orders.lock_objects import order_for_update
from orders.models import is_restaurant_member
from refunds import policy
from refunds.events import refund_request_event_record, refund_request_step
from refunds.lock_objects import refund_request_for_update
from refunds.models import (
    OPEN_STATUSES,
    RefundEvidence,
    RefundMessage,
    RefundRequest,
    RefundRequestItem,
)
from refunds.selectors import refund_eligibility
from refunds.services.common import (
    message_add,
    require_support,
    require_text,
    require_under_review,
)
from refunds.services.decisions import decide
from refunds.services.evidence import (
    held_photos_attach,
    held_photos_owned,
    store_photos,
    validated_photos,
)
from refunds.services.late import order_mark_auto_late_refunded


@transaction.atomic
def refund_request_submit(
    *,
    order_id: int,
    actor: User,
    reason: str,
    items=(),
    description: str = "",
    preferred_method: str = RefundRequest.Method.ORIGINAL,
    discovered_at: dt.datetime | None = None,
    photos=(),
    held_photo_ids=(),
) -> RefundRequest:
    """A buyer asks for a refund (L-4.1). The policy decides at once what it can (L-3.3 and
    L-5.1 refusals, L-10 and duplicate-charge refunds, a delivery over 2 hours late, L-6.1);
    the rest goes to support with a 48-hour SLA. `items` are (order item id, quantity) pairs
    for a partial claim (L-3.2); `photos` are uploads, `held_photo_ids` the buyer's photos held
    for this order (refund_photos_hold), which become the request's evidence, while the others
    the buyer held for it are dropped. Takes the order's row lock. Bad input, or a quality
    claim without its evidence (L-5.2), changes nothing.

    Errors: `not_found` (404, also for another buyer's order); `request_open` (409) while the
    order has an undecided request; 400: `invalid_method`, `invalid_discovered_at`, the claim's
    `invalid_reason`, `unknown_item`, `invalid_quantity`, `item_already_refunded` (L-7.2),
    `items_required` (L-3.2), `evidence_required` (L-5.2), `unknown_photo` (a held photo that is
    not this buyer's for this order), and the photos' `too_many_photos`, `file_too_large`,
    `image_too_large`, `unsupported_image`, `not_an_image`."""
    order = order_for_update(order_id)
    if order.buyer_id != actor.pk:
        raise DomainError("not_found", f"You have no order {order_id}.", kind="not_found")
    buyer_must_not_be_suspended(actor)
    order_must_not_have_chargeback(order)
    now = timezone.now()
    held = held_photos_owned(order=order, actor=actor, ids=held_photo_ids)
    prepared = validated_photos(photos, already=len(held))
    if preferred_method not in RefundRequest.Method.values:
        raise InvalidInput("invalid_method", f"Unknown refund method {preferred_method!r}.")
    if discovered_at is not None and discovered_at > now:
        raise InvalidInput("invalid_discovered_at", "The problem cannot be found in the future.")
    if discovered_at is not None and discovered_at < order.placed_at:
        raise InvalidInput(
            "invalid_discovered_at", "The problem cannot be found before the order was placed."
        )
    if RefundRequest.objects.filter(order=order, status__in=OPEN_STATUSES).exists():
        raise DomainError("request_open", "This order already has a refund request in progress.")
    claim = policy.Claim(reason, tuple(items), description, len(prepared) + len(held))
    eligibility = refund_eligibility(order, claim, now=now)
    if eligibility.route == policy.Route.INVALID:
        raise InvalidInput(eligibility.code, eligibility.detail, clauses=eligibility.clauses)
    request = RefundRequest.objects.create(
        order=order,
        buyer=actor,
        reason=reason,
        description=description.strip(),
        preferred_method=preferred_method,
        discovered_at=discovered_at or now,
        submitted_at=now,
        review_due_at=now + dt.timedelta(hours=order.policy_version.review_sla_hours),
        suggested_outcome=eligibility.outcome,
        suggested_amount=eligibility.amount,
        suggested_code=eligibility.code,
        suggested_clauses=list(eligibility.clauses),
    )
    _store_items(request, claim.items)
    held_photos_attach(
        held, order=request.order, actor=actor, evidence=RefundEvidence, request=request
    )
    store_photos(request, prepared, actor=actor, now=now)
    refund_request_event_record(
        request,
        name="submit",
        from_status="",
        actor=actor,
        role="buyer",
        at=now,
        message=f"Request submitted: {request.get_reason_display()}.",
    )
    _route(request, eligibility, now=now)
    return request


def _route(request: RefundRequest, eligibility: policy.Eligibility, *, now) -> None:
    if eligibility.opens_allergen_incident:
        incident_open_allergen(request=request, now=now)
    if eligibility.route == policy.Route.REFUSED or (
        eligibility.route == policy.Route.AUTOMATIC and eligibility.amount <= ZERO
    ):
        decide(
            request,
            request.deny,
            actor=None,
            amount=None,
            explanation=eligibility.detail,
            clauses=eligibility.clauses,
            now=now,
        )
    elif eligibility.route == policy.Route.AUTOMATIC:
        decide(
            request,
            request.approve,
            actor=None,
            amount=eligibility.amount,
            explanation=eligibility.detail,
            clauses=eligibility.clauses,
            now=now,
        )
        if eligibility.code == policy.LATE_AUTO_REFUND:
            order_mark_auto_late_refunded(request.order, now=now)
    else:
        refund_request_step(
            request,
            request.start_review,
            actor=None,
            role="policy",
            at=now,
            clauses=("L-4.1",),
            message=f"Support reviews this request by {when_text(request.review_due_at)}.",
        )
        if eligibility.checks_processor_for_duplicate:
            outbox_enqueue(
                task="refunds.tasks.settle_duplicate_charge",
                kwargs={"request_id": request.pk},
                now=now,
            )
        notify(
            user=request.buyer,
            title=f"Refund request #{request.pk} received",
            body=f"Support reviews your request by {when_text(request.review_due_at)} (L-4.1).",
            url=request.get_absolute_url(),
        )


def _store_items(request, items) -> None:
    merged: dict[int, int] = {}
    for item_id, quantity in items:
        merged[item_id] = merged.get(item_id, 0) + quantity
    RefundRequestItem.objects.bulk_create(
        RefundRequestItem(request=request, order_item_id=item_id, quantity=quantity)
        for item_id, quantity in merged.items()
    )


@transaction.atomic
def refund_request_request_info(*, request_id: int, actor: User, question: str) -> RefundRequest:
    """Support asks the buyer for more (L-4.1 step 3); the review clock pauses until the buyer
    answers. Takes the request's row lock.

    Errors: `not_found` (404); `forbidden` (400) for someone not of support; `not_under_review`
    (409); `question_required` / `question_too_long` (400)."""
    request = _support_asks(
        request_id,
        actor,
        question,
        transition="request_info",
        timeline="Support asked you for more information; the review waits for your answer.",
    )
    notify(
        user=request.buyer,
        title=f"Refund request #{request.pk}: a question from support",
        body=question,
        url=request.get_absolute_url(),
    )
    return request


def _support_asks(request_id, actor, question, *, transition: str, timeline: str):
    """Support puts a question on a request under review and moves it to wait for the answer."""
    request = refund_request_for_update(request_id)
    require_support(actor)
    require_under_review(request)
    require_text(question, "question")
    now = timezone.now()
    message_add(request, author=actor, role=RefundMessage.Role.SUPPORT, body=question, now=now)
    refund_request_step(
        request,
        getattr(request, transition),
        actor=actor,
        role="support",
        at=now,
        message=timeline,
        clauses=("L-4.1",),
    )
    return request


@transaction.atomic
def refund_request_reply(
    *, request_id: int, actor: User, body: str, photos=(), held_photo_ids=()
) -> RefundRequest:
    """The buyer writes on the request, with photos if they like (L-5.2): uploads, and the
    buyer's photos held for the order (`held_photo_ids`, refund_photos_hold) after a refused
    reply; an answer to a question restarts the review clock where it stopped (L-4.1). Takes
    the request's row lock.

    Errors: `not_found` (404, also for another buyer's request); `request_closed` (409) once
    decided; `message_required` / `message_too_long` (400); the photos' `too_many_photos`,
    `file_too_large`, `image_too_large`, `unsupported_image`, `not_an_image`, `unknown_photo`
    (400)."""
    request = refund_request_for_update(request_id, buyer=actor)
    buyer_must_not_be_suspended(actor)
    if request.status not in OPEN_STATUSES:
        raise DomainError("request_closed", "This request has been decided; you can escalate it.")
    require_text(body, "message")
    held = held_photos_owned(order=request.order, actor=actor, ids=held_photo_ids)
    prepared = validated_photos(photos, already=request.evidence.count() + len(held))
    now = timezone.now()
    message_add(request, author=actor, role=RefundMessage.Role.BUYER, body=body, now=now)
    held_photos_attach(
        held, order=request.order, actor=actor, evidence=RefundEvidence, request=request
    )
    store_photos(request, prepared, actor=actor, now=now)
    if request.status == RefundRequest.Status.INFO_REQUESTED:
        refund_request_step(
            request,
            request.answer,
            actor=actor,
            role="buyer",
            at=now,
            clauses=("L-4.1",),
            message="You answered; the review goes on.",
        )
    return request


@transaction.atomic
def refund_request_ask_restaurant(*, request_id: int, actor: User, question: str) -> RefundRequest:
    """Support asks the restaurant to verify the claim (L-4.1 "may contact restaurant"); the
    restaurant's partners are told. Takes the request's row lock.

    Errors: `not_found` (404); `forbidden` (400) for someone not of support; `not_under_review`
    (409); `question_required` / `question_too_long` (400)."""
    request = _support_asks(
        request_id,
        actor,
        question,
        transition="ask_restaurant",
        timeline="Support asked the restaurant to verify.",
    )
    notify_restaurant(
        request.order.restaurant,
        title=f"Please verify order #{request.order_id}",
        body=question,
        url="/seller/verifications/",
    )
    return request


@transaction.atomic
def refund_request_restaurant_verify(*, request_id: int, actor: User, note: str) -> RefundRequest:
    """The restaurant answers support's verification request with a note (L-4.1, L-9); the
    request goes back to support, and an unanswered-verification case on it closes (K-OV).
    Takes the request's row lock.

    Errors: `not_found` (404) for someone not of the order's restaurant;
    `no_verification_due` (409) when support is not waiting for it; `note_required` /
    `note_too_long` (400)."""
    request = refund_request_for_update(request_id)
    if not is_restaurant_member(request.order.restaurant_id, actor):
        raise DomainError(
            "not_found", f"There is no refund request {request_id}.", kind="not_found"
        )
    if request.status != RefundRequest.Status.AWAITING_RESTAURANT:
        raise DomainError("no_verification_due", "Support is not waiting for your answer.")
    require_text(note, "note")
    now = timezone.now()
    message_add(request, author=actor, role=RefundMessage.Role.RESTAURANT, body=note, now=now)
    refund_request_step(
        request,
        request.restaurant_answer,
        actor=actor,
        role="restaurant",
        at=now,
        message="The restaurant answered; support decides.",
        clauses=("L-4.1", "L-9"),
    )
    intervention_resolve_unanswered_verification(
        refund_request=request, actor=actor, action="The restaurant answered", now=now
    )
    return request
