"""lojix's admin site: Django's, plus the page supervisors come to first, what awaits their
second approval (four eyes): refund decisions above the policy's `supervisor_approval_above`
(D-6, L-4.1) and policy versions drafted by another supervisor (K-UP), oldest first, each with
approve and reject buttons that call the services. The index links it with a count. Agents
are refused (403). Installed by `core.apps.LojixAdminConfig`.

This module imports no app's `admin` module: they register on this site while it is built.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from core.display import day_text, money_text
from core.errors import DomainError
from core.roles import is_supervisor
from orders.selectors import policy_versions_awaiting_approval
from orders.services.policy_versions import policy_version_approve, policy_version_reject
from refunds.selectors import refund_requests_awaiting_second_approval
from refunds.services.decisions import refund_request_second_approve, refund_request_second_reject

REFUND_REQUEST = "refund-request"
POLICY_VERSION = "policy-version"


class RejectForm(forms.Form):
    explanation = forms.CharField(
        label="Why (the agent or drafter reads it)",
        max_length=400,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Write why you reject it."},
    )


@dataclass(frozen=True)
class Awaiting:
    """One row of the queue: a decision or a draft waiting for a second supervisor."""

    kind: str
    object_id: int
    title: str
    url: str
    what: str
    amount: Decimal | None
    threshold: Decimal | None
    by: str
    since: dt.datetime
    yours: bool


def awaiting_second_approval(user) -> list[Awaiting]:
    """Both kinds in one list, oldest first (by when the decision or the draft was made);
    two queries."""
    rows = [_refund_row(r, user) for r in refund_requests_awaiting_second_approval()]
    rows += [_version_row(v, user) for v in policy_versions_awaiting_approval()]
    return sorted(rows, key=lambda row: (row.since, row.kind, row.object_id))


def awaiting_second_approval_count() -> int:
    """What the index's badge counts; two queries."""
    return (
        refund_requests_awaiting_second_approval().count()
        + policy_versions_awaiting_approval().count()
    )


def _refund_row(request, user) -> Awaiting:
    resolution = request.get_resolution_display().lower() or "refund"
    return Awaiting(
        kind=REFUND_REQUEST,
        object_id=request.pk,
        title=f"Refund request #{request.pk}",
        url=reverse("admin:refunds_refundrequest_change", args=[request.pk]),
        what=f"{request.get_reason_display()} · {request.order.restaurant} · "
        f"{request.get_status_display().lower()}, {resolution}",
        amount=request.decided_amount,
        threshold=request.order.policy_version.supervisor_approval_above,
        by=request.decided_by_label,
        since=request.decided_at,
        yours=request.decided_by_id == user.pk,
    )


def _version_row(version, user) -> Awaiting:
    proposed = version.effective_from
    summary = version.summary_of_changes.strip() or "No summary of changes."
    return Awaiting(
        kind=POLICY_VERSION,
        object_id=version.pk,
        title=f"Policy version {version.label}",
        url=reverse("admin:orders_policyversion_change", args=[version.pk]),
        what=summary if proposed is None else f"{summary} (proposed from {day_text(proposed)})",
        amount=None,
        threshold=None,
        by=str(version.drafted_by),
        since=version.created_at,
        yours=version.drafted_by_id == user.pk,
    )


def _approve(kind: str, object_id: int, user) -> str:
    if kind == REFUND_REQUEST:
        request = refund_request_second_approve(request_id=object_id, actor=user)
        amount = money_text(request.decided_amount)
        return f"Refund request #{object_id}: second approval given; {amount} goes to the buyer."
    version = policy_version_approve(version_id=object_id, actor=user, now=timezone.now())
    return f"Policy version {version.label}: approved; publish it with its effective date."


def _reject(kind: str, object_id: int, user, explanation: str) -> str:
    if kind == REFUND_REQUEST:
        refund_request_second_reject(request_id=object_id, actor=user, explanation=explanation)
        return f"Refund request #{object_id}: sent back to review; nothing was paid."
    version = policy_version_reject(
        version_id=object_id, actor=user, explanation=explanation, now=timezone.now()
    )
    return f"Policy version {version.label}: rejected; its drafter is told why."


def _label(kind: str, object_id: int) -> str:
    return f"{'Refund request #' if kind == REFUND_REQUEST else 'Policy version id '}{object_id}"


class LojixAdminSite(admin.AdminSite):
    index_template = "admin/lojix_index.html"

    def get_urls(self):
        return [
            path("approvals/", self.admin_view(self.approvals_view), name="approvals"),
            path(
                "approvals/<slug:kind>/<int:object_id>/<slug:verdict>/",
                self.admin_view(self.approval_decide_view),
                name="approval_decide",
            ),
            *super().get_urls(),
        ]

    def index(self, request, extra_context=None):
        """The index, with the count of what awaits a supervisor's second approval."""
        if is_supervisor(request.user):
            count = awaiting_second_approval_count()
            extra_context = {**(extra_context or {}), "awaiting_second_approval": count}
        return super().index(request, extra_context)

    def approvals_view(self, request):
        """GET: the queue of what awaits a second supervisor (supervisors only, else 403)."""
        if not is_supervisor(request.user):
            raise PermissionDenied("Only supervisors give second approvals.")
        context = {
            **self.each_context(request),
            "title": "Awaiting second approval",
            "rows": awaiting_second_approval(request.user),
        }
        return TemplateResponse(request, "admin/approvals.html", context)

    def approval_decide_view(self, request, kind: str, object_id: int, verdict: str):
        """POST: approve or reject one item through its service as the signed-in supervisor;
        the result or the service's refusal (four eyes, already decided, no reason) is a
        message, and the supervisor is back on the queue."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if kind not in (REFUND_REQUEST, POLICY_VERSION) or verdict not in ("approve", "reject"):
            raise Http404("No such approval.")
        if not is_supervisor(request.user):
            raise PermissionDenied("Only supervisors give second approvals.")
        level, text = self._decide(request, kind, object_id, verdict)
        messages.add_message(request, level, text)
        return redirect("admin:approvals")

    @staticmethod
    def _decide(request, kind: str, object_id: int, verdict: str) -> tuple[int, str]:
        form = RejectForm(request.POST) if verdict == "reject" else None
        if form is not None and not form.is_valid():
            errors = " ".join(e for field in form.errors.values() for e in field)
            return messages.ERROR, f"{_label(kind, object_id)}: {errors}"
        try:
            if form is None:
                return messages.SUCCESS, _approve(kind, object_id, request.user)
            explanation = form.cleaned_data["explanation"]
            return messages.SUCCESS, _reject(kind, object_id, request.user, explanation)
        except DomainError as error:
            return messages.ERROR, f"{_label(kind, object_id)}: {error.detail}"
