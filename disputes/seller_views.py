"""The seller portal's allergen investigations (L-10): what support is investigating about the
partner's restaurants, and the restaurant's answer. Thin: `disputes.selectors` reads,
`disputes.services.incidents` writes."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from core.errors import DomainError
from disputes.selectors import allergen_investigations_for_partner
from disputes.services.incidents import MAX_TEXT, allergen_investigation_answer
from orders.selectors import order_cancellation_request_count_for_partner


@login_required
@never_cache
@require_GET
def incidents(request):
    """The allergen investigations against the partner's restaurants, open ones first, each
    with what the buyer reported, the restaurant's answer (a form while it is open) and, once
    closed, what support found."""
    if not request.user.restaurants.exists():
        return render(request, "seller/not_partner.html", status=403)
    return render(
        request,
        "seller/incidents.html",
        {
            "investigations": allergen_investigations_for_partner(request.user),
            "max_text": MAX_TEXT,
            "portal_active": "incidents",
            "portal_request_count": order_cancellation_request_count_for_partner(request.user),
        },
    )


@login_required
@require_POST
def incident_answer(request, incident_id: int):
    """The restaurant answers an investigation (a 404 for one against another restaurant)."""
    try:
        allergen_investigation_answer(
            incident_id=incident_id,
            actor=request.user,
            answer=request.POST.get("answer", ""),
            now=timezone.now(),
        )
    except DomainError as error:
        if error.kind == "not_found":
            raise Http404(error.detail) from error
        messages.error(request, f"Investigation #{incident_id}: {error.detail}")
        return redirect("seller:incidents")
    messages.success(request, f"Investigation #{incident_id}: support has your answer.")
    return redirect("seller:incidents")
