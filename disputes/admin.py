"""The K-OV queue in admin: cases a restaurant or a buyer left unanswered, open ones first, each
with the one decision that resolves it; and the incidents (L-10), read-only, for supervisors.

Thin: an unanswered cancellation request is decided through `order_cancellation_approve` /
`order_cancellation_deny` (shared with the order page), which also resolve the case. Nothing
here is a form field: cases are opened by the beat task and closed by those services.
"""

from decimal import Decimal, InvalidOperation

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Value, When
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from core.admin import ReadOnlyModelAdmin, SearchWithoutHashMixin
from core.errors import DomainError
from core.roles import is_supervisor
from disputes.models import Escalation, Incident, Intervention
from disputes.selectors import escalation_queue
from disputes.services.escalations import escalation_decide, escalation_take
from orders.admin import (
    cancellation_request_context,
    decide_cancellation_request,
    money,
)
from orders.selectors import order_cancellation_request_refund
from refunds.selectors import order_list_held_for_agents, paid_facts

ORDER_SUMMARY = (
    "order_link",
    "order_status",
    "restaurant",
    "buyer",
    "amount_paid",
    "cancellation_fee",
    "refund_if_approved",
    "requested_at",
    "waited",
)
CASE_FIELDS = ("kind", "status", "summary", "opened_at", "refund_request_link")
OUTCOME_FIELDS = ("resolved_by", "resolved_at", "action_taken")


@admin.register(Intervention)
class InterventionAdmin(SearchWithoutHashMixin, admin.ModelAdmin):
    """Agents decide open cases (the `change_intervention` permission, see core/roles.py);
    everyone with view permission sees the queue and who resolved what."""

    list_display = (
        "id",
        "status",
        "kind",
        "order_link",
        "order_status",
        "restaurant",
        "buyer",
        "amount_paid",
        "cancellation_fee",
        "requested_at",
        "waited",
        "resolved_by",
        "action_taken",
    )
    list_display_links = ("id", "status")
    list_filter = ("status", "kind", ("order__restaurant", admin.RelatedOnlyFieldListFilter))
    search_fields = (
        "order__id__exact",
        "order__buyer__username",
        "order__buyer__email",
        "order__restaurant__name",
    )
    list_select_related = ("order__restaurant", "order__buyer", "resolved_by")
    fieldsets = (
        ("Case (K-OV)", {"fields": CASE_FIELDS}),
        ("Order", {"fields": ORDER_SUMMARY}),
        ("Outcome", {"fields": OUTCOME_FIELDS}),
    )
    readonly_fields = CASE_FIELDS + ORDER_SUMMARY + OUTCOME_FIELDS

    def get_ordering(self, request):
        open_first = Case(When(status=Intervention.Status.OPEN, then=Value(0)), default=Value(1))
        return [open_first.asc(), "opened_at"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("order__restaurant", "order__buyer", "resolved_by")
        )

    # -- who may do what ---------------------------------------------------------------------

    def has_add_permission(self, request):
        return False  # the beat task hands cases over (K-OV)

    def has_change_permission(self, request, obj=None):
        return False  # no field is edited; a case changes only by a decision

    def has_delete_permission(self, request, obj=None):
        return False  # who decided what stays on record

    def has_decide_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    # -- the order summary -------------------------------------------------------------------

    @admin.display(description="Refund request")
    def refund_request_link(self, case: Intervention) -> str:
        """An overdue review (L-4.1) is decided on the request itself."""
        if case.refund_request_id is None:
            return "-"
        url = reverse("admin:refunds_refundrequest_change", args=[case.refund_request_id])
        return format_html('<a href="{}">Refund request #{}</a>', url, case.refund_request_id)

    @admin.display(description="Order", ordering="order")
    def order_link(self, case: Intervention) -> str:
        url = reverse("admin:orders_order_change", args=[case.order_id])
        return format_html('<a href="{}">{}</a>', url, case.order)

    @admin.display(description="Order status", ordering="order__status")
    def order_status(self, case: Intervention) -> str:
        return case.order.get_status_display()

    @admin.display(description="Restaurant", ordering="order__restaurant__name")
    def restaurant(self, case: Intervention):
        return case.order.restaurant

    @admin.display(description="Buyer", ordering="order__buyer__username")
    def buyer(self, case: Intervention):
        return case.order.buyer

    @admin.display(description="Amount paid")
    def amount_paid(self, case: Intervention) -> str:
        return money(case.order.amount_paid)

    @admin.display(description="Quoted fee")
    def cancellation_fee(self, case: Intervention) -> str:
        fee = case.order.cancellation_fee
        return money(fee) if fee is not None else "-"

    @admin.display(description="Refund if approved")
    def refund_if_approved(self, case: Intervention) -> str:
        if case.order.cancellation_fee is None:
            return "-"
        return money(order_cancellation_request_refund(case.order))

    @admin.display(description="Requested at", ordering="order__cancellation_requested_at")
    def requested_at(self, case: Intervention):
        return case.order.cancellation_requested_at

    @admin.display(description="Waited")
    def waited(self, case: Intervention) -> str:
        """How long the buyer has waited for an answer (until the case was resolved)."""
        requested_at = case.order.cancellation_requested_at
        if requested_at is None:
            return "-"
        return timesince(requested_at, case.resolved_at or timezone.now())

    # -- deciding ----------------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        decide = path(
            "<path:object_id>/decide/<str:decision>/",
            self.admin_site.admin_view(self.decide_view),
            name="{}_{}_decide".format(*info),
        )
        return [decide, *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["cancellation_panel"] = self.decision_panel(request, obj) if obj else None
        return super().render_change_form(request, context, add, change, form_url, obj)

    def decision_panel(self, request, case: Intervention) -> dict | None:
        """The approve / deny buttons of an open unanswered cancellation request, for agents."""
        if not (
            case.status == Intervention.Status.OPEN
            and case.kind == Intervention.Kind.UNANSWERED_CANCELLATION
            and self.has_decide_permission(request, case)
        ):
            return None
        context = cancellation_request_context(case.order)
        decide = f"admin:{self.opts.app_label}_{self.opts.model_name}_decide"
        context["approve_url"] = reverse(decide, args=[case.pk, "approve"])
        context["deny_url"] = reverse(decide, args=[case.pk, "deny"])
        return {"request": context}

    def decide_view(self, request, object_id, decision):
        """POST: approve or deny the request as the signed-in agent; the service resolves the
        case. A case the restaurant answered meanwhile is refused with a message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        case = self.get_object(request, unquote(object_id))
        if case is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_decide_permission(request, case):
            raise PermissionDenied
        if case.kind != Intervention.Kind.UNANSWERED_CANCELLATION:
            self.message_user(request, f"{case}: nothing to decide here.", messages.ERROR)
        else:
            decide_cancellation_request(self, request, order=case.order, decision=decision)
        return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", case.pk)


@admin.register(Incident)
class IncidentAdmin(SearchWithoutHashMixin, ReadOnlyModelAdmin):
    """Outages, allergen investigations and force majeure (L-10), open ones first. Opened by the
    services (an allergic-reaction refund request opens an allergen investigation); supervisors
    see them (core/roles.py). A force-majeure incident lists the late deliveries it holds back
    from the automatic refund for agents (L-10)."""

    list_display = (
        "id",
        "status",
        "kind",
        "title",
        "restaurant",
        "order_link",
        "refund_request_link",
        "created_at",
        "closed_at",
    )
    list_display_links = ("id", "title")
    list_filter = ("status", "kind", ("restaurant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("title", "restaurant__name", "order__id__exact", "refund_request__id__exact")
    list_select_related = ("restaurant", "order", "refund_request", "opened_by")
    fields = (
        "kind",
        "status",
        "title",
        "description",
        "restaurant",
        "order_link",
        "refund_request_link",
        "starts_at",
        "ends_at",
        "opened_by",
        "created_at",
        "closed_at",
        "findings",
    )
    readonly_fields = (*fields, "held_orders")

    def get_ordering(self, request):
        open_first = Case(When(status=Incident.Status.OPEN, then=Value(0)), default=Value(1))
        return [open_first.asc(), "-created_at"]

    def get_fields(self, request, obj=None):
        if obj is not None and obj.kind == Incident.Kind.FORCE_MAJEURE:
            return (*self.fields, "held_orders")
        return self.fields

    @admin.display(description="Orders held for agents")
    def held_orders(self, incident: Incident) -> str:
        """The late deliveries this incident holds back from the automatic refund (L-6.1, L-10)
        until an agent decides them, in three queries."""
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td>'
            "<td>{} minutes late</td><td>{}</td></tr>",
            (
                (
                    reverse("admin:orders_order_change", args=[held.order.pk]),
                    held.order,
                    held.order.restaurant,
                    held.order.buyer,
                    held.order.get_status_display(),
                    held.minutes_late,
                    money(held.refundable),
                )
                for held in order_list_held_for_agents(now=timezone.now(), incident=incident)
            ),
        )
        if not rows:
            return "None: no late delivery is waiting for an agent."
        return format_html(
            '<table class="held-orders"><thead><tr><th>Order</th><th>Restaurant</th>'
            "<th>Buyer</th><th>Status</th><th>Late</th><th>Still refundable</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Order", ordering="order")
    def order_link(self, incident: Incident) -> str:
        if incident.order_id is None:
            return "-"
        url = reverse("admin:orders_order_change", args=[incident.order_id])
        return format_html('<a href="{}">{}</a>', url, incident.order)

    @admin.display(description="Refund request", ordering="refund_request")
    def refund_request_link(self, incident: Incident) -> str:
        if incident.refund_request_id is None:
            return "-"
        url = reverse("admin:refunds_refundrequest_change", args=[incident.refund_request_id])
        return format_html('<a href="{}">Refund request #{}</a>', url, incident.refund_request_id)


class EscalationDueFilter(admin.SimpleListFilter):
    """L-8.1: undecided escalations due soon (3 business days in) or overdue (past 5)."""

    title = "due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("soon", "Due soon"), ("overdue", "Overdue")]

    def queryset(self, request, queryset):
        now = timezone.now()
        undecided = queryset.filter(status__in=[Escalation.Status.OPEN, "under_review"])
        if self.value() == "soon":
            return undecided.filter(due_soon_at__lte=now, due_at__gt=now)
        if self.value() == "overdue":
            return undecided.filter(due_at__lte=now)
        return queryset


ESCALATION_FIELDS = (
    "subject",
    "status",
    "order_link",
    "refund_request_link",
    "buyer",
    "opened_at",
    "due_at",
    "statement",
    "photos",
    "contested_decision",
    "previous_amount_text",
    "still_refundable",
)
ESCALATION_OUTCOME = ("reviewer", "decided_by", "decided_at", "explanation", "amount_text")


@admin.register(Escalation)
class EscalationAdmin(SearchWithoutHashMixin, admin.ModelAdmin):
    """Supervisors' queue (L-8.1, K-DR): undecided escalations first, soonest due first, with
    the contested decision, the buyer's statement and photos, and the decision buttons. Agents
    see the queue (view permission) and cannot decide; the service refuses anyone but a
    supervisor too."""

    list_display = (
        "id",
        "status",
        "subject",
        "order_link",
        "refund_request_link",
        "buyer",
        "opened_at",
        "due_at",
        "due_state",
        "decided_by",
        "amount_text",
    )
    list_display_links = ("id", "status")
    list_filter = ("status", "subject", EscalationDueFilter)
    search_fields = ("order__id__exact", "refund_request__id__exact", "buyer__username")
    list_select_related = ("order", "refund_request", "buyer", "decided_by")
    fieldsets = (
        ("Escalation (L-8.1, K-DR)", {"fields": ESCALATION_FIELDS}),
        ("Decision (final)", {"fields": ESCALATION_OUTCOME}),
    )
    readonly_fields = ESCALATION_FIELDS + ESCALATION_OUTCOME

    def get_queryset(self, request):
        return escalation_queue()

    def get_ordering(self, request):
        undecided_first = Case(
            When(status__in=[Escalation.Status.OPEN, Escalation.Status.UNDER_REVIEW], then=0),
            default=Value(1),
        )
        return [undecided_first.asc(), "due_at", "pk"]

    def has_add_permission(self, request):
        return False  # buyers open escalations

    def has_change_permission(self, request, obj=None):
        return False  # no field is edited; an escalation changes only by a decision

    def has_delete_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request, obj=None) -> bool:
        return is_supervisor(request.user)

    @admin.display(description="Order", ordering="order")
    def order_link(self, escalation: Escalation) -> str:
        url = reverse("admin:orders_order_change", args=[escalation.order_id])
        return format_html('<a href="{}">Order #{}</a>', url, escalation.order_id)

    @admin.display(description="Refund request")
    def refund_request_link(self, escalation: Escalation) -> str:
        if escalation.refund_request_id is None:
            return "-"
        url = reverse("admin:refunds_refundrequest_change", args=[escalation.refund_request_id])
        return format_html('<a href="{}">Refund request #{}</a>', url, escalation.refund_request_id)

    @admin.display(description="Due")
    def due_state(self, escalation: Escalation) -> str:
        if escalation.is_final:
            return "Decided"
        now = timezone.now()
        if escalation.due_at <= now:
            return "Overdue"
        return "Due soon" if escalation.due_soon_at <= now else "On time"

    @admin.display(description="Photos")
    def photos(self, escalation: Escalation) -> str:
        links = format_html_join(
            " ",
            '<a href="{0}"><img src="{0}?size=thumb" alt="Photo" width="100"></a>',
            ((reverse("disputes:evidence", args=[p.pk]),) for p in escalation.evidence.all()),
        )
        return links or "-"

    @admin.display(description="Contested decision")
    def contested_decision(self, escalation: Escalation) -> str:
        request = escalation.refund_request
        if request is None:
            order = escalation.order
            if escalation.subject == Escalation.Subject.CANCELLATION_FEE:
                return f"The restaurant kept a cancellation fee of {money(order.cancellation_fee)}."
            return "The restaurant denied the buyer's cancellation request."
        amount = money(request.decided_amount) if request.decided_amount else "nothing"
        return (
            f"{request.get_status_display()} by {request.decided_by_label}: {amount}. "
            f"{request.explanation}"
        )

    @admin.display(description="Given back by that decision")
    def previous_amount_text(self, escalation: Escalation) -> str:
        return money(escalation.previous_amount)

    @admin.display(description="Still refundable on the order")
    def still_refundable(self, escalation: Escalation) -> str:
        return money(paid_facts(escalation.order).refundable)

    @admin.display(description="New total refund")
    def amount_text(self, escalation: Escalation) -> str:
        return money(escalation.amount) if escalation.amount is not None else "-"

    # -- deciding ----------------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        decide = path(
            "<path:object_id>/decide/<str:decision>/",
            self.admin_site.admin_view(self.decide_view),
            name="{}_{}_decide".format(*info),
        )
        return [decide, *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["escalation_panel"] = self.decision_panel(request, obj) if obj else None
        return super().render_change_form(request, context, add, change, form_url, obj)

    def decision_panel(self, request, escalation: Escalation) -> dict | None:
        """Take for review, uphold or overturn (with the new total): supervisors only."""
        if escalation.is_final or not self.has_decide_permission(request, escalation):
            return None
        decide = f"admin:{self.opts.app_label}_{self.opts.model_name}_decide"
        refundable = paid_facts(escalation.order).refundable
        return {
            "take_url": reverse(decide, args=[escalation.pk, "take"])
            if escalation.status == Escalation.Status.OPEN
            else None,
            "uphold_url": reverse(decide, args=[escalation.pk, "upheld"]),
            "overturn_url": reverse(decide, args=[escalation.pk, "overturned"]),
            "default_amount": escalation.previous_amount + refundable,
            "previous_amount": escalation.previous_amount,
        }

    def decide_view(self, request, object_id, decision):
        """POST: take, uphold or overturn as the signed-in supervisor, through the services;
        a refusal is a message and changes nothing."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        escalation = self.get_object(request, unquote(object_id))
        if escalation is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_decide_permission(request, escalation):
            raise PermissionDenied
        try:
            if decision == "take":
                escalation_take(escalation_id=escalation.pk, actor=request.user)
                done = "taken for review"
            elif decision in ("upheld", "overturned"):
                decided = escalation_decide(
                    escalation_id=escalation.pk,
                    actor=request.user,
                    outcome=decision,
                    explanation=request.POST.get("explanation", ""),
                    amount=_amount(request.POST.get("amount", "")),
                )
                done = f"{decision}; the buyer is told (final)" + (
                    f", new total {money(decided.amount)}" if decided.amount else ""
                )
            else:
                raise DomainError("unknown_decision", f"Unknown decision {decision!r}.")
        except DomainError as error:
            self.message_user(request, f"{escalation}: {error.detail}", messages.ERROR)
        else:
            self.message_user(request, f"{escalation}: {done}.", messages.SUCCESS)
        return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", escalation.pk)


def _amount(raw: str):
    """The overturn's new total as typed; blank means the default (everything refundable)."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation as error:
        raise DomainError("invalid_amount", f"{raw!r} is not an amount.", kind="invalid") from error
