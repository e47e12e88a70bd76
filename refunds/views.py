"""Buyer refund pages (D-9, journey "Buyer" 4): report a problem on an order, follow a request,
answer support; protected evidence for those allowed to see it.

Thin: reads through selectors, every change through refunds.services, whose refusals are shown
as messages; the policy decides which reasons are open, the page only shows its answers."""

import datetime as dt
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.display import money_text, when_text
from core.errors import DomainError
from core.money import ZERO
from disputes.selectors import refund_request_escalation_panel
from orders import selectors as order_selectors
from orders.models import Order
from orders.views import refusal_text
from refunds import policy
from refunds.forms import HeldPhotosForm, RefundRequestForm, ReplyForm
from refunds.models import OPEN_STATUSES, HeldPhoto, Refund, RefundMessage, RefundRequest
from refunds.selectors import (
    held_photo_for_viewer,
    held_photos_for_buyer,
    order_refund_facts,
    paid_facts,
    refund_eligibility,
    refund_evidence_for_viewer,
    refund_request_detail_queryset,
    refund_request_list_for_buyer,
    refund_request_open_for_order,
    refund_terms,
)
from refunds.services.evidence import refund_photos_hold
from refunds.services.requests import refund_request_reply, refund_request_submit

REQUESTS_PER_PAGE = 20
# The policy's refusal of a quality reason reported after its window (L-5.1).
WINDOW_CLOSED = "report_window_closed"
Status = RefundRequest.Status


# -- report a problem (the request form) ------------------------------------------------------


@dataclass(frozen=True)
class ReasonChoice:
    """One reason on the form with the policy's answer for this order now; `closed_at` is set
    when the reason's reporting window (L-5.1) has closed, and then it cannot be chosen."""

    code: str
    label: str
    is_open: bool
    detail: str
    clauses: tuple[str, ...]
    needs_items: bool
    needs_evidence: bool
    open_until: dt.datetime | None
    closed_at: dt.datetime | None = None


@dataclass(frozen=True)
class ReasonGroup:
    label: str
    clause: str
    reasons: list[ReasonChoice]


def reason_groups(order: Order, *, now: dt.datetime) -> list[ReasonGroup]:
    """The reasons as the policy groups them, each open or closed for this order with why: the
    policy's eligibility for a complete claim (every line once, a description, a photo), so
    what closes a reason is the order and the clock, not the form."""
    facts = order_refund_facts(order)
    terms = refund_terms(order.policy_version)
    every_line = tuple((line.order_item_id, 1) for line in facts.lines)
    closes_at = policy.quality_window_closes_at(facts, terms)
    groups = []
    for label, clause, codes in policy.REASON_GROUPS:
        choices = []
        for code in codes:
            claim = policy.Claim(code, every_line, "x", 1)
            answer = policy.claim_eligibility(claim, facts, terms, now=now)
            is_open = answer.route != policy.Route.REFUSED
            choices.append(
                ReasonChoice(
                    code=code,
                    label=policy.Reason.LABELS[code],
                    is_open=is_open,
                    detail=answer.detail,
                    clauses=answer.clauses,
                    needs_items=code in policy.PARTIAL_REASONS,
                    needs_evidence=code in policy.QUALITY_REASONS,
                    open_until=closes_at if is_open and code in policy.QUALITY_REASONS else None,
                    closed_at=closes_at if answer.code == WINDOW_CLOSED else None,
                )
            )
        groups.append(ReasonGroup(label, clause, choices))
    return groups


def closed_reasons(groups: list[ReasonGroup]) -> dict[str, dt.datetime]:
    """Reason code -> when its reporting window closed (L-5.1), for the reasons that cannot be
    chosen any more."""
    return {
        reason.code: reason.closed_at
        for group in groups
        for reason in group.reasons
        if reason.closed_at is not None
    }


@dataclass(frozen=True)
class Preview:
    """What the policy would do with the claim as filled in, before it is sent."""

    eligibility: policy.Eligibility
    method_label: str
    parts: list[policy.RefundPart]
    review_hours: int

    @property
    def route(self) -> str:
        return self.eligibility.route

    @property
    def refunds_money(self) -> bool:
        return self.eligibility.amount > ZERO and self.route != policy.Route.REFUSED


@login_required
@require_http_methods(["GET", "POST"])
def request_new(request, order_id: int):
    """GET: the form. POST "preview": the same form with the policy's answer for the claim.
    POST "submit": the request through the service; a refusal changes nothing and is shown.
    On every POST the photos chosen are kept for the buyer (refund_photos_hold) and carried
    by id, so neither the preview nor a refused form asks for them again (L-5.2)."""
    order = _buyer_order_or_404(request.user, order_id)
    open_request = refund_request_open_for_order(order)
    if open_request is not None:
        messages.info(
            request,
            f"Order #{order.pk} already has refund request #{open_request.pk} in progress; "
            "you can add messages and photos to it.",
        )
        return redirect(open_request)
    groups = reason_groups(order, now=timezone.now())
    if request.method == "GET":
        form = RefundRequestForm(order_items=order.items.all())
        return _render_new(request, order, form, groups=groups)
    form = RefundRequestForm(
        request.POST,
        request.FILES,
        order_items=order.items.all(),
        held_photos=held_photos_for_buyer(request.user, order.pk),
        closed_reasons=closed_reasons(groups),
    )
    is_valid = form.is_valid()
    held = form_photos_hold(request, order.pk, form)
    if not is_valid or form.errors:
        return _render_new(request, order, form, groups=groups, held=held, status=400)
    if request.POST.get("action") != "submit":
        preview = _preview(order, form, photo_count=len(held))
        return _render_new(request, order, form, groups=groups, held=held, preview=preview)
    data = form.cleaned_data
    try:
        refund_request = refund_request_submit(
            order_id=order.pk,
            actor=request.user,
            reason=data["reason"],
            items=_claimed_items(form),
            description=data["description"],
            preferred_method=data["preferred_method"],
            held_photo_ids=[photo.pk for photo in held],
        )
    except DomainError as error:
        if error.kind == "not_found":
            raise Http404(error.detail) from error
        messages.error(request, refusal_text(error))
        return _render_new(request, order, form, groups=groups, held=held, status=_status(error))
    messages.success(request, _submitted_text(refund_request))
    return redirect(refund_request)


def form_photos_hold(request, order_id: int, form: HeldPhotosForm) -> list[HeldPhoto]:
    """Keep a bound form's valid new photos for the buyer and order with the held ones it
    carried, whatever else the form says, and return them all (shown as thumbnails and carried
    again by id); a refusal becomes a form error and keeps what was held. Call after
    `form.is_valid()`. Raises Http404 for another buyer's order."""
    cleaned = getattr(form, "cleaned_data", {})
    keep_ids = cleaned.get("held_photos", [])
    new = cleaned.get("photos", [])
    kept = [photo for photo in form.held_photo_rows if photo.pk in keep_ids]
    if not new:
        return kept
    try:
        return refund_photos_hold(
            order_id=order_id, actor=request.user, photos=new, keep_ids=keep_ids
        )
    except DomainError as error:
        if error.kind == "not_found":
            raise Http404(error.detail) from error
        form.add_error("photos", refusal_text(error))
        return kept


def _buyer_order_or_404(buyer, order_id: int) -> Order:
    try:
        return order_selectors.order_detail_for_buyer(buyer, order_id)
    except Order.DoesNotExist as error:
        raise Http404("No such order.") from error


def _claimed_items(form: RefundRequestForm) -> list[tuple[int, int]]:
    """The item picker counts for the partial reasons (L-3.2); the others are about the order."""
    if form.cleaned_data["reason"] in policy.PARTIAL_REASONS:
        return form.picked_items()
    return []


def _preview(order: Order, form: RefundRequestForm, *, photo_count: int) -> Preview:
    data = form.cleaned_data
    claim = policy.Claim(
        data["reason"], tuple(_claimed_items(form)), data["description"], photo_count
    )
    eligibility = refund_eligibility(order, claim, now=timezone.now())
    method = data["preferred_method"]
    parts = []
    if eligibility.amount > ZERO:
        parts = policy.split_refund(eligibility.amount, paid_facts(order), method=method)
    return Preview(
        eligibility=eligibility,
        method_label=dict(form.fields["preferred_method"].choices)[method],
        parts=parts,
        review_hours=order.policy_version.review_sla_hours,
    )


def _render_new(request, order, form, *, groups, held=(), preview=None, status=200):
    selected = form.data.get("reason") if form.is_bound else None
    return render(
        request,
        "refunds/request_new.html",
        {
            "order": order,
            "form": form,
            "groups": groups,
            "selected_reason": selected,
            "held_photos": held,
            "preview": preview,
        },
        status=status,
    )


def _submitted_text(refund_request: RefundRequest) -> str:
    number = f"Refund request #{refund_request.pk}"
    if refund_request.status == Status.DENIED:
        return f"{number}: {refund_request.explanation}"
    if refund_request.status == Status.REFUNDED:
        return f"{number}: {money_text(refund_request.decided_amount)} refunded at once."
    if refund_request.needs_second_approval:
        return f"{number}: approved; a supervisor confirms it before the money moves."
    due = timezone.localtime(refund_request.review_due_at)
    return f"{number} sent. Support decides by {when_text(due)}."


# -- the buyer's requests ---------------------------------------------------------------------


@login_required
@require_GET
def request_list(request):
    paginator = Paginator(refund_request_list_for_buyer(request.user), REQUESTS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    for refund_request in page.object_list:
        refund_request.holder = request_holder(refund_request)
        refund_request.clock = review_clock(refund_request)
    return render(request, "refunds/request_list.html", {"page": page})


@login_required
@require_GET
def request_detail(request, request_id: int):
    refund_request = _buyer_request_or_404(request.user, request_id)
    return _render_detail(request, refund_request, ReplyForm())


@login_required
@require_POST
def request_reply(request, request_id: int):
    """The buyer answers or adds to the request, with photos; the service decides."""
    refund_request = _buyer_request_or_404(request.user, request_id)
    form = ReplyForm(
        request.POST,
        request.FILES,
        held_photos=held_photos_for_buyer(request.user, refund_request.order_id),
    )
    is_valid = form.is_valid()
    held = form_photos_hold(request, refund_request.order_id, form)
    if not is_valid or form.errors:
        return _render_detail(request, refund_request, form, held=held, status=400)
    try:
        refund_request_reply(
            request_id=refund_request.pk,
            actor=request.user,
            body=form.cleaned_data["body"],
            held_photo_ids=[photo.pk for photo in held],
        )
    except DomainError as error:
        if error.kind == "not_found":
            raise Http404(error.detail) from error
        messages.error(request, refusal_text(error))
        return _render_detail(request, refund_request, form, held=held, status=_status(error))
    photos = len(held)
    added = f" with {photos} photo{'s' if photos != 1 else ''}" if photos else ""
    messages.success(request, f"Your message{added} was added to request #{refund_request.pk}.")
    return redirect(refund_request)


def _status(error: DomainError) -> int:
    """400 for bad input, 409 for a refusal of the state or the policy (D-10's codes, as the
    seller portal and the escalation pages answer)."""
    return 400 if error.kind == "invalid" else 409


def _buyer_request_or_404(buyer, request_id: int) -> RefundRequest:
    found = refund_request_detail_queryset().filter(buyer=buyer, pk=request_id).first()
    if found is None:
        raise Http404("No such refund request.")
    return found


def _render_detail(request, refund_request, form, *, held=(), status=200):
    escalation, can_escalate = refund_request_escalation_panel(refund_request)
    return render(
        request,
        "refunds/request_detail.html",
        {
            "rr": refund_request,
            "holder": request_holder(refund_request),
            "clock": review_clock(refund_request),
            "thread": message_thread(refund_request),
            "refunds": [_refund_row(r) for r in refund_request.refunds.all()],
            "can_reply": refund_request.status in OPEN_STATUSES,
            "form": form,
            "held_photos": held,
            "escalation": escalation,
            "can_escalate": can_escalate,
            "escalation_days": (
                refund_request.order.policy_version.escalation_max_days if can_escalate else None
            ),
        },
        status=status,
    )


def _awaits_supervisor(refund_request: RefundRequest) -> bool:
    return (
        refund_request.status in (Status.APPROVED, Status.PARTIALLY_APPROVED)
        and refund_request.needs_second_approval
        and refund_request.second_approved_by_id is None
    )


def request_holder(refund_request: RefundRequest) -> str:
    """Who has the request now: "support", "you", "the restaurant" or "done"."""
    if refund_request.status == Status.INFO_REQUESTED:
        return "you"
    if refund_request.status == Status.AWAITING_RESTAURANT:
        return "the restaurant"
    if refund_request.status in (Status.SUBMITTED, Status.UNDER_REVIEW):
        return "support"
    if _awaits_supervisor(refund_request) or refund_request.status == Status.APPROVED:
        return "support"
    return "done"


def review_clock(refund_request: RefundRequest) -> str:
    """The decision's due time (L-4.1), paused while support waits for the buyer."""
    if refund_request.status == Status.INFO_REQUESTED:
        return "paused"
    if refund_request.status in (Status.SUBMITTED, Status.UNDER_REVIEW, Status.AWAITING_RESTAURANT):
        return "running"
    if _awaits_supervisor(refund_request):
        return "supervisor"
    return ""


@dataclass(frozen=True)
class ThreadMessage:
    message: RefundMessage
    who: str


def message_thread(refund_request: RefundRequest) -> list[ThreadMessage]:
    """The messages, each with who wrote it to whom: support's questions to the restaurant are
    recorded at the moment of the "ask_restaurant" step, so they are told apart by it."""
    asked_restaurant_at = {
        event.created_at for event in refund_request.events.all() if event.name == "ask_restaurant"
    }
    thread = []
    for message in refund_request.messages.all():
        if message.role == RefundMessage.Role.BUYER:
            who = "You"
        elif message.role == RefundMessage.Role.RESTAURANT:
            who = "The restaurant, to support"
        elif message.created_at in asked_restaurant_at:
            who = "Support, to the restaurant"
        else:
            who = "Support"
        thread.append(ThreadMessage(message, who))
    return thread


@dataclass(frozen=True)
class RefundRow:
    refund: Refund
    where: str
    available_now: bool


def _refund_row(refund: Refund) -> RefundRow:
    where = {
        Refund.Destination.CARD: "to your card",
        Refund.Destination.ACCOUNT_CREDIT: "as account credit",
        Refund.Destination.PROMO_CREDIT: "as promotional credit",
    }[refund.destination]
    available_now = (
        refund.destination != Refund.Destination.CARD and refund.status == Refund.Status.SUCCEEDED
    )
    return RefundRow(refund, where, available_now)


# -- evidence -------------------------------------------------------------------------------


@login_required
@require_GET
def evidence(request, evidence_id: int):
    """A claim's photo (the stored, re-encoded one) or with `?size=thumb` its thumbnail, only for
    the request's buyer, the order's restaurant and support; anyone else gets a 404. Served as
    the type it was stored as, never sniffed, never cached by shared caches."""
    photo = refund_evidence_for_viewer(request.user, evidence_id)
    if photo is None:
        raise Http404("No such photo.")
    return _photo_response(photo, thumbnail=request.GET.get("size") == "thumb")


@login_required
@require_GET
def held_photo(request, photo_id: int):
    """A photo held for a request not sent yet (or `?size=thumb`), only for the buyer who
    chose it; anyone else gets a 404. Served like `evidence`."""
    photo = held_photo_for_viewer(request.user, photo_id)
    if photo is None:
        raise Http404("No such photo.")
    return _photo_response(photo, thumbnail=request.GET.get("size") == "thumb")


def _photo_response(photo, *, thumbnail: bool) -> FileResponse:
    stored = photo.thumbnail if thumbnail else photo.file
    if not stored:
        raise Http404("This photo has no thumbnail.")
    response = FileResponse(stored.open("rb"), content_type=photo.content_type)
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private"
    response["Content-Security-Policy"] = "default-src 'none'"
    return response
