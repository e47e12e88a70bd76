"""Refunds in admin: the money records read-only, and the support review queue of refund
requests (L-4.1; JOURNEYS, support agent and supervisor 1-2).

Thin: the review queue's decision buttons post to `RefundRequestAdmin.decide_view`, which calls
the matching service of `refunds.services` as the signed-in user; a refusal is a message. No
field of a request is edited here and nothing is added or deleted: requests, their timeline,
messages and evidence are written by the services only.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Case,
    Value,
    When,
)
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timeuntil

from core.admin import (
    DecideUrlMixin,
    MoneyDisplayMixin,
    ReadOnlyModelAdmin,
    ReadOnlyTabularInline,
    SearchWithoutHashMixin,
    moment,
    search_term_without_hash,
)
from core.errors import DomainError
from core.money import ZERO
from core.roles import is_supervisor
from orders.admin import form_errors, money
from orders.clause_links import clause_links as policy_clause_links
from refunds import policy
from refunds.models import (
    DeductionDispute,
    HeldPhoto,
    Refund,
    RefundEvidence,
    RefundMessage,
    RefundRequest,
    RefundRequestEvent,
    RefundRequestItem,
    RestaurantLedgerEntry,
)
from refunds.selectors import (
    deduction_disputes_for_support,
    refund_request_queue_counts,
    refund_request_queue_filter,
    refund_request_review_context,
)
from refunds.services import decisions, requests
from refunds.services.deductions import deduction_dispute_decide
from refunds.services.processing import refund_pay_as_account_credit, refund_retry_by_support


@admin.register(Refund)
class RefundAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "order",
        "amount",
        "destination",
        "status",
        "gateway_reference",
        "created_at",
        "succeeded_at",
        "expected_in_bank_by",
        "created_by",
    )
    list_filter = ("status", "destination", "created_at", "succeeded_at")
    search_fields = (
        "order__id__exact",
        "gateway_reference",
        "idempotency_key",
        "order__buyer__username",
        "order__buyer__email",
        "order__restaurant__name",
        "reason",
    )
    date_hierarchy = "created_at"
    list_select_related = ("order", "created_by")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "order",
                    "amount",
                    "destination",
                    "status",
                    "reason",
                    "clauses",
                    "created_by",
                    "created_at",
                    "succeeded_at",
                )
            },
        ),
        (
            "Gateway",
            {"fields": ("payment", "gateway_reference", "failure_message", "idempotency_key")},
        ),
        (
            "Expected dates (L-4.2)",
            {"fields": ("expected_processed_by", "expected_in_bank_from", "expected_in_bank_by")},
        ),
    )

    actions = ["retry_refunds", "pay_refunds_as_account_credit"]

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term_without_hash(search_term))

    def has_decide_permission(self, request) -> bool:
        return request.user.has_perm("refunds.change_refundrequest")  # support decides

    @admin.action(description="Try the selected failed card refunds again", permissions=["decide"])
    def retry_refunds(self, request, queryset):
        """K-OV, D-7: support gives a refund that kept failing one more try."""
        self._each(request, queryset, refund_retry_by_support, "will be tried again")

    @admin.action(
        description="Pay the selected failed card refunds as account credit",
        permissions=["decide"],
    )
    def pay_refunds_as_account_credit(self, request, queryset):
        """K-OV, D-7: support pays a refund that kept failing as account credit instead."""
        self._each(request, queryset, refund_pay_as_account_credit, "paid as account credit")

    def _each(self, request, queryset, service, done: str) -> None:
        for refund_id in queryset.values_list("pk", flat=True):
            try:
                service(refund_id=refund_id, actor=request.user)
            except DomainError as error:
                self.message_user(request, f"Refund #{refund_id}: {error.detail}", messages.ERROR)
            else:
                self.message_user(request, f"Refund #{refund_id} {done}.", messages.SUCCESS)


@admin.register(RestaurantLedgerEntry)
class RestaurantLedgerEntryAdmin(SearchWithoutHashMixin, ReadOnlyModelAdmin):
    """What each restaurant is owed, entry by entry (L-9): sales, cancellation fees kept, refund
    deductions and payouts, written by `refunds.services` only."""

    list_display = (
        "id",
        "created_at",
        "restaurant",
        "kind",
        "amount",
        "order",
        "refund",
        "description",
    )
    list_filter = ("kind", "restaurant", "created_at")
    search_fields = (
        "order__id__exact",
        "restaurant__name",
        "description",
        "refund__gateway_reference",
    )
    date_hierarchy = "created_at"
    list_select_related = ("restaurant", "order", "refund")
    fields = ("restaurant", "kind", "amount", "order", "refund", "description", "created_at")


# -- the review queue: refund requests (L-4.1) ------------------------------------------------

Status = RefundRequest.Status
# The review clock runs while support reviews or waits for the restaurant; it is paused while
# the buyer is asked for more (L-4.1), and stops with the decision.
REVIEWING = [Status.UNDER_REVIEW, Status.AWAITING_RESTAURANT]
OPEN = [Status.SUBMITTED, Status.UNDER_REVIEW, Status.INFO_REQUESTED, Status.AWAITING_RESTAURANT]


class ReviewDeadlineFilter(admin.SimpleListFilter):
    title = "review deadline (L-4.1)"
    parameter_name = "deadline"

    def lookups(self, request, model_admin):
        return [("due_soon", "Due soon"), ("overdue", "Overdue")]

    def queryset(self, request, queryset):
        return refund_request_queue_filter(queryset, self.value() or "", now=timezone.now())


def deadline_text(refund_request: RefundRequest, now: dt.datetime) -> str:
    """Where a request stands against its review deadline, in words."""
    if refund_request.status == Status.INFO_REQUESTED:
        return "paused: waiting for the buyer"
    version = refund_request.order.policy_version
    due = refund_request.review_due_at
    clock = policy.review_clock(
        status=refund_request.status,
        review_due_at=due,
        due_soon_flagged=refund_request.due_soon_flagged_at is not None,
        sla_hours=version.review_sla_hours,
        due_soon_hours=version.review_due_soon_hours,
        now=now,
    )
    if not clock.running:
        return "decided" if refund_request.decided_at else "-"
    if clock.overdue:
        return f"overdue by {timeuntil(now, due)}"
    return f"{'due soon: ' if clock.due_soon else ''}in {timeuntil(due, now)}"


def waits_for_second_approval(refund_request: RefundRequest) -> bool:
    """Decided above the four-eyes threshold, and no supervisor has confirmed it yet (D-6)."""
    return policy.waits_for_second_approval(
        status=refund_request.status,
        needs_second_approval=refund_request.needs_second_approval,
        second_approved=refund_request.second_approved_by_id is not None,
    )


def clause_links(clauses) -> str:
    """Each clause linked to /policy/ with its text on hover (D-9); "-" for none."""
    return policy_clause_links(clauses) or "-"


# -- the request's own records, shown on its page ---------------------------------------------


class RefundRequestItemInline(ReadOnlyTabularInline):
    model = RefundRequestItem
    verbose_name = "item named in the claim"
    verbose_name_plural = "items named in the claim"
    fields = ("item", "quantity", "unit_price", "ordered")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order_item")

    @admin.display(description="Item")
    def item(self, line: RefundRequestItem) -> str:
        return line.order_item.name

    @admin.display(description="Unit price")
    def unit_price(self, line: RefundRequestItem) -> str:
        return money(line.order_item.unit_price)

    @admin.display(description="Ordered")
    def ordered(self, line: RefundRequestItem) -> int:
        return line.order_item.quantity


def evidence_url(evidence: RefundEvidence) -> str:
    """The one place photos are served: to the buyer, the order's restaurant and support only,
    with the type found when it was decoded, never sniffed (refunds.views.evidence)."""
    return reverse("refunds:evidence", args=[evidence.pk])


def evidence_preview(evidence: RefundEvidence) -> str:
    """The generated thumbnail linking to the (capped) photo, both through the permission-checked
    view."""
    url = evidence_url(evidence)
    return format_html(
        '<a href="{}" target="_blank" rel="noopener"><img src="{}?size=thumb" alt="Photo {}" '
        'class="evidence-thumbnail" loading="lazy"></a>',
        url,
        url,
        evidence.pk,
    )


class RefundEvidenceInline(ReadOnlyTabularInline):
    model = RefundEvidence
    verbose_name = "photo"
    verbose_name_plural = "evidence (L-5.2)"
    fields = ("preview", "content_type", "dimensions", "size", "uploaded_by", "created_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("uploaded_by", "request")
        )  # str() names it

    @admin.display(description="Photo")
    def preview(self, evidence: RefundEvidence) -> str:
        return evidence_preview(evidence)

    @admin.display(description="Size (px)")
    def dimensions(self, evidence: RefundEvidence) -> str:
        return f"{evidence.width} x {evidence.height}"


class RefundMessageInline(ReadOnlyTabularInline):
    model = RefundMessage
    verbose_name = "message"
    verbose_name_plural = "messages with the buyer and the restaurant"
    fields = ("created_at", "role", "author", "body")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")


class RefundRequestEventInline(ReadOnlyTabularInline):
    """The request's timeline: every step, decision and money movement, who and why."""

    model = RefundRequestEvent
    verbose_name = "timeline event"
    verbose_name_plural = "request timeline (audit trail)"
    fields = (
        "created_at",
        "name",
        "from_status",
        "to_status",
        "actor",
        "actor_role",
        "message",
        "why",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "request")  # str() names it

    @admin.display(description="Clauses")
    def why(self, event: RefundRequestEvent) -> str:
        return clause_links(event.clauses)


# -- decisions: one form per button, named like the service's arguments ----------------------


class ApproveForm(forms.Form):
    method = forms.ChoiceField(label="Refund to", choices=RefundRequest.Method.choices)


class PartiallyApproveForm(forms.Form):
    amount = forms.DecimalField(label="Amount", max_digits=12, decimal_places=2)
    # The explanation ends up on the timeline line, which holds 500 characters with its prefix.
    explanation = forms.CharField(
        label="Explanation the buyer reads",
        required=False,
        max_length=400,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
    )
    method = forms.ChoiceField(label="Refund to", choices=RefundRequest.Method.choices)


class DenyForm(forms.Form):
    explanation = PartiallyApproveForm.base_fields["explanation"]


class OfferCreditForm(forms.Form):
    amount = forms.DecimalField(label="Promotional credit", max_digits=12, decimal_places=2)
    explanation = PartiallyApproveForm.base_fields["explanation"]


class QuestionForm(forms.Form):
    question = forms.CharField(
        label="Question", required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60})
    )


class NoInputForm(forms.Form):
    pass


class SendBackForm(forms.Form):
    explanation = forms.CharField(
        label="Why (the agent and the buyer read it)",
        max_length=400,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
    )


def _paid_or_waiting(refund_request: RefundRequest) -> str:
    amount = money(refund_request.decided_amount)
    if refund_request.status == Status.REFUNDED:
        parts = ", ".join(
            f"{money(refund.amount)} to {refund.get_destination_display().lower()}"
            for refund in refund_request.refunds.all()
        )
        return f"{amount} refunded ({parts}); the buyer was told when it arrives."
    if refund_request.needs_second_approval and not refund_request.second_approved_by_id:
        threshold = money(refund_request.order.policy_version.supervisor_approval_above)
        return f"{amount} approved; above {threshold} a supervisor approves too before money moves."
    parts = ", ".join(
        f"{money(refund.amount)} to {refund.get_destination_display().lower()}"
        for refund in refund_request.refunds.all()
    )
    return f"{amount} on its way ({parts}); the buyer is told when the processor has sent it."


@dataclass(frozen=True)
class Decision:
    label: str
    form: type[forms.Form]
    service: object
    done: object  # RefundRequest -> the success message


DECISIONS = {
    "approve": Decision(
        "Approve",
        ApproveForm,
        decisions.refund_request_approve,
        lambda r: f"approved: {_paid_or_waiting(r)}",
    ),
    "partially_approve": Decision(
        "Partially approve",
        PartiallyApproveForm,
        decisions.refund_request_partially_approve,
        lambda r: f"partially approved: {_paid_or_waiting(r)}",
    ),
    "deny": Decision(
        "Deny", DenyForm, decisions.refund_request_deny, lambda r: "denied; the buyer was told why."
    ),
    "offer_credit": Decision(
        "Offer promotional credit",
        OfferCreditForm,
        decisions.refund_request_offer_credit,
        lambda r: f"{money(r.decided_amount)} promotional credit given instead of a refund.",
    ),
    "offer_replacement": Decision(
        "Send a replacement order",
        DenyForm,
        decisions.refund_request_offer_replacement,
        lambda r: f"replacement order #{r.replacement_order_id} placed, free of charge.",
    ),
    "request_info": Decision(
        "Ask the buyer",
        QuestionForm,
        requests.refund_request_request_info,
        lambda r: "question sent to the buyer; the review clock is paused until they answer.",
    ),
    "ask_restaurant": Decision(
        "Ask the restaurant",
        QuestionForm,
        requests.refund_request_ask_restaurant,
        lambda r: "question sent to the restaurant; the request comes back once it answers.",
    ),
    "second_approve": Decision(
        "Second approval",
        NoInputForm,
        decisions.refund_request_second_approve,
        lambda r: f"second approval given: {_paid_or_waiting(r)}",
    ),
    "send_back": Decision(
        "Send back to review",
        SendBackForm,
        decisions.refund_request_second_reject,
        lambda r: "sent back to review; nothing was paid.",
    ),
}
REVIEW_DECISIONS = [
    "approve",
    "partially_approve",
    "deny",
    "offer_credit",
    "offer_replacement",
    "request_info",
    "ask_restaurant",
]


# -- what the agent reads before deciding -----------------------------------------------------


@admin.register(RefundRequest)
class RefundRequestAdmin(
    DecideUrlMixin, SearchWithoutHashMixin, MoneyDisplayMixin, admin.ModelAdmin
):
    """The review queue (L-4.1): open requests first, soonest due first. Agents decide through
    the buttons (the `change_refundrequest` permission, core/roles.py); nothing is a form field.
    """

    list_display = (
        "id",
        "deadline",
        "review_due_at",
        "status",
        "reason",
        "order_link",
        "restaurant",
        "buyer",
        "suggested",
        "decided",
        "submitted_at",
    )
    list_display_links = ("id", "deadline")
    list_filter = (
        ReviewDeadlineFilter,
        "status",
        "reason",
        ("order__restaurant", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = (
        "id__exact",
        "order__id__exact",
        "buyer__username",
        "buyer__email",
        "order__restaurant__name",
    )
    list_select_related = ("order__restaurant", "order__policy_version", "buyer")
    fieldsets = (
        (
            "Request",
            {
                "fields": (
                    "order_link",
                    "buyer",
                    "reason",
                    "description",
                    "preferred_method",
                    "status",
                )
            },
        ),
        (
            "Review deadline (L-4.1)",
            {
                "fields": (
                    "deadline",
                    "submitted_at",
                    "discovered_at",
                    "review_due_at",
                    "info_requested_at",
                    "due_soon_flagged_at",
                    "escalated_at",
                )
            },
        ),
        (
            "Policy suggestion",
            {
                "fields": (
                    "suggested_outcome",
                    "suggested_amount",
                    "suggested_code",
                    "suggestion_clauses",
                )
            },
        ),
        (
            "Decision",
            {
                "fields": (
                    "resolution",
                    "decided_amount",
                    "decided_method",
                    "explanation",
                    "decision_clause_links",
                    "decided_by_label",
                    "decided_at",
                    "needs_second_approval",
                    "second_approved_by",
                    "second_approved_at",
                    "refunded_at",
                )
            },
        ),
    )
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]
    inlines = [
        RefundRequestItemInline,
        RefundEvidenceInline,
        RefundMessageInline,
        RefundRequestEventInline,
    ]
    view_on_site = False  # the request page is the buyer's alone

    def get_ordering(self, request):
        open_first = Case(When(status__in=OPEN, then=Value(0)), default=Value(1))
        return [open_first.asc(), "review_due_at", "pk"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related(
                "order__restaurant",
                "order__policy_version",
                "buyer",
                "decided_by",
                "second_approved_by",
            )
        )

    # -- who may do what ---------------------------------------------------------------------

    def has_add_permission(self, request):
        return False  # buyers submit, through `refund_request_submit`

    def has_change_permission(self, request, obj=None):
        return False  # no field is edited; a request changes only by a decision

    def has_delete_permission(self, request, obj=None):
        return False  # requests, decisions and their money stay on record

    def has_decide_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    # -- columns and read-only fields --------------------------------------------------------

    @admin.display(description="Deadline")
    def deadline(self, refund_request: RefundRequest) -> str:
        return deadline_text(refund_request, timezone.now())

    @admin.display(description="Order", ordering="order")
    def order_link(self, refund_request: RefundRequest) -> str:
        url = reverse("admin:orders_order_change", args=[refund_request.order_id])
        return format_html('<a href="{}">{}</a>', url, refund_request.order)

    @admin.display(description="Restaurant", ordering="order__restaurant__name")
    def restaurant(self, refund_request: RefundRequest):
        return refund_request.order.restaurant

    @admin.display(description="Suggested", ordering="suggested_amount")
    def suggested(self, refund_request: RefundRequest) -> str:
        return f"{refund_request.suggested_outcome} {money(refund_request.suggested_amount)}"

    @admin.display(description="Decided", ordering="decided_amount")
    def decided(self, refund_request: RefundRequest) -> str:
        if refund_request.decided_amount is None:
            return "-"
        return money(refund_request.decided_amount)

    @admin.display(description="Clauses")
    def suggestion_clauses(self, refund_request: RefundRequest) -> str:
        return clause_links(refund_request.suggested_clauses)

    @admin.display(description="Decision clauses")
    def decision_clause_links(self, refund_request: RefundRequest) -> str:
        return clause_links(refund_request.decision_clauses)

    @admin.display(description="Decided by")
    def decided_by_label(self, refund_request: RefundRequest) -> str:
        if refund_request.decided_at is None:
            return "-"
        return refund_request.decided_by_label

    # -- the queue and the page --------------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        counts = refund_request_queue_counts(timezone.now())
        extra_context = {**(extra_context or {}), "queue_counts": counts}
        return super().changelist_view(request, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["review"] = refund_request_review_context(obj)
            context["decisions"] = self.decision_panel(request, obj, context["review"])
            running = obj.decided_at is None and obj.review_due_at is not None
            context["deadline"] = deadline_text(obj, timezone.now()) if running else ""
        return super().render_change_form(request, context, add, change, form_url, obj)

    def decision_panel(self, request, obj: RefundRequest, review: dict) -> dict:
        """The decisions this user may take on this request now, each with its form."""
        if not self.has_decide_permission(request, obj):
            return {
                "buttons": [],
                "note": "Deciding needs the permission to change refund "
                "requests (support agents and supervisors).",
            }
        names, note = self._open_decisions(request, obj, review["refundable"])
        approve_amount = review["approve_amount"]
        initial = {
            "method": obj.preferred_method,
            "amount": approve_amount if approve_amount > ZERO else None,
        }
        return {
            "buttons": [
                {
                    "name": name,
                    "label": DECISIONS[name].label,
                    "url": self._decide_url(obj, name),
                    "form": DECISIONS[name].form(
                        initial=initial if name != "offer_credit" else {}, auto_id=f"{name}_%s"
                    ),
                }
                for name in names
            ],
            "note": note,
            "approve_amount": approve_amount,
        }

    @staticmethod
    def _open_decisions(request, obj: RefundRequest, refundable: Decimal) -> tuple[list, str]:
        if policy.is_reviewable(obj.status):
            names, notes = REVIEW_DECISIONS, []
            if refundable <= ZERO:
                names = [n for n in names if n not in ("approve", "partially_approve")]
                notes.append(
                    "Nothing is left to refund on this order (L-7.2): deny, or offer "
                    "promotional credit."
                )
            if obj.status == Status.AWAITING_RESTAURANT:
                names = [n for n in names if n not in ("request_info", "ask_restaurant")]
                notes.append(
                    "Waiting for the restaurant's answer; support may decide without it (K-OV)."
                )
            return names, " ".join(notes)
        if waits_for_second_approval(obj):
            if is_supervisor(request.user) and obj.decided_by_id != request.user.pk:
                return ["second_approve", "send_back"], ""
            return [], (
                f"{money(obj.decided_amount)} was approved by {obj.decided_by_label}; above "
                f"{money(obj.order.policy_version.supervisor_approval_above)} another "
                "supervisor gives the second approval before money moves (four eyes)."
            )
        waiting = {
            Status.INFO_REQUESTED: "Waiting for the buyer's answer; the review clock is paused.",
        }
        return [], waiting.get(obj.status, "This request is decided; nothing is left to do.")

    def _decide_url(self, obj: RefundRequest, name: str) -> str:
        return reverse("admin:refunds_refundrequest_decide", args=[obj.pk, name])

    def decide_view(self, request, object_id, decision):
        """POST: one decision through its service as the signed-in user; the result or the
        refusal is a message, and the agent is back on the request."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_decide_permission(request, obj):
            raise PermissionDenied
        level, text = self._decide(request, obj, decision)
        self.message_user(request, f"Refund request #{obj.pk}: {text}", level)
        return redirect("admin:refunds_refundrequest_change", obj.pk)

    @staticmethod
    def _decide(request, obj: RefundRequest, name: str) -> tuple[int, str]:
        decision = DECISIONS.get(name)
        if decision is None:
            return messages.ERROR, f"unknown decision {name!r}."
        form = decision.form(request.POST)
        if not form.is_valid():
            return messages.ERROR, form_errors(form)
        try:
            result = decision.service(request_id=obj.pk, actor=request.user, **form.cleaned_data)
        except DomainError as error:
            return messages.ERROR, error.detail
        return messages.SUCCESS, decision.done(result)


# -- the request's records on their own: read-only, written by the services --------------------


class RequestLinkMixin:
    @admin.display(description="Refund request", ordering="request")
    def request_link(self, obj) -> str:
        url = reverse("admin:refunds_refundrequest_change", args=[obj.request_id])
        return format_html('<a href="{}">Refund request #{}</a>', url, obj.request_id)


@admin.register(RefundRequestEvent)
class RefundRequestEventAdmin(RequestLinkMixin, SearchWithoutHashMixin, ReadOnlyModelAdmin):
    """The refund requests' audit trail across all requests."""

    list_display = (
        "created_at",
        "request_link",
        "name",
        "from_status",
        "to_status",
        "actor",
        "actor_role",
        "message",
    )
    list_filter = ("name", "actor_role", "created_at")
    search_fields = (
        "request__id__exact",
        "request__order__id__exact",
        "actor__username",
        "request__buyer__username",
        "message",
    )
    list_select_related = ("request", "actor")
    fields = (
        "request_link",
        "name",
        "from_status",
        "to_status",
        "actor",
        "actor_role",
        "message",
        "clauses",
        "created_at",
    )


@admin.register(RefundMessage)
class RefundMessageAdmin(RequestLinkMixin, SearchWithoutHashMixin, ReadOnlyModelAdmin):
    list_display = ("created_at", "request_link", "role", "author", "body")
    list_filter = ("role", "created_at")
    search_fields = ("request__id__exact", "author__username", "request__buyer__username", "body")
    list_select_related = ("request", "author")
    fields = ("request_link", "role", "author", "body", "created_at")


@admin.register(RefundEvidence)
class RefundEvidenceAdmin(RequestLinkMixin, SearchWithoutHashMixin, ReadOnlyModelAdmin):
    list_display = (
        "id",
        "request_link",
        "preview",
        "content_type",
        "size",
        "uploaded_by",
        "created_at",
    )
    list_filter = ("content_type", "created_at")
    search_fields = ("request__id__exact", "uploaded_by__username", "request__buyer__username")
    list_select_related = ("request", "uploaded_by")
    fields = (
        "request_link",
        "preview",
        "content_type",
        "size",
        "width",
        "height",
        "uploaded_by",
        "created_at",
    )

    @admin.display(description="Photo")
    def preview(self, evidence: RefundEvidence) -> str:
        return evidence_preview(evidence)


@admin.register(HeldPhoto)
class HeldPhotoAdmin(SearchWithoutHashMixin, ReadOnlyModelAdmin):
    """Photos buyers chose on a report-a-problem form not sent yet (purged after a day). Listed
    for support's audit only; the image itself is the buyer's until the request is sent."""

    list_display = ("id", "order", "uploaded_by", "content_type", "size", "created_at")
    list_filter = ("created_at",)
    search_fields = ("order__id__exact", "uploaded_by__username")
    list_select_related = ("order", "uploaded_by")
    fields = ("order", "uploaded_by", "content_type", "size", "width", "height", "created_at")


@admin.register(RefundRequestItem)
class RefundRequestItemAdmin(RequestLinkMixin, SearchWithoutHashMixin, ReadOnlyModelAdmin):
    list_display = ("id", "request_link", "order_item", "quantity")
    search_fields = ("request__id__exact", "order_item__name", "request__buyer__username")
    list_select_related = ("request", "order_item")
    fields = ("request_link", "order_item", "quantity")


# -- the restaurant's disputes of deductions (L-9, K-DR) ---------------------------------------


class DeductionDisputeDecisionForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=[
            (DeductionDispute.Status.UPHELD, "Uphold"),
            (DeductionDispute.Status.REJECTED, "Reject"),
        ]
    )
    explanation = forms.CharField(required=False)


@admin.register(DeductionDispute)
class DeductionDisputeAdmin(SearchWithoutHashMixin, ReadOnlyModelAdmin):
    """A restaurant contesting a refund deduction (L-9, K-DR), open ones first, oldest first.
    Supervisors decide (the `change_deductiondispute` permission, core/roles.py): uphold (the
    deduction is reversed by a ledger entry of its own, once) or reject, with an explanation the
    restaurant reads; agents see the disputes. Written by `refunds.services.deductions` only."""

    change_form_template = "admin/refunds/deductiondispute/change_form.html"
    list_display = (
        "id",
        "status",
        "restaurant",
        "order_link",
        "deducted",
        "refund_reason",
        "opened_at",
        "decided_by",
        "decided_at",
    )
    list_display_links = ("id", "status")
    list_filter = ("status", ("restaurant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("deduction__order__id__exact", "restaurant__name", "note")
    fields = (
        "status",
        "restaurant",
        "order_link",
        "deducted",
        "refund_reason",
        "refund_clauses",
        "note",
        "opened_by",
        "opened_at",
        "decided_by",
        "decided_at",
        "explanation",
        "reversal",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return deduction_disputes_for_support().select_related("deduction__reversal")

    def get_ordering(self, request):
        open_first = Case(
            When(status=DeductionDispute.Status.OPEN, then=Value(0)), default=Value(1)
        )
        return [open_first.asc(), "opened_at"]

    def has_decide_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("refunds.change_deductiondispute")

    @admin.display(description="Order", ordering="deduction__order")
    def order_link(self, dispute: DeductionDispute) -> str:
        url = reverse("admin:orders_order_change", args=[dispute.deduction.order_id])
        return format_html('<a href="{}">Order #{}</a>', url, dispute.deduction.order_id)

    @admin.display(description="Deducted")
    def deducted(self, dispute: DeductionDispute) -> str:
        return money(-dispute.deduction.amount)

    @admin.display(description="Refunded for")
    def refund_reason(self, dispute: DeductionDispute) -> str:
        refund = dispute.deduction.refund
        return refund.reason if refund else dispute.deduction.description

    @admin.display(description="Clauses")
    def refund_clauses(self, dispute: DeductionDispute) -> str:
        refund = dispute.deduction.refund
        return ", ".join(policy.deduction_clauses(refund.clauses if refund else ()))

    @admin.display(description="Reversal")
    def reversal(self, dispute: DeductionDispute) -> str:
        reversal = getattr(dispute.deduction, "reversal", None)
        if reversal is None:
            return "-"
        return f"{money(reversal.amount)} booked {moment(reversal.created_at)}"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.is_open and self.has_decide_permission(request, obj):
            context["decide_url"] = reverse("admin:refunds_deductiondispute_decide", args=[obj.pk])
            context["deducted"] = -obj.deduction.amount  # booked negative (L-9)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        decide = path(
            "<path:object_id>/decide/",
            self.admin_site.admin_view(self.decide_view),
            name="refunds_deductiondispute_decide",
        )
        return [decide, *super().get_urls()]

    def decide_view(self, request, object_id):
        """POST: uphold or reject as the signed-in supervisor, through the service; a refusal
        (already decided, no explanation) is a message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        dispute = self.get_object(request, unquote(object_id))
        if dispute is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_decide_permission(request, dispute):
            raise PermissionDenied
        form = DeductionDisputeDecisionForm(request.POST)
        if not form.is_valid():
            self.message_user(request, form_errors(form), messages.ERROR)
            return redirect("admin:refunds_deductiondispute_change", dispute.pk)
        try:
            decided = deduction_dispute_decide(
                dispute_id=dispute.pk, actor=request.user, now=timezone.now(), **form.cleaned_data
            )
        except DomainError as error:
            self.message_user(request, f"Dispute #{dispute.pk}: {error.detail}", messages.ERROR)
        else:
            self.message_user(
                request, f"Dispute #{dispute.pk}: {decided.get_status_display()}.", messages.SUCCESS
            )
        return redirect("admin:refunds_deductiondispute_change", dispute.pk)
