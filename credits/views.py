"""The buyer's wallet (D-9, L-7): usable credit, every grant with its expiry, codes used."""

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.shortcuts import render
from django.utils import timezone

from credits import selectors
from orders.selectors import order_list_for_buyer_oldest_first


@login_required
def wallet(request):
    now = timezone.now()
    buyer_orders = order_list_for_buyer_oldest_first(request.user)
    codes = selectors.discount_codes_used_by(request.user).prefetch_related(
        Prefetch("orders", queryset=buyer_orders, to_attr="buyer_orders")
    )
    context = {
        "now": now,
        "balance": selectors.credit_balance(request.user, now=now),
        "grants": selectors.credit_grant_list_for_buyer(request.user),
        "codes": codes,
    }
    return render(request, "credits/wallet.html", context)
