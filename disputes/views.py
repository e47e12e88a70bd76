"""Buyer escalation pages (D-9, journey "Buyer" 6): ask a supervisor to review a decision from
the request page (or, K-DR, the order page), then follow it to its final decision.

Thin: reads through selectors, every change through disputes.services.escalations, whose
refusals are shown as messages that change nothing."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core.display import day_text
from core.errors import DomainError
from disputes.forms import EscalationForm
from disputes.models import EscalationEvidence
from disputes.selectors import escalation_detail_queryset, escalation_list_for_buyer
from disputes.services.escalations import escalation_open, escalation_open_for_order
from orders.models import is_support
from orders.views import form_errors_text, refusal_text


@login_required
@require_GET
def escalation_list(request):
    return render(
        request,
        "disputes/escalation_list.html",
        {"escalations": escalation_list_for_buyer(request.user)},
    )


@login_required
@require_GET
def escalation_detail(request, escalation_id: int):
    escalation = escalation_detail_queryset().filter(buyer=request.user, pk=escalation_id).first()
    if escalation is None:
        raise Http404("No such escalation.")
    return render(request, "disputes/escalation_detail.html", {"escalation": escalation})


@login_required
@require_POST
def escalate_refund_request(request, request_id: int):
    """The request page's "Ask a supervisor to review" form (L-8.1)."""
    return _escalate(
        request,
        back=reverse("refunds:request", args=[request_id]),
        open_it=lambda data: escalation_open(
            request_id=request_id,
            actor=request.user,
            statement=data["statement"],
            photos=data["photos"],
        ),
    )


@login_required
@require_POST
def escalate_order(request, order_id: int):
    """The order page's "Contest" form for the restaurant's answer to a cancellation (K-DR)."""
    return _escalate(
        request,
        back=reverse("orders:detail", args=[order_id]),
        open_it=lambda data: escalation_open_for_order(
            order_id=order_id,
            actor=request.user,
            subject=request.POST.get("subject", ""),
            statement=data["statement"],
            photos=data["photos"],
        ),
    )


def _escalate(request, *, back: str, open_it):
    form = EscalationForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, form_errors_text(form))
        return redirect(back)
    try:
        escalation = open_it(form.cleaned_data)
    except DomainError as error:
        if error.kind == "not_found":
            raise Http404(error.detail) from error
        messages.error(request, refusal_text(error))
        return redirect(back)
    messages.success(
        request,
        f"Escalation #{escalation.pk} sent. A supervisor decides by "
        f"{day_text(escalation.due_at)}; the decision is final.",
    )
    return redirect(escalation)


@login_required
@require_GET
def evidence(request, evidence_id: int):
    """An escalation's photo (or `?size=thumb` its thumbnail), only for its buyer and support;
    anyone else gets a 404. Served as stored, never sniffed."""
    photo = EscalationEvidence.objects.select_related("escalation").filter(pk=evidence_id).first()
    if photo is None or not (
        photo.escalation.buyer_id == request.user.pk or is_support(request.user)
    ):
        raise Http404("No such photo.")
    stored = photo.thumbnail if request.GET.get("size") == "thumb" else photo.file
    if not stored:
        raise Http404("This photo has no thumbnail.")
    response = FileResponse(stored.open("rb"), content_type=photo.content_type)
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private"
    response["Content-Security-Policy"] = "default-src 'none'"
    return response
