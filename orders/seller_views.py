"""Seller portal pages (D-9, journeys "Restaurant partner" 1 to 6): the live order queue
(htmx: polled every QUEUE_POLL_SECONDS, its buttons swapping their card) and its lifecycle
buttons, one order with its actions and timeline, cancelling an order, answering buyers'
cancellation requests, support's verification requests on refund claims, the ledger, the
restaurant's cancellation terms and its menu. Reads go through selectors, every change
through a service; a refusal is the service's DomainError, shown on the page. Every form works
as a plain POST and redirect without JavaScript."""

import datetime as dt
import functools
import math
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from core.display import money_text
from core.errors import DomainError
from core.money import ZERO, percent_text
from orders.models import SELLER_ACTIONS, Order
from orders.policy import DELAY_CAUSE_SETTABLE, RESTAURANT_CANCELLABLE, RestaurantCancelReason
from orders.selectors import (
    menu_item_find,
    menu_items_of_restaurant,
    order_cancellation_request_count_for_partner,
    order_cancellation_request_refund,
    order_cancellation_requests_for_partner,
    order_cancellation_support_decides_at,
    order_detail_for_partner,
    order_list_for_partner,
    order_list_recently_finished_for_partner,
    order_missing_give_up_at,
    order_next_actions,
    order_queue_for_partner,
    restaurant_terms_bounds,
)
from orders.seller_forms import (
    CancellationDenyForm,
    DelayCauseForm,
    MenuItemForm,
    RestaurantCancelForm,
    RestaurantTermsForm,
    SoldOutForm,
)
from orders.services.cancellation import (
    order_cancel_by_restaurant,
    order_cancellation_approve,
    order_cancellation_deny,
)
from orders.services.delays import order_set_delay_cause
from orders.services.lifecycle import order_advance
from orders.services.menu import menu_item_set_sold_out_today, menu_item_update
from orders.services.missing import order_missing_locate
from orders.services.terms import restaurant_update_terms
from refunds.forms import DeductionDisputeForm, VerificationForm
from refunds.policy import deduction_clauses
from refunds.selectors import (
    refund_request_verifications_for_partner,
    restaurant_ledger_balance,
    restaurant_ledger_entries,
    restaurant_ledger_entries_for_order,
    restaurant_ledger_entry_for_partner,
    restaurant_ledger_periods,
)
from refunds.services.deductions import deduction_dispute_open
from refunds.services.requests import refund_request_restaurant_verify

ACTION_LABELS = {
    "accept": "Accept",
    "start_preparation": "Start preparing",
    "mark_ready": "Ready",
    "dispatch": "Hand to courier",
    "deliver": "Delivered",
    "hand_over": "Picked up",
    "serve": "Served",
    "close": "Close",
}
QUEUE_POLL_SECONDS = 10
# What each lifecycle step does, shown beside its button on the order page: (text, clauses).
ACTION_CONSEQUENCES = {
    "accept": (
        "The buyer may still ask to cancel for {window} minutes after you accept; if you "
        "approve, you keep the {fee} % fee they were quoted.",
        ("K-B1", "L-2.1"),
    ),
    "start_preparation": (
        "From now on the buyer can no longer cancel; the order goes ahead.",
        ("L-2.1",),
    ),
    "mark_ready": ("The order is ready for the courier, pick-up or the table.", ()),
    "dispatch": ("The courier has it; the delivery estimate counts from now on.", ("L-6.1",)),
    "deliver": ("The buyer may report a problem with the order from now on.", ("L-5.1",)),
    "hand_over": ("The buyer has the order; problems may be reported from now on.", ("L-5.1",)),
    "serve": ("The order is on the table.", ()),
    "close": ("The table is done: quality problems can no longer be reported.", ("L-5.1",)),
}
RECENT_HOURS = 24
RECENT_LIMIT = 20
LEDGER_PER_PAGE = 50


# -- the queue (journey 1) --------------------------------------------------------------------


def partner_login_required(view):
    """`login_required` that also answers htmx: a signed-out browser polling the queue (or
    pressing one of its buttons) is sent to sign in as a whole page (HX-Redirect), never given
    the sign-in form inside the list."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if request.htmx:
            page = request.htmx.current_url_abs_path or reverse("seller:queue")
            return HttpResponseClientRedirect(redirect_to_login(page).url)
        return redirect_to_login(request.get_full_path())

    return wrapped


@login_required
@never_cache
@require_GET
def queue(request):
    """The partner's live queue: incoming orders first, then those in progress. The list polls
    `seller:queue-fragment` every QUEUE_POLL_SECONDS through htmx."""
    context = _queue_context(request)
    if context is None:
        return _not_a_partner(request)
    return render(request, "seller/queue.html", context)


@partner_login_required
@never_cache
@require_GET
def queue_fragment(request):
    """The queue's list alone, for htmx (HX-Request): what `queue` polls to refresh itself.
    Orders that were already incoming at the previous poll are marked `seen` so only the new
    ones pulse. Opened as a page (no HX-Request), it redirects to the queue."""
    if not request.htmx:
        return redirect(_queue_url(request.user, request.GET.get("restaurant")))
    context = _queue_context(request, polled=True)
    if context is None:
        return _not_a_partner(request)
    return render(request, "seller/_queue.html", context)


@partner_login_required
@require_POST
def advance(request, order_id: int, action: str):
    """One lifecycle step for one of the partner's orders; another restaurant's order is a 404.
    From htmx the answer is the order's card in its new state (or with the refusal); otherwise
    a redirect to the queue, or to the page in `next` (the order page)."""
    _require_partner_order(request.user, order_id)
    try:
        order = order_advance(order_id=order_id, action=action, actor=request.user)
    except DomainError as error:
        return _action_done(request, order_id, error=f"Order #{order_id}: {error.detail}")
    return _action_done(request, order.pk, note=f"Order #{order.pk}: {SELLER_ACTIONS[action]}")


@partner_login_required
@require_POST
def locate(request, order_id: int):
    """A missing order was found and delivered (L-6.2): the case closes, no refund follows.
    Another restaurant's order is a 404. Answers htmx with the card, like `advance`."""
    _require_partner_order(request.user, order_id)
    try:
        order = order_missing_locate(order_id=order_id, actor=request.user)
    except DomainError as error:
        return _action_done(request, order_id, error=f"Order #{order_id}: {error.detail}")
    return _action_done(request, order.pk, note=f"Order #{order.pk}: located and delivered.")


def _action_done(request, order_id: int, *, note: str = "", error: str = ""):
    """The answer to a queue button: the order's card for htmx (the card says what happened),
    else a message and a redirect back."""
    if request.htmx:
        order = _with_next_action(_partner_order_or_404(request.user, order_id))
        context = {
            "order": order,
            "selected": _posted_restaurant(request),
            "card_note": note,
            "card_error": error,
        }
        return render(request, "seller/_order_card.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, note)
    return redirect(_back_url(request))


def _queue_context(request, *, polled: bool = False) -> dict | None:
    """Everything the queue and its fragment show, or None for a user who is no partner.
    `polled`: the list is refreshing itself, so incoming orders older than one poll are
    marked `seen` (already shown)."""
    restaurants = list(request.user.restaurants.order_by("name"))
    if not restaurants:
        return None
    selected = _selected_restaurant(restaurants, request.GET.get("restaurant"))
    now = timezone.now()
    # Every open order of every restaurant, in one query: the navigation counts the requests
    # of all of them, the cards show the selected restaurant's.
    every_open = list(order_queue_for_partner(request.user))
    recent = order_list_recently_finished_for_partner(
        request.user, since=now - dt.timedelta(hours=RECENT_HOURS)
    )
    if selected is not None:
        recent = recent.filter(restaurant=selected)
    # One poll plus the time a slow answer may take: an order placed before that was on screen.
    shown_before = now - dt.timedelta(seconds=QUEUE_POLL_SECONDS + 5)
    orders = [
        _with_next_action(order, seen=polled and order.placed_at < shown_before)
        for order in every_open
        if selected is None or order.restaurant_id == selected.pk
    ]
    query = f"?{urlencode({'restaurant': selected.pk})}" if selected else ""
    waiting = sum(o.status == Order.Status.CANCELLATION_REQUESTED for o in every_open)
    return {
        "restaurants": restaurants,
        "selected": selected,
        "incoming": [o for o in orders if o.status == Order.Status.PLACED],
        "in_progress": [o for o in orders if o.status != Order.Status.PLACED],
        "recent": recent[:RECENT_LIMIT],
        "recent_hours": RECENT_HOURS,
        "queue_url": reverse("seller:queue") + query,
        "fragment_url": reverse("seller:queue-fragment") + query,
        "poll_seconds": QUEUE_POLL_SECONDS,
        **_portal("queue", waiting),
    }


def _with_next_action(order: Order, *, seen: bool = False) -> Order:
    """Attach the lifecycle actions the state machine allows now (`actions`: (action, label,
    consequence, clauses) in lifecycle order), the one button the queue card offers (the
    first), whether the restaurant may still cancel it, and whether the queue already showed
    it (`seen`)."""
    actions = order_next_actions(order)
    terms = {
        "window": order.restaurant.cancellation_window_minutes,
        "fee": percent_text(order.restaurant.cancellation_fee_percent),
    }
    order.actions = []
    for action in actions:
        consequence, clauses = ACTION_CONSEQUENCES.get(action, ("", ()))
        label = ACTION_LABELS.get(action, action)
        order.actions.append((action, label, consequence.format(**terms), clauses))
    order.next_action = actions[0] if actions else None
    order.next_action_label = ACTION_LABELS.get(order.next_action, "")
    order.restaurant_can_cancel = order.status in RESTAURANT_CANCELLABLE
    order.seen = seen
    return order


def _queue_url(user, raw_restaurant: str | None) -> str:
    """Back to the queue, keeping the restaurant filter when it is one of the user's own."""
    url = reverse("seller:queue")
    own = (
        raw_restaurant
        and raw_restaurant.isdigit()
        and user.restaurants.filter(pk=int(raw_restaurant)).exists()
    )
    return f"{url}?{urlencode({'restaurant': raw_restaurant})}" if own else url


def _back_url(request, default: str | None = None) -> str:
    """Where a form goes back to: its `next` when that is a seller portal page of this site,
    else `default`, else the queue (keeping the restaurant filter)."""
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    if target and safe and target.startswith(reverse("seller:queue")):
        return target
    return default or _queue_url(request.user, request.POST.get("restaurant"))


def _posted_restaurant(request):
    """The restaurant filter a queue button carried, when it is one of the user's own."""
    raw = request.POST.get("restaurant", "")
    if not raw.isdigit():
        return None
    return request.user.restaurants.filter(pk=int(raw)).first()


# -- one order --------------------------------------------------------------------------------


@login_required
@never_cache
@require_GET
def order_detail(request, order_id: int):
    """One of the partner's orders: items, times, every action the order allows now (each with
    what it does), its timeline (without the buyer's payment details) and what it booked."""
    order = order_detail_for_partner(request.user, order_id)
    if order is None:
        raise Http404("No such order in your restaurants.")
    order = _with_next_action(order)
    if order.status == Order.Status.CANCELLATION_REQUESTED:
        _with_request_terms(order, timezone.now())
    return render(
        request,
        "seller/order_detail.html",
        {
            "order": order,
            "is_open": order.status not in Order.FINISHED_STATUSES,
            "delay_form": _delay_form(order),
            "deny_form": CancellationDenyForm(),
            "give_up_at": order_missing_give_up_at(order)
            if order.status == Order.Status.MISSING
            else None,
            "timeline": order.events.all(),
            "verification_ids": list(
                refund_request_verifications_for_partner(request.user)
                .filter(order=order)
                .values_list("pk", flat=True)
            ),
            "request_clauses": ["K-B1", "L-2.1", "K-OV"],
            "missing_clauses": ["L-6.2"],
            "entries": restaurant_ledger_entries_for_order(order),
            "here": request.path,
            **_portal(None, order_cancellation_request_count_for_partner(request.user)),
        },
    )


def _delay_form(order: Order) -> DelayCauseForm | None:
    """The delay-cause form, on an open delivery order only (L-3.3)."""
    if order.fulfillment != Order.Fulfillment.DELIVERY or order.status not in DELAY_CAUSE_SETTABLE:
        return None
    return DelayCauseForm(initial={"delay_cause": order.delay_cause})


@login_required
@require_POST
def set_delay_cause(request, order_id: int):
    """The partner records why one of its deliveries is late (L-3.3); another restaurant's
    order is a 404. A refusal is shown on the order page."""
    _require_partner_order(request.user, order_id)
    form = DelayCauseForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Order #{order_id}: choose a delay cause from the list.")
        return redirect("seller:order", order_id)
    try:
        order = order_set_delay_cause(
            order_id=order_id, actor=request.user, delay_cause=form.cleaned_data["delay_cause"]
        )
    except DomainError as error:
        messages.error(request, f"Order #{order_id}: {error.detail}")
    else:
        messages.success(
            request, f"Order #{order.pk}: delay cause {order.get_delay_cause_display().lower()}."
        )
    return redirect("seller:order", order_id)


# -- cancelling an order (journey 2, L-2.2, K-S1..3) ------------------------------------------


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def cancel(request, order_id: int):
    """The partner cancels one of its orders with a reason and an explanation for the buyer,
    seeing the consequence first: a full refund, a goodwill credit, a possible deduction (L-9)."""
    order = _partner_order_or_404(request.user, order_id)
    if request.method == "GET":
        if order.status == Order.Status.CANCELLATION_REQUESTED:
            messages.info(
                request,
                f"The buyer asked to cancel order #{order.pk}: approve or deny the request.",
            )
            return redirect(reverse("seller:cancellation-requests") + f"#request-{order.pk}")
        if order.status not in RESTAURANT_CANCELLABLE:
            messages.error(
                request,
                f"Order #{order.pk} is {order.get_status_display().lower()}: the restaurant can "
                "no longer cancel it (L-2.2).",
            )
            return redirect("seller:queue")
        return _render_cancel(request, order, RestaurantCancelForm())
    form = RestaurantCancelForm(request.POST)
    if form.is_valid():
        try:
            order = order_cancel_by_restaurant(
                order_id=order.pk,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                explanation=form.cleaned_data["explanation"],
            )
        except DomainError as error:
            if error.kind == "not_found":
                raise Http404(error.detail) from error
            if error.kind != "invalid":
                messages.error(request, f"Order #{order.pk}: {error.detail}")
                return redirect("seller:queue")
            form.add_domain_error(error)
        else:
            messages.success(
                request,
                f"Order #{order.pk} cancelled. The buyer has your explanation and gets "
                f"{order.amount_paid} {settings.LOJIX_CURRENCY} back in full.",
            )
            return redirect("seller:queue")
    return _render_cancel(request, order, form, status=400)


def _render_cancel(request, order: Order, form, *, status: int = 200):
    return render(
        request,
        "seller/cancel.html",
        {
            "order": order,
            "form": form,
            "refund": order.amount_paid,
            "goodwill": order.policy_version.restaurant_cancel_goodwill,
            "reasons": RestaurantCancelReason.LABELS,
            **_portal(None, order_cancellation_request_count_for_partner(request.user)),
        },
        status=status,
    )


# -- buyers' cancellation requests (journey 3, L-2.1, K-B1, K-OV) ------------------------------


@login_required
@never_cache
@require_GET
def cancellation_requests(request):
    """The requests waiting for the partner's answer, with what approving means for both sides
    and when support decides instead."""
    if not request.user.restaurants.exists():
        return _not_a_partner(request)
    return _render_cancellation_requests(request)


def _render_cancellation_requests(request, *, draft=None, status: int = 200):
    """The waiting requests; `draft` is (order id, typed reason, error) after a refused deny,
    shown on that request's form so nothing typed is lost."""
    now = timezone.now()
    waiting = [
        _with_request_terms(order, now)
        for order in order_cancellation_requests_for_partner(request.user)
    ]
    _attach_draft(request, waiting, draft, fields=("deny_draft", "deny_error"))
    return render(
        request,
        "seller/cancellation_requests.html",
        {
            "requests": waiting,
            "deny_form": CancellationDenyForm(),
            **_portal("requests", len(waiting)),
        },
        status=status,
    )


@login_required
@require_POST
def cancellation_approve(request, order_id: int):
    """Approve a buyer's request: the buyer gets what is still refundable less the quoted fee,
    which the restaurant keeps."""
    waiting = order_list_for_partner(request.user).filter(pk=order_id).first()
    if waiting is None:
        raise Http404("No such order in your restaurants.")
    refund = order_cancellation_request_refund(waiting)  # before the approval refunds it
    try:
        order = order_cancellation_approve(order_id=order_id, actor=request.user)
    except DomainError as error:
        return _request_refused(request, order_id, error)
    currency = settings.LOJIX_CURRENCY
    messages.success(
        request,
        f"Order #{order.pk}: cancellation approved. You keep {order.cancellation_fee or ZERO} "
        f"{currency}; the buyer gets {refund} {currency} back.",
    )
    return redirect(_back_url(request, reverse("seller:cancellation-requests")))


@login_required
@require_POST
def cancellation_deny(request, order_id: int):
    """Deny a buyer's request, with an optional reason for the buyer: the order goes on."""
    _require_partner_order(request.user, order_id)
    form = CancellationDenyForm(request.POST)
    typed = request.POST.get("reason", "")
    if not form.is_valid():
        error = f"Order #{order_id}: {form.errors['reason'][0]}"
        if request.POST.get("next"):  # from the order page, which says why at its form
            messages.error(request, error)
            return redirect(_back_url(request, reverse("seller:cancellation-requests")))
        return _render_cancellation_requests(request, draft=(order_id, typed, error), status=400)
    try:
        order = order_cancellation_deny(
            order_id=order_id, actor=request.user, reason=form.cleaned_data["reason"].strip()
        )
    except DomainError as error:
        if error.kind == "not_found":
            raise Http404(error.detail) from error
        draft = (order_id, typed, f"Order #{order_id}: {error.detail}")
        return _render_cancellation_requests(request, draft=draft, status=_status(error))
    messages.success(request, f"Order #{order.pk}: cancellation denied; the order goes on.")
    return redirect(_back_url(request, reverse("seller:cancellation-requests")))


def _with_request_terms(order: Order, now: dt.datetime) -> Order:
    """Attach what approving means (the quoted fee the restaurant keeps, the buyer's refund) and
    when support decides instead (K-OV)."""
    order.fee_kept = order.cancellation_fee or ZERO
    order.buyer_refund = order_cancellation_request_refund(order)
    order.support_decides_at = order_cancellation_support_decides_at(order)
    seconds_left = (order.support_decides_at - now).total_seconds()
    order.minutes_left = max(0, math.ceil(seconds_left / 60))
    return order


def _request_refused(request, order_id: int, error: DomainError):
    if error.kind == "not_found":
        raise Http404(error.detail) from error
    messages.error(request, f"Order #{order_id}: {error.detail}")
    return redirect(_back_url(request, reverse("seller:cancellation-requests")))


# -- support's verification requests on refund claims (journey 4, L-4.1, L-9) -----------------


@login_required
@never_cache
@require_GET
def verifications(request):
    """Refund claims support asked the restaurant to verify: the question, the claim (reason,
    items, photos) and a note to answer with."""
    if not request.user.restaurants.exists():
        return _not_a_partner(request)
    return _render_verifications(request)


def _render_verifications(request, *, draft=None, status: int = 200):
    """The claims to verify; `draft` is (request id, typed note, error) after a refused
    answer, shown on that claim's form so nothing typed is lost."""
    waiting = list(refund_request_verifications_for_partner(request.user))
    for refund_request in waiting:
        asked = refund_request.support_messages
        refund_request.question = asked[-1] if asked else None
    _attach_draft(request, waiting, draft, fields=("note_draft", "note_error"))
    return render(
        request,
        "seller/verifications.html",
        {
            "requests": waiting,
            "form": VerificationForm(),
            "portal_verification_count": len(waiting),
            **_portal("verifications", order_cancellation_request_count_for_partner(request.user)),
        },
        status=status,
    )


@login_required
@require_POST
def verification_answer(request, request_id: int):
    """Answer support's question on a claim with a note. The service checks, in this order,
    that the claim is one of the partner's (a 404 otherwise), that support is waiting for the
    restaurant, and that the note is written."""
    note = request.POST.get("note", "")
    try:
        refund_request_restaurant_verify(request_id=request_id, actor=request.user, note=note)
    except DomainError as error:
        if error.kind == "not_found":
            raise Http404(error.detail) from error
        draft = (request_id, note, f"Refund request #{request_id}: {error.detail}")
        return _render_verifications(request, draft=draft, status=_status(error))
    messages.success(
        request, f"Refund request #{request_id}: thank you, support has your answer and decides."
    )
    return redirect("seller:verifications")


# -- the ledger (journey 5, L-9) --------------------------------------------------------------


@login_required
@never_cache
@require_GET
def ledger(request):
    """What each restaurant is owed, entry by entry, with the total of every weekly payout
    period and the balance."""
    restaurants = list(request.user.restaurants.order_by("name"))
    if not restaurants:
        return _not_a_partner(request)
    selected = _selected_restaurant(restaurants, request.GET.get("restaurant"))
    ids = [selected.pk] if selected else [r.pk for r in restaurants]
    page = Paginator(restaurant_ledger_entries(ids), LEDGER_PER_PAGE).get_page(
        request.GET.get("page")
    )
    periods = restaurant_ledger_periods(ids, tz=timezone.get_current_timezone())
    return render(
        request,
        "seller/ledger.html",
        {
            "restaurants": restaurants,
            "selected": selected,
            "page": page,
            "page_query": urlencode({"restaurant": selected.pk}) + "&" if selected else "",
            "periods": periods,
            "balance": restaurant_ledger_balance(periods),
            "show_restaurant": selected is None and len(restaurants) > 1,
            **_portal("ledger", order_cancellation_request_count_for_partner(request.user)),
        },
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def deduction_dispute(request, entry_id: int):
    """One refund deduction (L-9): why it was made, with its clauses, and either the form to
    dispute it once (K-DR) or the dispute and support's decision. Another restaurant's entry is
    a 404."""
    entry = restaurant_ledger_entry_for_partner(request.user, entry_id)
    if entry is None or entry.kind != entry.Kind.REFUND_DEDUCTION:
        raise Http404("Not a deduction of your restaurants.")
    form = DeductionDisputeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            deduction_dispute_open(
                entry_id=entry.pk,
                actor=request.user,
                note=form.cleaned_data["note"],
                now=timezone.now(),
            )
        except DomainError as error:
            messages.error(request, error.detail)
        else:
            messages.success(request, "Your dispute was sent: support decides and tells you.")
        return redirect("seller:deduction-dispute", entry.pk)
    dispute = getattr(entry, "dispute", None)
    return render(
        request,
        "seller/deduction_dispute.html",
        {
            "entry": entry,
            "dispute": dispute,
            "clauses": deduction_clauses(entry.refund.clauses if entry.refund_id else ()),
            "form": form if dispute is None else None,
            **_portal("ledger", order_cancellation_request_count_for_partner(request.user)),
        },
    )


# -- settings (journey 6, K-B1, L-2.1) --------------------------------------------------------


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def restaurant_settings(request):
    """A restaurant's cancellation window and fee, with the bounds of the policy version in
    force beside the fields; values outside them are refused by the service."""
    restaurants = list(request.user.restaurants.order_by("name"))
    if not restaurants:
        return _not_a_partner(request)
    raw = request.POST.get("restaurant") if request.method == "POST" else None
    selected = _selected_restaurant(restaurants, raw or request.GET.get("restaurant"))
    selected = selected or restaurants[0]
    bounds = restaurant_terms_bounds(timezone.now())
    if request.method == "GET":
        form = RestaurantTermsForm(
            initial={
                "cancellation_window_minutes": selected.cancellation_window_minutes,
                "cancellation_fee_percent": selected.cancellation_fee_percent,
            },
            bounds=bounds,
        )
        return _render_settings(request, restaurants, selected, form)
    form = RestaurantTermsForm(request.POST, bounds=bounds)
    if form.is_valid():
        try:
            restaurant = restaurant_update_terms(
                restaurant_id=selected.pk,
                actor=request.user,
                window_minutes=form.cleaned_data["cancellation_window_minutes"],
                fee_percent=form.cleaned_data["cancellation_fee_percent"],
            )
        except DomainError as error:
            if error.kind == "not_found":
                raise Http404(error.detail) from error
            form.add_domain_error(error)
        else:
            messages.success(
                request,
                f"{restaurant.name}: buyers may now ask to cancel within "
                f"{restaurant.cancellation_window_minutes} minutes of acceptance, for a fee of "
                f"{percent_text(restaurant.cancellation_fee_percent)} %.",
            )
            url = reverse("seller:settings")
            if len(restaurants) > 1:
                url += f"?{urlencode({'restaurant': restaurant.pk})}"
            return redirect(url)
    return _render_settings(request, restaurants, selected, form, status=400)


def _render_settings(request, restaurants, selected, form, *, status: int = 200):
    return render(
        request,
        "seller/settings.html",
        {
            "restaurants": restaurants,
            "selected": selected,
            "form": form,
            "bounds": form.bounds,
            **_portal("settings", order_cancellation_request_count_for_partner(request.user)),
        },
        status=status,
    )


# -- the menu: names, prices, allergens, sold out today ---------------------------------------


@login_required
@never_cache
@require_GET
def menu(request):
    """A restaurant's dishes with a form each (name, price, allergens) and a "sold out today"
    switch. Edits apply to new orders only; placed orders keep their copied prices."""
    restaurants = list(request.user.restaurants.order_by("name"))
    if not restaurants:
        return _not_a_partner(request)
    selected = _selected_restaurant(restaurants, request.GET.get("restaurant")) or restaurants[0]
    return _render_menu(request, restaurants, selected)


@login_required
@require_POST
def menu_item_edit(request, item_id: int):
    """Save one dish's name, price and allergens. A refusal re-renders the menu (400) with what
    was typed and the reason beside the field; another restaurant's dish is a 404."""
    restaurants = list(request.user.restaurants.order_by("name"))
    if not restaurants:
        return _not_a_partner(request)
    form = MenuItemForm(
        request.POST, currency=settings.LOJIX_CURRENCY, auto_id=f"dish-{item_id}-%s"
    )
    if form.is_valid():
        try:
            item = menu_item_update(
                menu_item_id=item_id,
                actor=request.user,
                name=form.cleaned_data["name"],
                price=form.cleaned_data["price"],
                allergens=form.cleaned_data["allergens"],
            )
        except DomainError as error:
            if error.kind == "not_found":
                raise Http404(error.detail) from error
            form.add_domain_error(error)
        else:
            messages.success(
                request,
                f"{item.name} saved: {money_text(item.price)} on new orders. Orders already "
                "placed keep the price they were placed at.",
            )
            return redirect(_menu_url(item.restaurant_id, restaurants, item.pk))
    selected = _restaurant_of_item(restaurants, item_id)
    return _render_menu(request, restaurants, selected, failed=(item_id, form), status=400)


@login_required
@require_POST
def menu_item_sold_out(request, item_id: int):
    """Mark one dish sold out for today (back on its own tomorrow) or back on sale now."""
    restaurants = list(request.user.restaurants.order_by("name"))
    if not restaurants:
        return _not_a_partner(request)
    form = SoldOutForm(request.POST)
    if not form.is_valid():
        selected = _restaurant_of_item(restaurants, item_id)
        messages.error(request, form.errors["sold_out"][0])
        return _render_menu(request, restaurants, selected, status=400)
    try:
        item = menu_item_set_sold_out_today(
            menu_item_id=item_id, actor=request.user, sold_out=form.cleaned_data["sold_out"]
        )
    except DomainError as error:
        raise Http404(error.detail) from error
    if item.unavailable_on:
        note = f"{item.name} is sold out today; buyers see it back on the menu tomorrow."
    else:
        note = f"{item.name} is back on sale."
    messages.success(request, note)
    return redirect(_menu_url(item.restaurant_id, restaurants, item.pk))


def _render_menu(request, restaurants, selected, *, failed=None, status: int = 200):
    """The menu page; `failed` is (item id, bound form) of an edit that was refused."""
    currency = settings.LOJIX_CURRENCY
    items = list(menu_items_of_restaurant(selected))
    today = timezone.localdate()
    for item in items:
        if failed and failed[0] == item.pk:
            item.form = failed[1]
        else:
            item.form = MenuItemForm(
                initial={
                    "name": item.name,
                    "price": item.price,
                    "allergens": ", ".join(item.allergens),
                },
                currency=currency,
                auto_id=f"dish-{item.pk}-%s",
            )
        item.sold_out_today = item.unavailable_on == today
    return render(
        request,
        "seller/menu.html",
        {
            "restaurants": restaurants,
            "selected": selected,
            "items": items,
            **_portal("menu", order_cancellation_request_count_for_partner(request.user)),
        },
        status=status,
    )


def _restaurant_of_item(restaurants, item_id: int):
    """The partner's restaurant whose menu holds `item_id`; a 404 for anybody else's dish."""
    item = menu_item_find(item_id)
    for restaurant in restaurants:
        if item is not None and restaurant.pk == item.restaurant_id:
            return restaurant
    raise Http404("There is no such dish on your menus.")


def _menu_url(restaurant_id: int, restaurants, item_id: int) -> str:
    url = reverse("seller:menu")
    if len(restaurants) > 1:
        url += f"?{urlencode({'restaurant': restaurant_id})}"
    return f"{url}#dish-{item_id}"


# -- shared -----------------------------------------------------------------------------------


def _portal(active: str | None, request_count: int) -> dict:
    """What the portal's sub-navigation needs: the page it is on and the waiting requests."""
    return {"portal_active": active, "portal_request_count": request_count}


def _partner_order_or_404(user, order_id: int) -> Order:
    order = (
        order_list_for_partner(user).select_related("policy_version").filter(pk=order_id).first()
    )
    if order is None:
        raise Http404("No such order in your restaurants.")
    return order


def _require_partner_order(user, order_id: int) -> None:
    if not order_list_for_partner(user).filter(pk=order_id).exists():
        raise Http404("No such order in your restaurants.")


def _selected_restaurant(restaurants, raw: str | None):
    """The restaurant picked by ?restaurant=<id>; only the user's own, anything else a 404."""
    if not raw:
        return None
    for restaurant in restaurants:
        if str(restaurant.pk) == raw:
            return restaurant
    raise Http404("Not one of your restaurants.")


def _attach_draft(request, rows, draft, *, fields: tuple[str, str]) -> None:
    """Put a refused form's typed text and error (`draft`: row id, text, error) on its row;
    when the row has left the list (answered meanwhile), say why as a message instead."""
    if draft is None:
        return
    row_id, text, error = draft
    for row in rows:
        if row.pk == row_id:
            setattr(row, fields[0], text)
            setattr(row, fields[1], error)
            return
    messages.error(request, error)


def _status(error: DomainError) -> int:
    """400 for bad input, 409 for a refusal of the state (D-10's codes, on pages too)."""
    return 400 if error.kind == "invalid" else 409


def _not_a_partner(request):
    return render(request, "seller/not_partner.html", status=403)
