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

from core.errors import DomainError
from disputes.forms import EscalationForm
from disputes.models import EscalationEvidence
from disputes.selectors import escalation_detail_queryset, escalation_list_for_buyer
from disputes.services.escalations import escalation_open, escalation_open_for_order
from orders.models import is_support
from orders.views import form_errors_text, refusal_text
from refunds.selectors import held_photos_for_buyer, refund_request_order_id_for_buyer
from refunds.views import form_photos_hold


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
    order_id = refund_request_order_id_for_buyer(request.user, request_id)
    if order_id is None:
        raise Http404("No such refund request.")
    return _escalate(
        request,
        back=reverse("refunds:request", args=[request_id]),
        order_id=order_id,
        open_it=lambda data, held_ids: escalation_open(
            request_id=request_id,
            actor=request.user,
            statement=data["statement"],
            held_photo_ids=held_ids,
        ),
    )


@login_required
@require_POST
def escalate_order(request, order_id: int):
    """The order page's "Contest" form for the restaurant's answer to a cancellation (K-DR)."""
    return _escalate(
        request,
        back=reverse("orders:detail", args=[order_id]),
        order_id=order_id,
        open_it=lambda data, held_ids: escalation_open_for_order(
            order_id=order_id,
            actor=request.user,
            subject=request.POST.get("subject", ""),
            statement=data["statement"],
            held_photo_ids=held_ids,
        ),
    )


def _escalate(request, *, back: str, order_id: int, open_it):
    """Open the escalation through the service, its photos first kept for the buyer and order
    (refunds.views.form_photos_hold); a refused form comes back with the statement as typed,
    the photos kept and why (400 bad input, 409 a refusal of the state)."""
    form = EscalationForm(
        request.POST,
        request.FILES,
        held_photos=held_photos_for_buyer(request.user, order_id),
    )
    is_valid = form.is_valid()
    held = form_photos_hold(request, order_id, form)
    if not is_valid or form.errors:
        return _retry(request, form, held, back=back, error=form_errors_text(form), status=400)
    try:
        escalation = open_it(form.cleaned_data, [photo.pk for photo in held])
    except DomainError as error:
        if error.kind == "not_found":
            raise Http404(error.detail) from error
        status = 400 if error.kind == "invalid" else 409
        return _retry(request, form, held, back=back, error=refusal_text(error), status=status)
    messages.success(
        request,
        f"Escalation #{escalation.pk} sent. A supervisor decides by "
        f"{escalation.due_at:%a %d %b %Y}; the decision is final.",
    )
    return redirect(escalation)


def _retry(request, form: EscalationForm, held, *, back: str, error: str, status: int):
    return render(
        request,
        "disputes/escalation_retry.html",
        {
            "form": form,
            "held_photos": held,
            "error": error,
            "back": back,
            "action": request.path,
            "subject": request.POST.get("subject", ""),
            "statement": form.data.get("statement", ""),
        },
        status=status,
    )


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
