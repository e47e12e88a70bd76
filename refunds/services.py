"""Refund execution: every money movement back to a buyer goes through `refund_order` or
`refund_execute`, exactly once per idempotency key (D-7)."""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from core.business_days import add_business_days
from core.errors import DomainError, InvalidInput
from core.fsm import apply_transition
from core.money import ZERO
from core.services import notify, notify_restaurant
from credits import services as credit_services
from credits.models import CreditGrant
from orders import services as order_services
from orders.gateway import get_gateway
from orders.models import Order, OrderEvent, Payment, is_restaurant_member, is_support
from refunds import policy
from refunds.models import (
    Refund,
    RefundEvidence,
    RefundMessage,
    RefundRequest,
    RefundRequestEvent,
    RefundRequestItem,
    RestaurantLedgerEntry,
)

MONEY_BACK = [Refund.Destination.CARD, Refund.Destination.ACCOUNT_CREDIT]
COUNTED = [Refund.Status.PENDING, Refund.Status.SUCCEEDED]


def paid_facts(order: Order) -> policy.PaidFacts:
    """What was paid for the order and what has gone back (pending refunds count)."""
    totals = Refund.objects.filter(order=order, status__in=COUNTED).aggregate(
        card=Sum("amount", filter=Q(destination=Refund.Destination.CARD)),
        money_back=Sum("amount", filter=Q(destination__in=MONEY_BACK)),
    )
    return policy.PaidFacts(
        amount_charged=order.amount_charged,
        account_credit_applied=order.account_credit_applied,
        refunded_to_card=totals["card"] or ZERO,
        refunded_total=totals["money_back"] or ZERO,
    )


@transaction.atomic
def refund_order(
    *,
    order_id: int,
    amount: Decimal,
    method: str,
    idempotency_key: str,
    actor,
    role: str,
    reason: str,
    clauses=(),
    request=None,
) -> list[Refund]:
    """Give `amount` of what was paid back: card and account-credit parts by origin, or all as
    account credit (`method="account_credit"`, D-7). Repeating the call with the same key
    returns the same refunds and moves nothing more."""
    order = order_services.order_for_update(order_id)
    keys = {d: f"{idempotency_key}:{d}" for d in MONEY_BACK}
    existing = list(Refund.objects.filter(idempotency_key__in=keys.values()))
    if existing:
        _check_same_request(existing, amount, idempotency_key)
        return [_complete(refund, order) for refund in existing]
    paid = paid_facts(order)
    _check_refundable(amount, paid)
    return [
        _create_and_move(
            order=order,
            amount=part.amount,
            destination=part.destination,
            idempotency_key=keys[part.destination],
            actor=actor,
            role=role,
            reason=reason,
            clauses=clauses,
            request=request,
        )
        for part in policy.split_refund(amount, paid, method=method)
    ]


@transaction.atomic
def refund_execute(
    *,
    order_id: int,
    amount: Decimal,
    destination: str,
    idempotency_key: str,
    actor,
    role: str,
    reason: str,
    clauses=(),
    request=None,
) -> Refund:
    """One money movement to one destination, exactly once per idempotency key."""
    order = order_services.order_for_update(order_id)
    existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
    if existing:
        _check_same_request([existing], amount, idempotency_key)
        return _complete(existing, order)
    if destination not in Refund.Destination.values:
        raise InvalidInput("invalid_destination", f"Unknown refund destination {destination!r}.")
    if destination in MONEY_BACK:
        paid = paid_facts(order)
        _check_refundable(amount, paid)
        if destination == Refund.Destination.CARD and amount > paid.card_refundable:
            raise DomainError(
                "refund_exceeds_card",
                f"Only {paid.card_refundable} can still go back to the card.",
                clauses=["L-7.2"],
            )
    elif amount <= ZERO:
        raise InvalidInput("invalid_amount", "A refund amount must be positive.")
    return _create_and_move(
        order=order,
        amount=amount,
        destination=destination,
        idempotency_key=idempotency_key,
        actor=actor,
        role=role,
        reason=reason,
        clauses=clauses,
        request=request,
    )


def _check_refundable(amount: Decimal, paid: policy.PaidFacts) -> None:
    if amount <= ZERO:
        raise InvalidInput("invalid_amount", "A refund amount must be positive.")
    if amount > paid.refundable:
        raise DomainError(
            "refund_exceeds_paid",
            f"Only {paid.refundable} of the {paid.amount_paid} paid can still be refunded.",
            clauses=["L-7.2"],
        )


def _check_same_request(existing: list[Refund], amount: Decimal, key: str) -> None:
    if sum(r.amount for r in existing) != amount:
        raise InvalidInput(
            "idempotency_key_reused",
            f"The key {key} was already used for a refund of a different amount.",
        )


def _create_and_move(
    *, order, amount, destination, idempotency_key, actor, role, reason, clauses, request=None
) -> Refund:
    now = timezone.now()
    dates = _expected_dates(order, destination, now)
    refund = Refund.objects.create(
        order=order,
        request=request,
        amount=amount,
        destination=destination,
        idempotency_key=idempotency_key,
        payment=_refundable_payment(order) if destination == Refund.Destination.CARD else None,
        reason=reason,
        clauses=list(clauses),
        created_by=actor,
        created_at=now,
        expected_processed_by=dates.processed_by,
        expected_in_bank_from=dates.in_bank_from,
        expected_in_bank_by=dates.in_bank_by,
    )
    _move_money(refund, order, now)
    order_services.order_event_record(
        order=order,
        kind=OrderEvent.Kind.REFUND,
        name=f"refund_{refund.status}",
        actor=actor,
        role=role,
        message=_refund_message(refund),
        reason=reason,
        clauses=clauses,
        amount=amount,
        at=now,
    )
    return refund


def _complete(refund: Refund, order: Order) -> Refund:
    """A repeated call: a failed card refund is tried again; anything else is returned as is."""
    if refund.status == Refund.Status.FAILED:
        _move_money(refund, order, timezone.now(), attempt="retry")
    return refund


def _move_money(refund: Refund, order: Order, now: dt.datetime, attempt: str = "") -> None:
    """The single money movement of a refund; its status records the outcome."""
    if refund.destination == Refund.Destination.CARD:
        result = get_gateway().refund(
            charge_reference=refund.payment.gateway_reference,
            amount=refund.amount,
            currency=settings.LOJIX_CURRENCY,
            idempotency_key=f"{refund.idempotency_key}{':' + attempt if attempt else ''}",
        )
        refund.gateway_reference = result.reference
        refund.failure_message = result.message
        succeeded = result.succeeded
    else:
        _grant_credit(refund, order, now)
        succeeded = True
    refund.status = Refund.Status.SUCCEEDED if succeeded else Refund.Status.FAILED
    refund.succeeded_at = now if succeeded else None
    refund.save(update_fields=["status", "succeeded_at", "gateway_reference", "failure_message"])


def _grant_credit(refund: Refund, order: Order, now: dt.datetime) -> None:
    is_promo = refund.destination == Refund.Destination.PROMO_CREDIT
    credit_services.credit_grant_create(
        buyer=order.buyer,
        kind=CreditGrant.Kind.PROMO if is_promo else CreditGrant.Kind.ACCOUNT,
        amount=refund.amount,
        source=CreditGrant.Source.AGENT if is_promo else CreditGrant.Source.REFUND,
        reason=refund.reason,
        expires_at=(
            now + dt.timedelta(days=order.policy_version.promo_credit_expiry_days)
            if is_promo
            else None
        ),
        order=order,
        refund=refund,
        granted_by=refund.created_by,
    )


def _refundable_payment(order: Order) -> Payment:
    payment = order.payments.filter(status=Payment.Status.SUCCEEDED).order_by("created_at").first()
    if payment is None:
        raise DomainError("no_card_payment", "Nothing was charged to a card for this order.")
    return payment


def _expected_dates(order: Order, destination: str, now: dt.datetime) -> policy.RefundDates:
    version = order.policy_version
    return policy.refund_dates(
        destination=destination,
        on=timezone.localdate(now),
        processing_min_days=version.refund_processing_min_days,
        processing_max_days=version.refund_processing_max_days,
        bank_min_days=version.bank_processing_min_days,
        bank_max_days=version.bank_processing_max_days,
        add_business_days=lambda day, n: add_business_days(
            day, n, country=settings.LOJIX_HOLIDAY_COUNTRY
        ),
    )


def _refund_message(refund: Refund) -> str:
    currency = settings.LOJIX_CURRENCY
    if refund.status == Refund.Status.FAILED:
        return f"Refund of {refund.amount} {currency} to the card failed: {refund.failure_message}"
    if refund.destination == Refund.Destination.CARD:
        return (
            f"Refund of {refund.amount} {currency} to your card; expected at your bank between "
            f"{refund.expected_in_bank_from:%d %b} and {refund.expected_in_bank_by:%d %b %Y}."
        )
    kind = refund.get_destination_display().lower()
    return f"{refund.amount} {currency} added to your wallet as {kind}."


def restaurant_ledger_record(
    *, restaurant_id: int, kind: str, amount: Decimal, order, description: str, refund=None
):
    """Add an entry to a restaurant's ledger (L-9): signed, what the platform owes is
    positive."""
    return RestaurantLedgerEntry.objects.create(
        restaurant_id=restaurant_id,
        kind=kind,
        amount=amount,
        order=order,
        refund=refund,
        description=description,
    )


def restaurant_record_sale(order: Order) -> None:
    """Book a fulfilled order to its restaurant: the food value, less the restaurant's discount
    (credit and the delivery fee are the platform's). A free replacement books nothing."""
    if order.subtotal - order.discount_amount <= ZERO:
        return
    restaurant_ledger_record(
        restaurant_id=order.restaurant_id,
        kind=RestaurantLedgerEntry.Kind.SALE,
        amount=order.subtotal - order.discount_amount,
        order=order,
        description=f"Sale: order #{order.pk}",
    )


# -- refund requests (L-3 .. L-7, L-9, L-10; D-5, D-6) ----------------------------------------

MAX_PHOTOS = 5
MAX_EXPLANATION_LENGTH = 400  # it is quoted on the request's timeline
MAX_PHOTO_BYTES = 8 * 1024 * 1024
PHOTO_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def refund_terms(version) -> policy.RefundTerms:
    return policy.RefundTerms(
        quality_window_pickup_minutes=version.quality_window_pickup_minutes,
        quality_window_delivery_minutes=version.quality_window_delivery_minutes,
        late_partial_minutes=version.late_partial_minutes,
        late_full_minutes=version.late_full_minutes,
        late_auto_refund_minutes=version.late_auto_refund_minutes,
        late_partial_percent=version.late_partial_percent,
        late_small_credit=version.late_small_credit,
        weather_blocks_automatic=version.weather_blocks_automatic,
        ready_late_full_minutes=version.ready_late_full_minutes,
    )


def order_refund_facts(order: Order) -> policy.OrderRefundFacts:
    """The order as the refund policy sees it (one query for its lines, one for its money)."""
    paid = paid_facts(order)
    return policy.OrderRefundFacts(
        status=order.status,
        fulfillment=order.fulfillment,
        delivered_at=order.delivered_at,
        picked_up_at=order.picked_up_at,
        closed_at=order.closed_at,
        ready_at=order.ready_at,
        estimated_delivery_at=order.estimated_delivery_at,
        estimated_ready_at=order.estimated_ready_at,
        delay_cause=order.delay_cause,
        subtotal=order.subtotal,
        delivery_fee=order.delivery_fee,
        discount_amount=order.discount_amount,
        amount_paid=order.amount_paid,
        refundable=paid.refundable,
        successful_charges=order.payments.filter(status=Payment.Status.SUCCEEDED).count(),
        lines=tuple(
            policy.ClaimLine(item.pk, item.unit_price, item.quantity, item.is_promotional)
            for item in order.items.all()
        ),
    )


def refund_eligibility(order: Order, claim: policy.Claim, *, now) -> policy.Eligibility:
    """What the policy says about a claim on this order now (for the form, the API and the
    service alike)."""
    return policy.claim_eligibility(
        claim, order_refund_facts(order), refund_terms(order.policy_version), now=now
    )


def validate_photo(upload) -> str:
    """Decode an upload with Pillow: it must be a real image of an accepted format and size.
    Returns its content type; raises InvalidInput otherwise (nothing is stored)."""
    if upload.size > MAX_PHOTO_BYTES:
        raise InvalidInput(
            "file_too_large", f"{upload.name} is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB."
        )
    try:
        upload.seek(0)
        with Image.open(upload) as image:
            image.verify()
            image_format = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InvalidInput("not_an_image", f"{upload.name} is not an image we can read.") from error
    finally:
        upload.seek(0)
    if image_format not in PHOTO_FORMATS:
        raise InvalidInput("unsupported_image", f"{upload.name}: use JPEG, PNG, WebP or GIF.")
    return PHOTO_FORMATS[image_format]


def _request_for_update(request_id: int) -> RefundRequest:
    request = (
        RefundRequest.objects.select_for_update(of=("self",))
        .select_related("order", "order__policy_version", "order__restaurant", "buyer")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise DomainError(
            "not_found", f"There is no refund request {request_id}.", kind="not_found"
        )
    return request


def _event(request, *, name, from_status, actor, role, message, clauses=(), at) -> None:
    RefundRequestEvent.objects.create(
        request=request,
        name=name,
        from_status=from_status,
        to_status=request.status,
        actor=actor,
        actor_role=role,
        message=message,
        clauses=list(clauses),
        created_at=at,
    )


def _step(request, transition, *, actor, role, message, clauses=(), at, **changes) -> None:
    """Move a request along its state machine and put the step on its timeline."""
    from_status = request.status
    apply_transition(request, transition, at=at, **changes)
    _event(
        request,
        name=transition.__name__,
        from_status=from_status,
        actor=actor,
        role=role,
        message=message,
        clauses=clauses,
        at=at,
    )


def _require_support(actor) -> None:
    if not is_support(actor):
        raise DomainError("forbidden", "Only support staff decide refund requests.", kind="invalid")


@transaction.atomic
def refund_request_submit(
    *,
    order_id: int,
    actor,
    reason: str,
    items=(),
    description: str = "",
    preferred_method: str = RefundRequest.Method.ORIGINAL,
    discovered_at: dt.datetime | None = None,
    photos=(),
) -> RefundRequest:
    """A buyer asks for a refund (L-4.1). The policy decides at once what it can (L-3.3 and
    L-5.1 refusals, L-10 and duplicate-charge refunds); the rest goes to support with a 48-hour
    SLA. Bad input, or a quality claim without its evidence (L-5.2), changes nothing."""
    order = order_services.order_for_update(order_id)
    if order.buyer_id != actor.pk:
        raise DomainError("not_found", f"You have no order {order_id}.", kind="not_found")
    now = timezone.now()
    content_types = _validated_photos(photos, already=0)
    if preferred_method not in RefundRequest.Method.values:
        raise InvalidInput("invalid_method", f"Unknown refund method {preferred_method!r}.")
    if discovered_at is not None and discovered_at > now:
        raise InvalidInput("invalid_discovered_at", "The problem cannot be found in the future.")
    if RefundRequest.objects.filter(order=order, status__in=OPEN_STATUSES).exists():
        raise DomainError("request_open", "This order already has a refund request in progress.")
    claim = policy.Claim(reason, tuple(items), description, len(photos))
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
    _store_photos(request, photos, content_types, actor=actor, now=now)
    _event(
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


OPEN_STATUSES = [
    RefundRequest.Status.SUBMITTED,
    RefundRequest.Status.UNDER_REVIEW,
    RefundRequest.Status.INFO_REQUESTED,
    RefundRequest.Status.AWAITING_RESTAURANT,
]


def _route(request: RefundRequest, eligibility: policy.Eligibility, *, now) -> None:
    if eligibility.opens_allergen_incident:
        from disputes.services import incident_open_allergen

        incident_open_allergen(request=request, now=now)
    if eligibility.route == policy.Route.REFUSED or (
        eligibility.route == policy.Route.AUTOMATIC and eligibility.amount <= ZERO
    ):
        _decide(
            request,
            request.deny,
            actor=None,
            amount=None,
            explanation=eligibility.detail,
            clauses=eligibility.clauses,
            now=now,
        )
    elif eligibility.route == policy.Route.AUTOMATIC:
        _decide(
            request,
            request.approve,
            actor=None,
            amount=eligibility.amount,
            explanation=eligibility.detail,
            clauses=eligibility.clauses,
            now=now,
        )
    else:
        _step(
            request,
            request.start_review,
            actor=None,
            role="policy",
            at=now,
            clauses=("L-4.1",),
            message=f"Support reviews this request by {_when(request.review_due_at)}.",
        )
        notify(
            user=request.buyer,
            title=f"Refund request #{request.pk} received",
            body=f"Support reviews your request by {_when(request.review_due_at)} (L-4.1).",
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


def _validated_photos(photos, *, already: int) -> list[str]:
    if already + len(photos) > MAX_PHOTOS:
        raise InvalidInput("too_many_photos", f"A request can have at most {MAX_PHOTOS} photos.")
    return [validate_photo(photo) for photo in photos]


def _store_photos(request, photos, content_types, *, actor, now) -> None:
    for photo, content_type in zip(photos, content_types, strict=True):
        RefundEvidence.objects.create(
            request=request,
            file=photo,
            content_type=content_type,
            size=photo.size,
            uploaded_by=actor,
            created_at=now,
        )


def _when(moment: dt.datetime) -> str:
    return f"{timezone.localtime(moment):%a %d %b, %H:%M}"


@transaction.atomic
def refund_request_approve(*, request_id: int, actor, method: str | None = None) -> RefundRequest:
    """Support approves what the policy suggests (L-4.1 step 4), paid by origin or as the
    buyer chose; above the four-eyes threshold a supervisor must approve too (D-6)."""
    request = _request_for_update(request_id)
    _require_support(actor)
    _require_reviewable(request)
    amount = min(request.suggested_amount, paid_facts(request.order).refundable)
    if amount <= ZERO:
        raise DomainError(
            "nothing_to_refund",
            "There is nothing left to refund for this order; deny the request or offer a credit.",
            clauses=["L-7.2"],
        )
    _decide(
        request,
        request.approve,
        actor=actor,
        amount=amount,
        method=method,
        explanation="Approved.",
        clauses=request.suggested_clauses,
        now=timezone.now(),
    )
    return request


@transaction.atomic
def refund_request_partially_approve(
    *, request_id: int, actor, amount: Decimal, explanation: str, method: str | None = None
) -> RefundRequest:
    """Support approves part (L-3.2): an amount up to what can still be refunded, explained."""
    request = _request_for_update(request_id)
    _require_support(actor)
    _require_reviewable(request)
    refundable = paid_facts(request.order).refundable
    if not ZERO < amount <= refundable:
        raise InvalidInput(
            "invalid_amount", f"The amount must be more than 0 and at most {refundable}."
        )
    _require_explanation(explanation)
    _decide(
        request,
        request.partially_approve,
        actor=actor,
        amount=amount,
        method=method,
        explanation=explanation,
        clauses=("L-3.2", "L-4.1"),
        now=timezone.now(),
    )
    return request


@transaction.atomic
def refund_request_deny(*, request_id: int, actor, explanation: str) -> RefundRequest:
    """Support denies with an explanation the buyer reads (L-4.1 step 4)."""
    request = _request_for_update(request_id)
    _require_support(actor)
    _require_reviewable(request)
    _require_explanation(explanation)
    _decide(
        request,
        request.deny,
        actor=actor,
        amount=None,
        explanation=explanation,
        clauses=("L-4.1",),
        now=timezone.now(),
    )
    return request


@transaction.atomic
def refund_request_offer_credit(
    *, request_id: int, actor, amount: Decimal, explanation: str
) -> RefundRequest:
    """Support resolves a minor issue with promotional credit instead of money (L-4.3), up to
    the order's total."""
    request = _request_for_update(request_id)
    _require_support(actor)
    _require_reviewable(request)
    if not ZERO < amount <= request.order.total:
        raise InvalidInput(
            "invalid_amount", f"The credit must be more than 0 and at most {request.order.total}."
        )
    _require_explanation(explanation)
    _decide(
        request,
        request.partially_approve,
        actor=actor,
        amount=amount,
        resolution=RefundRequest.Resolution.PROMO_CREDIT,
        explanation=explanation,
        clauses=("L-4.3", "L-7.1"),
        now=timezone.now(),
    )
    return request


@transaction.atomic
def refund_request_offer_replacement(*, request_id: int, actor, explanation: str) -> RefundRequest:
    """Support sends a replacement instead of a refund (L-4.1 step 4, L-6.2): the claimed items
    (or the whole order) again, free; the restaurant prepares it like any order."""
    request = _request_for_update(request_id)
    _require_support(actor)
    _require_reviewable(request)
    _require_explanation(explanation)
    claimed = [
        (i.order_item.menu_item, i.quantity)
        for i in request.items.select_related("order_item__menu_item")
    ]
    items = claimed or [
        (i.menu_item, i.quantity) for i in request.order.items.select_related("menu_item")
    ]
    replacement = order_services.order_place_replacement(
        original=request.order, items=items, actor=actor, note=explanation
    )
    now = timezone.now()
    _step(
        request,
        request.approve,
        actor=actor,
        role="support",
        at=now,
        clauses=("L-4.1", "L-6.2"),
        message=f"A replacement order #{replacement.pk} is on its way instead of a refund. "
        f"{explanation}",
        resolution=RefundRequest.Resolution.REPLACEMENT,
        explanation=explanation,
        decision_clauses=["L-4.1", "L-6.2"],
        decided_by=actor,
        replacement_order=replacement,
    )
    notify(
        user=request.buyer,
        title=f"Refund request #{request.pk}: a replacement is coming",
        body=f"{explanation}\nYour replacement is order #{replacement.pk}, free of charge.",
        url=replacement.get_absolute_url(),
    )
    return request


def _require_reviewable(request) -> None:
    if request.status != RefundRequest.Status.UNDER_REVIEW:
        raise DomainError(
            "not_under_review",
            f"Request #{request.pk} is {request.get_status_display().lower()}, not under review.",
        )


def _require_explanation(explanation: str) -> None:
    if len(explanation.strip()) < 10:
        raise InvalidInput("explanation_required", "Explain the decision to the buyer.")
    if len(explanation.strip()) > MAX_EXPLANATION_LENGTH:
        raise InvalidInput(
            "explanation_too_long",
            f"Keep the explanation under {MAX_EXPLANATION_LENGTH} characters.",
        )


def _decide(
    request,
    transition,
    *,
    actor,
    amount,
    explanation,
    clauses,
    now,
    method=None,
    resolution=RefundRequest.Resolution.REFUND,
) -> None:
    """Record a decision and, unless a supervisor must approve it too, pay it."""
    version = request.order.policy_version
    money = resolution == RefundRequest.Resolution.REFUND and amount is not None
    needs_second = money and amount > version.supervisor_approval_above and actor is not None
    who = "policy" if actor is None else "support"
    verdict = {"approve": "Approved", "partially_approve": "Partially approved", "deny": "Denied"}[
        transition.__name__
    ]
    _step(
        request,
        transition,
        actor=actor,
        role=who,
        at=now,
        clauses=clauses,
        message=f"{verdict}{f': {amount}' if amount else ''}. {explanation}".strip(),
        decided_amount=amount,
        decided_method=method or request.preferred_method,
        resolution=resolution if amount is not None else "",
        explanation=explanation,
        decision_clauses=list(clauses),
        decided_by=actor,
        needs_second_approval=needs_second,
    )
    if needs_second:
        _event(
            request,
            name="awaiting_supervisor",
            from_status=request.status,
            actor=None,
            role="policy",
            at=now,
            clauses=("L-4.1",),
            message=f"Above {version.supervisor_approval_above}: a supervisor approves too.",
        )
    elif amount is not None:
        _pay(request, actor=actor, now=now)
    else:
        notify(
            user=request.buyer,
            title=f"Refund request #{request.pk} denied",
            body=f"{explanation}\nWhy: {', '.join(clauses)}. You may ask a supervisor to "
            "review this decision (L-8.1).",
            url=request.get_absolute_url(),
        )


@transaction.atomic
def refund_request_second_approve(*, request_id: int, actor) -> RefundRequest:
    """A supervisor, not the agent who decided, confirms a large refund; then money moves."""
    request = _request_for_update(request_id)
    if not actor.groups.filter(name="supervisor").exists() and not actor.is_superuser:
        raise DomainError("supervisor_required", "Only a supervisor can give the second approval.")
    if not request.needs_second_approval or request.second_approved_by_id:
        raise DomainError("no_second_approval_due", "This request is not waiting for a supervisor.")
    if request.decided_by_id == actor.pk:
        raise DomainError("four_eyes", "The second approval must come from someone else.")
    now = timezone.now()
    request.second_approved_by, request.second_approved_at = actor, now
    request.save(update_fields=["second_approved_by", "second_approved_at"])
    _event(
        request,
        name="second_approval",
        from_status=request.status,
        actor=actor,
        role="support",
        at=now,
        message="Approved by a supervisor.",
        clauses=("L-4.1",),
    )
    _pay(request, actor=actor, now=now)
    return request


def _pay(request: RefundRequest, *, actor, now) -> None:
    """Move the decided money once (the request's key), deduct what the restaurant caused from
    its payouts (L-9), mark the request refunded and tell the buyer when it arrives (L-4.2)."""
    role = "policy" if actor is None else "support"
    key = f"refund-request:{request.pk}"
    reason = f"Refund request #{request.pk}: {request.get_reason_display()}"
    if request.resolution == RefundRequest.Resolution.PROMO_CREDIT:
        refunds = [
            refund_execute(
                order_id=request.order_id,
                amount=request.decided_amount,
                destination=Refund.Destination.PROMO_CREDIT,
                idempotency_key=key,
                actor=actor,
                role=role,
                reason=reason,
                clauses=request.decision_clauses,
                request=request,
            )
        ]
    else:
        refunds = refund_order(
            order_id=request.order_id,
            amount=request.decided_amount,
            method=request.decided_method,
            idempotency_key=key,
            actor=actor,
            role=role,
            reason=reason,
            clauses=request.decision_clauses,
            request=request,
        )
        if request.reason in policy.RESTAURANT_CAUSED:
            _deduct_from_restaurant(request.order, refunds)
    _step(
        request,
        request.mark_refunded,
        actor=actor,
        role=role,
        at=now,
        message=" ".join(_refund_message(r) for r in refunds),
    )
    notify(
        user=request.buyer,
        title=f"Refund request #{request.pk}: {request.decided_amount} back",
        body=" ".join(_refund_message(r) for r in refunds),
        url=request.get_absolute_url(),
    )


def _deduct_from_restaurant(order: Order, refunds: list[Refund]) -> None:
    """L-9: a refund the restaurant caused comes off what it was booked for the order (never
    more than its sale)."""
    booked = (
        RestaurantLedgerEntry.objects.filter(
            order=order,
            kind__in=[RestaurantLedgerEntry.Kind.SALE, RestaurantLedgerEntry.Kind.REFUND_DEDUCTION],
        ).aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    for refund in refunds:
        deduction = min(refund.amount, booked)
        if deduction <= ZERO:
            return
        restaurant_ledger_record(
            restaurant_id=order.restaurant_id,
            kind=RestaurantLedgerEntry.Kind.REFUND_DEDUCTION,
            amount=-deduction,
            order=order,
            refund=refund,
            description=f"Refund deducted: order #{order.pk}",
        )
        booked -= deduction


@transaction.atomic
def refund_request_request_info(*, request_id: int, actor, question: str) -> RefundRequest:
    """Support asks the buyer for more (L-4.1 step 3); the review clock pauses until the buyer
    answers."""
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
    request = _request_for_update(request_id)
    _require_support(actor)
    _require_reviewable(request)
    _require_text(question, "question")
    now = timezone.now()
    _message(request, author=actor, role=RefundMessage.Role.SUPPORT, body=question, now=now)
    _step(
        request,
        getattr(request, transition),
        actor=actor,
        role="support",
        at=now,
        message=timeline,
        clauses=("L-4.1",),
    )
    return request


def _request_of_buyer_for_update(request_id: int, buyer) -> RefundRequest:
    request = _request_for_update(request_id)
    if request.buyer_id != buyer.pk:
        raise DomainError(
            "not_found", f"You have no refund request {request_id}.", kind="not_found"
        )
    return request


@transaction.atomic
def refund_request_reply(*, request_id: int, actor, body: str, photos=()) -> RefundRequest:
    """The buyer writes on the request, with photos if they like; an answer to a question
    restarts the review clock where it stopped."""
    request = _request_of_buyer_for_update(request_id, actor)
    if request.status not in OPEN_STATUSES:
        raise DomainError("request_closed", "This request has been decided; you can escalate it.")
    _require_text(body, "message")
    content_types = _validated_photos(photos, already=request.evidence.count())
    now = timezone.now()
    _message(request, author=actor, role=RefundMessage.Role.BUYER, body=body, now=now)
    _store_photos(request, photos, content_types, actor=actor, now=now)
    if request.status == RefundRequest.Status.INFO_REQUESTED:
        _step(
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
def refund_request_ask_restaurant(*, request_id: int, actor, question: str) -> RefundRequest:
    """Support asks the restaurant to verify the claim (L-4.1 "may contact restaurant")."""
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
def refund_request_restaurant_verify(*, request_id: int, actor, note: str) -> RefundRequest:
    """The restaurant answers support's verification request with a note (L-9)."""
    request = _request_for_update(request_id)
    if not is_restaurant_member(request.order.restaurant_id, actor):
        raise DomainError(
            "not_found", f"There is no refund request {request_id}.", kind="not_found"
        )
    if request.status != RefundRequest.Status.AWAITING_RESTAURANT:
        raise DomainError("no_verification_due", "Support is not waiting for your answer.")
    _require_text(note, "note")
    now = timezone.now()
    _message(request, author=actor, role=RefundMessage.Role.RESTAURANT, body=note, now=now)
    _step(
        request,
        request.restaurant_answer,
        actor=actor,
        role="restaurant",
        at=now,
        message="The restaurant answered; support decides.",
        clauses=("L-4.1", "L-9"),
    )
    return request


@transaction.atomic
def refund_request_add_evidence(*, request_id: int, actor, photos) -> list[RefundEvidence]:
    """The buyer adds photos to an undecided request (L-5.2)."""
    request = _request_of_buyer_for_update(request_id, actor)
    if request.status not in OPEN_STATUSES:
        raise DomainError("request_closed", "This request has been decided.")
    if not photos:
        raise InvalidInput("file_required", "Choose a photo to upload.")
    content_types = _validated_photos(photos, already=request.evidence.count())
    now = timezone.now()
    _store_photos(request, photos, content_types, actor=actor, now=now)
    return list(request.evidence.order_by("-pk")[: len(photos)])


def _message(request, *, author, role, body, now) -> RefundMessage:
    return RefundMessage.objects.create(
        request=request, author=author, role=role, body=body.strip(), created_at=now
    )


def _require_text(text: str, name: str) -> None:
    if not text.strip():
        raise InvalidInput(f"{name}_required", f"Write a {name}.")
    if len(text) > 4000:
        raise InvalidInput(f"{name}_too_long", f"Keep the {name} under 4000 characters.")


@transaction.atomic
def refund_request_review_sla(*, request_id: int, now: dt.datetime) -> str:
    """L-4.1 / K-OV: flag a request due soon (24 h before its due time) and hand an overdue one
    to supervisors, once each. Returns what it did ("", "due_soon" or "escalated")."""
    from disputes.models import Intervention
    from disputes.services import intervention_open

    request = _request_for_update(request_id)
    version = request.order.policy_version
    reviewing = [RefundRequest.Status.UNDER_REVIEW, RefundRequest.Status.AWAITING_RESTAURANT]
    if request.status not in reviewing:
        return ""
    if now >= request.review_due_at and request.escalated_at is None:
        request.escalated_at = now
        request.save(update_fields=["escalated_at"])
        intervention_open(
            order=request.order,
            refund_request=request,
            kind=Intervention.Kind.REVIEW_OVERDUE,
            now=now,
            summary=f"Refund request #{request.pk} not decided within "
            f"{version.review_sla_hours} h.",
        )
        _event(
            request,
            name="escalated",
            from_status=request.status,
            actor=None,
            role="system",
            at=now,
            clauses=("L-4.1", "K-OV"),
            message="Review overdue: handed to supervisors.",
        )
        return "escalated"
    due_soon_from = request.review_due_at - dt.timedelta(
        hours=version.review_sla_hours - version.review_due_soon_hours
    )
    if now >= due_soon_from and request.due_soon_flagged_at is None:
        request.due_soon_flagged_at = now
        request.save(update_fields=["due_soon_flagged_at"])
        return "due_soon"
    return ""
