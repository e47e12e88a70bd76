"""Seller portal pages (D-9, journey "Restaurant partner" 1): the live order queue and the
lifecycle buttons. Reads go through selectors, every change through `order_advance`."""

import datetime as dt
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from core.errors import DomainError
from orders.models import Order
from orders.selectors import (
    order_list_for_partner,
    order_list_recently_finished_for_partner,
    order_next_actions,
    order_queue_for_partner,
)
from orders.services import SELLER_ACTIONS, order_advance

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
RECENT_HOURS = 24
RECENT_LIMIT = 20


@login_required
@never_cache
@require_GET
def queue(request):
    """The partner's live queue: incoming orders first, then those in progress."""
    context = _queue_context(request)
    if context is None:
        return _not_a_partner(request)
    return render(request, "seller/queue.html", context)


@login_required
@never_cache
@require_GET
def queue_fragment(request):
    """The queue's list alone, polled by static/js/seller-queue.js to refresh the page."""
    context = _queue_context(request)
    if context is None:
        return _not_a_partner(request)
    return render(request, "seller/_queue.html", context)


@login_required
@require_POST
def advance(request, order_id: int, action: str):
    """One lifecycle step for one of the partner's orders; another restaurant's order is a 404."""
    if not order_list_for_partner(request.user).filter(pk=order_id).exists():
        raise Http404("No such order in your restaurants.")
    try:
        order = order_advance(order_id=order_id, action=action, actor=request.user)
    except DomainError as error:
        messages.error(request, f"Order #{order_id}: {error.detail}")
    else:
        messages.success(request, f"Order #{order.pk}: {SELLER_ACTIONS[action]}")
    return redirect(_queue_url(request.user, request.POST.get("restaurant")))


def _queue_context(request) -> dict | None:
    """Everything the queue and its fragment show, or None for a user who is no partner."""
    restaurants = list(request.user.restaurants.order_by("name"))
    if not restaurants:
        return None
    selected = _selected_restaurant(restaurants, request.GET.get("restaurant"))
    orders = order_queue_for_partner(request.user)
    recent = order_list_recently_finished_for_partner(
        request.user, since=timezone.now() - dt.timedelta(hours=RECENT_HOURS)
    )
    if selected is not None:
        orders = orders.filter(restaurant=selected)
        recent = recent.filter(restaurant=selected)
    orders = [_with_next_action(order) for order in orders]
    query = f"?{urlencode({'restaurant': selected.pk})}" if selected else ""
    return {
        "restaurants": restaurants,
        "selected": selected,
        "incoming": [o for o in orders if o.status == Order.Status.PLACED],
        "in_progress": [o for o in orders if o.status != Order.Status.PLACED],
        "recent": recent[:RECENT_LIMIT],
        "recent_hours": RECENT_HOURS,
        "queue_url": reverse("seller:queue") + query,
        "fragment_url": reverse("seller:queue-fragment") + query,
    }


def _selected_restaurant(restaurants, raw: str | None):
    """The restaurant picked by ?restaurant=<id>; only the user's own, anything else a 404."""
    if not raw:
        return None
    for restaurant in restaurants:
        if str(restaurant.pk) == raw:
            return restaurant
    raise Http404("Not one of your restaurants.")


def _with_next_action(order: Order) -> Order:
    """Attach the one button the card offers: the first lifecycle action the order allows."""
    actions = order_next_actions(order)
    order.next_action = actions[0] if actions else None
    order.next_action_label = ACTION_LABELS.get(order.next_action, "")
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


def _not_a_partner(request):
    return render(request, "seller/not_partner.html", status=403)
