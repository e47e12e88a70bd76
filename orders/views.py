"""Buyer pages (D-9): the policy, restaurants and menus, the cart and checkout, orders.

Thin: read through selectors, write through services, show a refusal as a message.
"""

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.cache import cache_add, cache_delete
from core.display import days_text, money_text, when_text
from core.errors import DomainError
from core.money import ZERO, percent_text
from credits.selectors import credit_balance
from disputes.selectors import order_escalation_panel
from orders import selectors
from orders.forms import AddToCartForm, CancelForm, CheckoutForm
from orders.models import MenuItem, Order, OrderEvent, Restaurant
from orders.policy import CancellationDecision, CancelOutcome
from orders.selectors import buyer_cancellation_decision
from orders.services.cancellation import order_cancel_by_buyer
from orders.services.missing import order_report_missing
from orders.services.placement import (
    MAX_QUANTITY_PER_LINE,
    LineRequest,
    order_checkout,
    order_quote,
)
from refunds.models import Refund
from refunds.policy import PaidFacts, RefundPart, problem_reporting_open, split_refund
from refunds.selectors import paid_facts

ORDERS_PER_PAGE = 20
CHECKOUT_TOKEN_SECONDS = 3600


def refusal_text(error: DomainError) -> str:
    """A refusal as the buyer reads it: the reason, then the clauses behind it."""
    if error.clauses:
        return f"{error.detail} Why? {', '.join(error.clauses)}"
    return error.detail


def form_errors_text(form) -> str:
    return " ".join(
        f"{form.fields[name].label or name.replace('_', ' ').capitalize()}: {error}"
        if name != "__all__"
        else str(error)
        for name, errors in form.errors.items()
        for error in errors
    )


class SessionCart:
    """The cart, kept in the session: one restaurant at a time, quantities by menu item."""

    KEY = "cart"

    def __init__(self, session):
        self.session = session
        data = session.get(self.KEY) or {}
        self.restaurant_id: int | None = data.get("restaurant_id")
        self.lines: dict[int, int] = {int(pk): qty for pk, qty in data.get("lines", {}).items()}

    def save(self) -> None:
        if self.lines:
            self.session[self.KEY] = {
                "restaurant_id": self.restaurant_id,
                "lines": {str(pk): qty for pk, qty in self.lines.items()},
            }
        else:
            self.session.pop(self.KEY, None)

    def clear(self) -> None:
        self.restaurant_id, self.lines = None, {}
        self.save()


def policy(request):
    """The policy in force (or the published version `?version=<label>`, e.g. the one an order
    pinned) as a reference: both texts with their sections and an anchor per clause id
    (`/policy/#L-2.1`), its "Last updated" date, and every version with what changed (K-UP).
    An unknown or unpublished version is a 404."""
    now = timezone.now()
    current, versions = selectors.policy_versions(now)
    shown = current
    label = request.GET.get("version")
    if label:
        shown = next((version for version in versions if version.label == label), None)
        if shown is None:
            raise Http404("No published policy version has that label.")
    context = {
        "current": current,
        "shown": shown,
        "document": selectors.policy_document(shown),
        "versions": versions,
        "now": now,
    }
    return render(request, "orders/policy.html", context)


def restaurant_list(request):
    now = timezone.now()
    restaurants = selectors.restaurant_list_for_buyers(now)
    for restaurant in restaurants:
        restaurant.opens_next = None if restaurant.is_open else restaurant.next_opening(now)
    return render(request, "orders/restaurant_list.html", {"restaurants": restaurants})


def restaurant_menu(request, slug: str):
    restaurant = get_object_or_404(Restaurant, slug=slug)
    now = timezone.now()
    is_open = restaurant.is_open_at(now)
    cart = SessionCart(request.session)
    other_cart_restaurant = None
    if cart.lines and cart.restaurant_id != restaurant.pk:
        other_cart_restaurant = selectors.restaurant_find(cart.restaurant_id)
    context = {
        "restaurant": restaurant,
        "items": restaurant.menu.all(),
        "is_open": is_open,
        "opens_next": None if is_open else restaurant.next_opening(now),
        "other_cart_restaurant": other_cart_restaurant,
        "max_quantity": MAX_QUANTITY_PER_LINE,
    }
    return render(request, "orders/restaurant_menu.html", context)


@require_POST
def cart_add(request):
    item = selectors.menu_item_find(_int_or_none(request.POST.get("menu_item")))
    if item is None:
        messages.error(request, "That item is no longer on the menu.")
        return redirect("orders:restaurants")
    if not request.user.is_authenticated:
        return redirect_to_login(item.restaurant.get_absolute_url())
    if item.is_available and not item.is_available_today:
        messages.error(request, f"{item.name} is sold out today; it is back on the menu tomorrow.")
        return redirect(item.restaurant)
    form = AddToCartForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors_text(form))
        return redirect(item.restaurant)
    cart = SessionCart(request.session)
    if cart.lines and cart.restaurant_id != item.restaurant_id:
        if not form.cleaned_data["replace"]:
            other = selectors.restaurant_find(cart.restaurant_id)
            messages.error(
                request,
                f"Your cart holds items from {other or 'another restaurant'}; a cart holds one "
                "restaurant's items. Place or empty that order first, or choose "
                "“Replace my cart”.",
            )
            return redirect(item.restaurant)
        cart.clear()
    quantity = cart.lines.get(item.pk, 0) + form.cleaned_data["quantity"]
    if quantity > MAX_QUANTITY_PER_LINE:
        messages.error(request, f"At most {MAX_QUANTITY_PER_LINE} of {item.name} per order.")
        return redirect(item.restaurant)
    cart.restaurant_id = item.restaurant_id
    cart.lines[item.pk] = quantity
    cart.save()
    messages.success(request, f"Added {form.cleaned_data['quantity']} x {item.name} to your cart.")
    return redirect(item.restaurant)


@login_required
def cart(request):
    """The cart and checkout. "Preview" recomputes the totals; "Place order" calls the
    placement service, which alone decides; a refusal is shown here and nothing is created."""
    basket = SessionCart(request.session)
    restaurant = selectors.restaurant_find(basket.restaurant_id) if basket.lines else None
    items = _cart_items(basket, restaurant)
    if not items:
        basket.clear()
        return render(request, "orders/cart.html", {"restaurant": None})
    if request.method == "POST" and "remove" in request.POST:
        return _remove_line(request, basket, restaurant)
    if request.method != "POST":
        form = CheckoutForm(
            restaurant=restaurant, items=items, initial=_initial(basket, restaurant)
        )
        return _render_cart(request, form, restaurant)
    form = CheckoutForm(request.POST, restaurant=restaurant, items=items)
    if not form.is_valid():
        messages.error(request, form_errors_text(form))
        return _render_cart(request, form, restaurant)
    basket.lines = {item.pk: quantity for item, quantity in form.lines()}
    basket.save()
    if request.POST.get("action") == "place":
        return _place(request, form, restaurant, basket)
    return _render_cart(request, form, restaurant)


def _remove_line(request, basket: SessionCart, restaurant: Restaurant):
    """Remove one line. Sent from the checkout form, the page comes back with everything else
    as typed (address, code, credit, the other quantities); sent alone, back to the cart."""
    basket.lines.pop(_int_or_none(request.POST["remove"]), None)
    basket.save()
    items = _cart_items(basket, restaurant)
    if "token" not in request.POST or not items:
        return redirect("orders:cart")
    return _render_cart(
        request, CheckoutForm(request.POST, restaurant=restaurant, items=items), restaurant
    )


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _cart_items(basket: SessionCart, restaurant: Restaurant | None) -> list[MenuItem]:
    if restaurant is None:
        return []
    found = selectors.menu_items_by_id(restaurant, basket.lines)
    return [found[pk] for pk in basket.lines if pk in found]


def _initial(basket: SessionCart, restaurant: Restaurant) -> dict:
    offered = [value for value in Order.Fulfillment.values if restaurant.offers(value)]
    initial = {f"qty_{pk}": quantity for pk, quantity in basket.lines.items()}
    return initial | {"fulfillment": offered[0] if offered else "", "use_credit": False}


def _render_cart(request, form: CheckoutForm, restaurant: Restaurant):
    now = timezone.now()
    lines = _form_lines(form)
    quantities = dict(lines or [])
    context = {
        "form": form,
        "restaurant": restaurant,
        "rows": [
            {
                "item": item,
                "field": field,
                "line_total": item.price * quantities[item] if item in quantities else None,
            }
            for item, field in form.quantity_fields()
        ],
        "is_open": restaurant.is_open_at(now),
        "opens_next": restaurant.next_opening(now),
        "balance": credit_balance(request.user, now=now),
    }
    if lines is not None:
        context |= _preview(request.user, form, restaurant, lines, context["balance"], now)
    if not form.is_bound:
        form.initial["token"] = uuid.uuid4().hex
    return render(request, "orders/cart.html", context)


def _form_lines(form: CheckoutForm) -> list[tuple[MenuItem, int]] | None:
    """The quantities the form holds, or None while they are invalid."""
    if not form.is_bound:
        return [(item, form.initial[form.quantity_name(item)]) for item in form.items]
    return form.lines() if form.is_valid() else None


def _preview(buyer, form: CheckoutForm, restaurant, lines, balance: dict, now) -> dict:
    """The totals the cart would be placed at, and how much credit it would use."""
    data = form.cleaned_data if form.is_bound else form.initial
    use_credit = bool(data.get("use_credit"))
    args = {"buyer": buyer, "restaurant": restaurant, "items": lines, "now": now}
    args |= {"fulfillment": data["fulfillment"], "discount_code": data.get("discount_code", "")}
    code_error = None
    try:
        price = order_quote(**args, use_credit=use_credit).price
    except DomainError as error:
        code_error = refusal_text(error)
        args["discount_code"] = ""
        price = order_quote(**args, use_credit=use_credit).price
    credit_would_use = None
    if balance["promo"] + balance["account"] > 0:
        with_credit = order_quote(**args, use_credit=True).price
        credit_would_use = with_credit.promo_credit_applied + with_credit.account_credit_applied
    return {"price": price, "code_error": code_error, "credit_would_use": credit_would_use}


def _place(request, form: CheckoutForm, restaurant: Restaurant, basket: SessionCart):
    # A double click sends the same token twice: only the first submission places an order.
    # With the cache down the token is also the checkout's key, and placement gives a checkout
    # placed before its order back (orders.services.placement.order_place).
    token_key = f"checkout:{request.user.pk}:{form.cleaned_data['token']}"
    if cache_add(token_key, 1, timeout=CHECKOUT_TOKEN_SECONDS) is False:
        messages.info(request, "This order was already submitted; here are your orders.")
        return redirect("orders:list")
    data = form.cleaned_data
    try:
        order = order_checkout(
            checkout_key=token_key,
            buyer=request.user,
            restaurant=restaurant,
            lines=[LineRequest(item.pk, quantity) for item, quantity in form.lines()],
            fulfillment=data["fulfillment"],
            delivery_address=data["delivery_address"],
            discount_code=data["discount_code"],
            use_credit=data["use_credit"],
        )
    except DomainError as error:
        cache_delete(token_key)
        messages.error(request, refusal_text(error))
        return _render_cart(request, form, restaurant)
    basket.clear()
    messages.success(request, _placed_message(order))
    return redirect(order)


def _placed_message(order: Order) -> str:
    if order.amount_charged:
        paid = f"{money_text(order.amount_charged)} charged to your card."
    else:
        paid = "Paid in full with your credit; nothing charged to your card."
    return f"Order #{order.pk} placed at {order.restaurant.name}. {paid}"


@login_required
def order_list(request):
    paginator = Paginator(selectors.order_list_for_buyer(request.user), ORDERS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "orders/order_list.html", {"page": page, "orders": page.object_list})


def _buyer_order_or_404(buyer, order_id: int) -> Order:
    try:
        return selectors.order_detail_for_buyer(buyer, order_id)
    except Order.DoesNotExist as error:
        raise Http404("No such order.") from error


@login_required
def order_detail(request, order_id: int):
    order = _buyer_order_or_404(request.user, order_id)
    now = timezone.now()
    panel = cancellation_panel(order, now=now)
    report_problem_open = problem_reporting_open(
        status=order.status,
        fulfillment=order.fulfillment,
        estimated_delivery_at=order.estimated_delivery_at,
        now=now,
    )
    context = {
        "order": order,
        "panel": panel,
        "missing": missing_panel(order, now=now),
        "report_problem_open": report_problem_open,
    }
    context["order_escalations"], context["contest_subjects"] = order_escalation_panel(order)
    return render(request, "orders/order_detail.html", context)


# -- a delivery that never came (L-6.2) ----------------------------------------------------


def missing_panel(order: Order, *, now: dt.datetime) -> dict:
    """What the order page says about a missing delivery before the buyer reports it (whether
    they may, how long the search lasts, what comes back if it fails) and while it is missing
    (until when the restaurant searches)."""
    return {
        "decision": selectors.missing_report_decision(order, now=now),
        "locate_minutes": order.policy_version.locate_minutes,
        "refund": paid_facts(order).refundable,
        "give_up_at": selectors.order_missing_give_up_at(order),
    }


@login_required
@require_POST
def order_missing(request, order_id: int):
    """The buyer reports that the delivery never came; the service alone decides. Only for
    the buyer's own order, as the API: the service lets support report for a buyer, but this
    is the buyer's page, and anyone else's order is a 404 here (D-4)."""
    if not selectors.order_is_buyers(request.user, order_id):
        raise Http404("No such order.")
    try:
        order = order_report_missing(order_id=order_id, actor=request.user)
    except DomainError as error:
        if error.kind == "not_found":
            raise Http404("No such order.") from error
        messages.error(request, refusal_text(error))
        return redirect("orders:detail", order_id=order_id)
    give_up_at = selectors.order_missing_give_up_at(order)
    messages.success(
        request,
        f"Order #{order.pk} reported missing. The restaurant is looking for it; if it is not "
        f"found by {when_text(give_up_at)}, you are refunded in full.",
    )
    return redirect(order)


# -- cancellation by the buyer (JOURNEYS buyer 2 and 3) -------------------------------------


@dataclass(frozen=True)
class CancellationPanel:
    """What the order page and the confirmation say about cancelling, from the policy's
    decision; everything here is read from the order as loaded, without a query."""

    order: Order
    decision: CancellationDecision
    now: dt.datetime
    fee_percent: Decimal | None = None  # the restaurant's percent held to the version's bounds
    refund_parts: list[RefundPart] = field(default_factory=list)
    support_decides_at: dt.datetime | None = None
    requested_fee: Decimal | None = None  # the quoted fee of a request waiting for an answer
    requested_refund: Decimal | None = None  # what that request gives back if approved
    cancelled_event: OrderEvent | None = None
    denied_by_support: bool = False  # support, in the restaurant's place, denied the request

    @property
    def is_free(self) -> bool:
        return self.decision.outcome == CancelOutcome.CANCEL_NOW

    @property
    def is_request(self) -> bool:
        return self.decision.outcome == CancelOutcome.REQUEST

    @property
    def is_waiting(self) -> bool:
        return self.order.status == Order.Status.CANCELLATION_REQUESTED

    @property
    def is_cancelled(self) -> bool:
        return self.order.status == Order.Status.CANCELLED

    @property
    def fee_percent_text(self) -> str:
        """15.00 -> "15", 12.50 -> "12.5"."""
        return percent_text(self.fee_percent) if self.fee_percent is not None else ""

    @property
    def seconds_left(self) -> int:
        if self.decision.window_ends_at is None:
            return 0
        return max(0, int((self.decision.window_ends_at - self.now).total_seconds()))

    @property
    def time_left_text(self) -> str:
        minutes, seconds = divmod(self.seconds_left, 60)
        return f"{minutes} min {seconds:02d} s"

    @property
    def refund_where(self) -> str:
        """ " to your card", or ": 19.99 USD to your card and 5.00 USD as account credit"."""
        where = {Refund.Destination.CARD: "to your card"}
        if len(self.refund_parts) == 1:
            return " " + where.get(self.refund_parts[0].destination, "as account credit")
        return (
            ": "
            + " and ".join(
                f"{money_text(part.amount)} {where.get(part.destination, 'as account credit')}"
                for part in self.refund_parts
            )
            if self.refund_parts
            else ""
        )

    @property
    def support_is_deciding(self) -> bool:
        """K-OV: the restaurant's time to answer is over (the beat task hands the request to
        support within a minute)."""
        return self.support_decides_at is not None and self.now >= self.support_decides_at

    @property
    def waiting_clauses(self) -> tuple[str, ...]:
        """The restaurant answers a request (L-2.1), support when it does not in time (K-OV)."""
        return ("L-2.1", "K-OV")


def cancellation_panel(order: Order, *, now: dt.datetime) -> CancellationPanel:
    """The cancellation panel of an order loaded by `selectors.order_detail_for_buyer`."""
    decision = buyer_cancellation_decision(order, now=now)
    extra = {}
    if decision.allowed:
        extra["refund_parts"] = _refund_parts(order, decision.refund)
    if decision.outcome == CancelOutcome.REQUEST:
        extra["fee_percent"] = decision.fee_percent
    if order.status == Order.Status.CANCELLATION_REQUESTED:
        extra["requested_fee"] = order.cancellation_fee or ZERO
        extra["requested_refund"] = selectors.order_cancellation_request_refund(order)
        extra["support_decides_at"] = selectors.order_cancellation_support_decides_at(order)
    if order.status == Order.Status.CANCELLED:
        events = [e for e in order.events.all() if e.to_status == Order.Status.CANCELLED]
        extra["cancelled_event"] = events[-1] if events else None
    extra["denied_by_support"] = selectors.order_cancellation_denied_by_support(order)
    return CancellationPanel(order=order, decision=decision, now=now, **extra)


def _refund_parts(order: Order, amount: Decimal) -> list[RefundPart]:
    """Where a refund of `amount` would go (D-7: by origin), as `refund_order` splits it,
    counting what already went back from the order's prefetched refunds."""
    counted = [r for r in order.refunds.all() if r.status != Refund.Status.FAILED]
    paid = PaidFacts(
        amount_charged=order.amount_charged,
        account_credit_applied=order.account_credit_applied,
        refunded_to_card=sum(
            (r.amount for r in counted if r.destination == Refund.Destination.CARD), ZERO
        ),
        refunded_total=sum((r.amount for r in counted if r.is_money_back), ZERO),
    )
    return split_refund(amount, paid, method="original")


@login_required
def order_cancel(request, order_id: int):
    """GET: the consequence of cancelling, once more, with the button. POST: cancel at the
    quoted fee through the service, which alone decides."""
    if request.method == "POST":
        return _cancel(request, order_id)
    order = _buyer_order_or_404(request.user, order_id)
    panel = cancellation_panel(order, now=timezone.now())
    if not panel.decision.allowed:
        messages.error(request, _decision_text(panel.decision))
        return redirect(order)
    form = CancelForm(initial={"quote": panel.decision.fee})
    return render(
        request, "orders/cancel_confirm.html", {"order": order, "panel": panel, "form": form}
    )


def _cancel(request, order_id: int):
    form = CancelForm(request.POST)
    if not form.is_valid():
        if not selectors.order_is_buyers(request.user, order_id):
            raise Http404("No such order.")
        messages.error(request, "Open the cancellation again to see its current terms.")
        return redirect("orders:detail", order_id=order_id)
    try:
        order, decision = order_cancel_by_buyer(
            order_id=order_id, actor=request.user, quote=form.cleaned_data["quote"]
        )
    except DomainError as error:
        if error.kind == "not_found":
            raise Http404("No such order.") from error
        if error.code == "quote_changed":
            messages.warning(request, f"The terms changed: {error.extra['cancellation']['detail']}")
        else:
            messages.error(request, refusal_text(error))
        return redirect("orders:detail", order_id=order_id)
    messages.success(request, _cancelled_text(order, decision))
    return redirect(order)


def _decision_text(decision: CancellationDecision) -> str:
    return f"{decision.detail} Why? {', '.join(decision.clauses)}"


def _cancelled_text(order: Order, decision: CancellationDecision) -> str:
    """What happened, in the buyer's words: the refund and its dates, or the wait."""
    if order.status == Order.Status.CANCELLATION_REQUESTED:
        support_at = selectors.order_cancellation_support_decides_at(order)
        return (
            f"You asked to cancel order #{order.pk}. Waiting for the restaurant: if it agrees, "
            f"you get {money_text(decision.refund)} back ({money_text(decision.fee)} fee). If it "
            f"has not answered by {when_text(support_at)}, support decides."
        )
    refunds = list(order.refunds.all())
    if not refunds:
        return f"Order #{order.pk} cancelled. Nothing was paid, so nothing needs refunding."
    total = sum((r.amount for r in refunds), ZERO)
    parts = "; ".join(_refund_text(refund) for refund in refunds)
    return f"Order #{order.pk} cancelled. {money_text(total)} comes back: {parts}."


def _refund_text(refund: Refund) -> str:
    amount = money_text(refund.amount)
    if refund.status == Refund.Status.FAILED:
        return f"{amount} to your card could not be refunded yet ({refund.failure_message})"
    if refund.destination == Refund.Destination.CARD:
        return (
            f"{amount} to your card, expected at your bank "
            f"{days_text(refund.expected_in_bank_from, refund.expected_in_bank_by)}"
        )
    return f"{amount} as {refund.get_destination_display().lower()}, in your wallet now"
