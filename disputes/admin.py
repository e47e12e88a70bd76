"""The K-OV queue in admin: cases a restaurant or a buyer left unanswered, open ones first, each
with the one decision that resolves it; the incidents (L-10): supervisors enter an outage or
force majeure, see an outage's dry run, start its bulk refund and watch its progress, support
assigns, works and closes allergen investigations; the escalations (L-8.1, K-DR); and the
chargebacks, suspensions and processor events (L-8.2, D-4, D-10).

Thin: an unanswered cancellation request is decided through `order_cancellation_approve` /
`order_cancellation_deny` (shared with the order page), which also resolve the case. Nothing
here is a form field: cases are opened by the beat task and closed by those services.
"""

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Case, Value, When
from django.http import HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from core.admin import (
    DecideUrlMixin,
    MoneyDisplayMixin,
    ReadOnlyModelAdmin,
    SearchWithoutHashMixin,
    moment,
)
from core.errors import DomainError, InvalidInput
from core.roles import is_supervisor
from disputes.evidence_pdf import render_evidence_pdf
from disputes.guards import buyer_active_suspension
from disputes.models import (
    Chargeback,
    Escalation,
    GatewayEvent,
    Incident,
    Intervention,
    Suspension,
)
from disputes.selectors import (
    chargeback_evidence_bundle,
    chargeback_evidence_photos,
    escalation_queue,
    incident_estimate,
    outage_refunds_by_restaurant,
    support_user_list,
)
from disputes.services.chargebacks import (
    chargeback_accept,
    chargeback_lose,
    chargeback_open,
    chargeback_submit_evidence,
    chargeback_win,
)
from disputes.services.escalations import escalation_decide, escalation_take
from disputes.services.incidents import (
    allergen_investigation_assign,
    allergen_investigation_record_findings,
)
from disputes.services.outages import (
    incident_create,
    incident_entry_check,
    outage_refund_start,
    outage_summary_text,
)
from disputes.services.suspensions import buyer_reinstate, buyer_suspend
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


class AgeFilter(admin.SimpleListFilter):
    """How long ago a case was opened (K-OV): the old ones are the ones to chase."""

    title = "age"
    parameter_name = "age"
    BANDS = {
        "today": ("Under a day", 0, 1),
        "days": ("1 to 3 days", 1, 3),
        "older": ("Over 3 days", 3, None),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _, _) in self.BANDS.items()]

    def queryset(self, request, queryset):
        band = self.BANDS.get(self.value())
        if band is None:
            return queryset
        _, newest_days, oldest_days = band
        now = timezone.now()
        queryset = queryset.filter(opened_at__lte=now - dt.timedelta(days=newest_days))
        if oldest_days is not None:
            queryset = queryset.filter(opened_at__gt=now - dt.timedelta(days=oldest_days))
        return queryset


def _case_page(case: Intervention) -> str:
    return reverse("admin:disputes_intervention_change", args=[case.pk])


def _request_page(case: Intervention) -> str:
    return reverse("admin:refunds_refundrequest_change", args=[case.refund_request_id])


def _order_page(case: Intervention) -> str:
    return reverse("admin:orders_order_change", args=[case.order_id])


def _failed_refunds(case: Intervention) -> str:
    query = urlencode({"q": case.order_id, "status__exact": "failed"})
    return f"{reverse('admin:refunds_refund_changelist')}?{query}"


def _disputes_of_order(case: Intervention) -> str:
    query = urlencode({"q": case.order_id, "status__exact": "open"})
    return f"{reverse('admin:refunds_deductiondispute_changelist')}?{query}"


# The one action each open case needs, by kind (K-OV): what it says and where it is done. A new
# kind of case (an escalation, a chargeback, an incident) adds its entry here.
NEXT_ACTIONS = {
    Intervention.Kind.UNANSWERED_CANCELLATION: (
        "Approve or deny the cancellation request",
        _case_page,
    ),
    Intervention.Kind.REVIEW_OVERDUE: ("Decide the refund request", _request_page),
    Intervention.Kind.UNANSWERED_VERIFICATION: (
        "Decide the refund request without the restaurant",
        _request_page,
    ),
    Intervention.Kind.REFUND_FAILED: (
        "Retry the refund or pay it as account credit",
        _failed_refunds,
    ),
    Intervention.Kind.MISSING_ORDER: ("Locate the order or send a replacement", _order_page),
    Intervention.Kind.DEDUCTION_DISPUTE: (
        "Uphold or reject the restaurant's dispute (supervisor)",
        _disputes_of_order,
    ),
}


@admin.register(Intervention)
class InterventionAdmin(
    DecideUrlMixin, SearchWithoutHashMixin, MoneyDisplayMixin, admin.ModelAdmin
):
    """The one list of every case where the platform stepped in (K-OV), open ones first,
    oldest first, each with the one action it needs and, once resolved, its resolution.
    Agents decide open cases (the `change_intervention` permission, see core/roles.py);
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
        "waited",
        "next_action",
        "resolution",
    )
    list_display_links = ("id", "status")
    list_filter = (
        "status",
        "kind",
        AgeFilter,
        ("order__restaurant", admin.RelatedOnlyFieldListFilter),
    )
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

    @admin.display(description="Waited", ordering="opened_at")
    def waited(self, case: Intervention) -> str:
        """How long the case has waited (until it was resolved): for a cancellation request,
        since the buyer asked; otherwise since the case opened."""
        started = case.order.cancellation_requested_at
        if case.kind != Intervention.Kind.UNANSWERED_CANCELLATION or started is None:
            started = case.opened_at
        return timesince(started, case.resolved_at or timezone.now())

    @admin.display(description="Next action")
    def next_action(self, case: Intervention) -> str:
        """The one thing to do about an open case, linked to where it is done (K-OV)."""
        if case.status != Intervention.Status.OPEN:
            return "-"
        label, url = NEXT_ACTIONS.get(case.kind, ("Open the case", _case_page))
        if url is _request_page and case.refund_request_id is None:
            label, url = "Open the order", _order_page
        return format_html('<a class="next-action" href="{}">{}</a>', url(case), label)

    @admin.display(description="Resolution", ordering="resolved_at")
    def resolution(self, case: Intervention) -> str:
        """Who resolved the case, when and how; "open" while it waits."""
        if case.status == Intervention.Status.OPEN:
            return "Open"
        who = case.resolved_by or "the platform"
        when = moment(case.resolved_at)
        return f"{case.action_taken or 'Resolved'} ({who}, {when})"

    # -- deciding ----------------------------------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["cancellation_panel"] = self.decision_panel(request, obj) if obj else None
        context["next_action_link"] = self.next_action(obj) if obj else None
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


class IncidentEntryForm(forms.ModelForm):
    """An outage or force majeure as a supervisor enters it (L-10), checked by the service's
    own rules before anything is saved."""

    kind = forms.ChoiceField(
        choices=[
            (Incident.Kind.OUTAGE, Incident.Kind.OUTAGE.label),
            (Incident.Kind.FORCE_MAJEURE, Incident.Kind.FORCE_MAJEURE.label),
        ]
    )

    class Meta:
        model = Incident
        fields = ("kind", "title", "description", "starts_at", "ends_at", "restaurants")
        help_texts = {
            "starts_at": "Orders placed from this moment are affected.",
            "ends_at": "Orders placed until this moment (an outage must be over; force majeure "
            "may be ongoing: leave empty).",
            "restaurants": "None selected: every restaurant.",
        }

    actor = None

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            incident_entry_check(
                actor=self.actor,
                kind=data.get("kind"),
                starts_at=data.get("starts_at"),
                ends_at=data.get("ends_at"),
                restaurant_ids=[r.pk for r in data.get("restaurants") or ()],
                now=timezone.now(),
            )
        except DomainError as error:
            clauses = f" ({', '.join(error.clauses)})" if error.clauses else ""
            raise forms.ValidationError(f"{error.detail}{clauses}", code=error.code) from error
        return data


class WorkForm(forms.Form):
    findings = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=4000)


@admin.register(Incident)
class IncidentAdmin(SearchWithoutHashMixin, MoneyDisplayMixin, admin.ModelAdmin):
    """Outages, allergen investigations and force majeure (L-10), open ones first. Supervisors
    enter an outage or force majeure (the `add_incident` permission, core/roles.py); an outage's
    page shows its dry run (the affected orders, the money and the split per restaurant, written
    nowhere) and the button that starts its bulk refund (supervisors), then its progress,
    refreshing itself while it runs, and its summary. An allergen investigation (opened by an
    allergic-reaction refund request) is assigned, worked and closed with findings by support
    (`change_incident`). A force-majeure incident lists the late deliveries it holds back from
    the automatic refund for agents. No field is edited after entry: every change is a button
    that calls a service."""

    form = IncidentEntryForm
    change_form_template = "admin/disputes/incident/change_form.html"
    list_display = (
        "id",
        "status",
        "kind",
        "title",
        "restaurant_names",
        "window",
        "progress",
        "assigned_to",
        "created_at",
        "closed_at",
    )
    list_display_links = ("id", "title")
    list_filter = ("status", "kind", ("restaurants", admin.RelatedOnlyFieldListFilter))
    search_fields = ("title", "restaurants__name", "order__id__exact", "refund_request__id__exact")
    list_select_related = ("assigned_to",)
    DETAIL = (
        "kind",
        "status",
        "title",
        "description",
        "restaurant_names",
        "starts_at",
        "ends_at",
        "opened_by",
        "created_at",
    )
    BY_KIND = {
        Incident.Kind.OUTAGE: (
            "progress",
            "refund_started_by",
            "refund_started_at",
            "refund_finished_at",
            "summary",
        ),
        Incident.Kind.ALLERGEN: (
            "order_link",
            "refund_request_link",
            "assigned_to",
            "assigned_at",
            "findings",
            "restaurant_answer",
            "restaurant_answered_at",
            "closed_by",
            "closed_at",
        ),
        Incident.Kind.FORCE_MAJEURE: ("closed_at", "held_orders"),
    }

    def get_ordering(self, request):
        open_first = Case(When(status=Incident.Status.CLOSED, then=Value(1)), default=Value(0))
        return [open_first.asc(), "-created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("restaurants")

    def get_fields(self, request, obj=None):
        if obj is None:
            return IncidentEntryForm.Meta.fields
        return (*self.DETAIL, *self.BY_KIND[obj.kind])

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user
        return form

    # -- who may do what ---------------------------------------------------------------------

    def has_add_permission(self, request):
        return super().has_add_permission(request) and is_supervisor(request.user)

    def has_change_permission(self, request, obj=None):
        return False  # no field is edited; an incident changes only by its buttons

    def has_delete_permission(self, request, obj=None):
        return False

    def has_run_permission(self, request, incident: Incident) -> bool:
        """Only supervisors run an outage's bulk refund (D-4)."""
        return incident.kind == Incident.Kind.OUTAGE and is_supervisor(request.user)

    def has_work_permission(self, request, incident: Incident) -> bool:
        """Support works allergen investigations (`change_incident`)."""
        return incident.kind == Incident.Kind.ALLERGEN and request.user.has_perm(
            f"{self.opts.app_label}.change_{self.opts.model_name}"
        )

    # -- entering one: through the service --------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = incident_create(
            actor=request.user,
            kind=data["kind"],
            title=data["title"],
            description=data.get("description", ""),
            starts_at=data["starts_at"],
            ends_at=data.get("ends_at"),
            restaurant_ids=[r.pk for r in data.get("restaurants") or ()],
            now=timezone.now(),
        )
        obj.pk = created.pk

    def save_related(self, request, form, formsets, change):
        pass  # the service named the restaurants

    def response_add(self, request, obj, post_url_continue=None):
        if obj.kind == Incident.Kind.OUTAGE:
            self.message_user(
                request,
                f"{obj}: check the dry run below, then start the bulk refund.",
                messages.SUCCESS,
            )
        else:
            self.message_user(request, f"{obj}: entered.", messages.SUCCESS)
        return redirect(self._change_url(obj.pk))

    def _change_url(self, pk) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[pk])

    # -- what the page shows -----------------------------------------------------------------

    @admin.display(description="Restaurants")
    def restaurant_names(self, incident: Incident) -> str:
        names = [r.name for r in incident.restaurants.all()]
        return ", ".join(sorted(names)) if names else "All restaurants"

    @admin.display(description="Window")
    def window(self, incident: Incident) -> str:
        if incident.starts_at is None:
            return "-"
        if incident.ends_at is None:
            return f"from {moment(incident.starts_at)}"
        return f"{moment(incident.starts_at)} to {moment(incident.ends_at)}"

    @admin.display(description="Progress")
    def progress(self, incident: Incident) -> str:
        """An outage's bulk refund: orders done of those affected, and the money."""
        if incident.kind != Incident.Kind.OUTAGE:
            return "-"
        if incident.status == Incident.Status.OPEN:
            return "Not started"
        return (
            f"{incident.refunded_orders} of {incident.affected_orders} orders refunded, "
            f"{money(incident.refunded_amount)}"
        )

    @admin.display(description="Summary")
    def summary(self, incident: Incident) -> str:
        if incident.status != Incident.Status.CLOSED:
            return "When the bulk refund has finished."
        return outage_summary_text(incident)

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

    # -- the buttons -------------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        own = [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(view),
                name="{}_{}_{}".format(*info, name),
            )
            for name, view in (
                ("refund", self.refund_view),
                ("assign", self.assign_view),
                ("work", self.work_view),
            )
        ]
        return [*own, *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["incident_panel"] = self.incident_panel(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def incident_panel(self, request, incident: Incident) -> dict:
        """What the page offers this user: an outage's dry run, start button, progress and
        summary; an allergen investigation's assign and findings forms."""
        info = self.opts.app_label, self.opts.model_name
        panel = {"kind": incident.kind, "status": incident.status}
        if incident.kind == Incident.Kind.OUTAGE:
            panel["can_run"] = self.has_run_permission(request, incident)
            panel["refund_url"] = reverse("admin:{}_{}_refund".format(*info), args=[incident.pk])
            if incident.starts_at is None or incident.ends_at is None:
                panel["can_run"] = False  # entered without a window (before issue 9)
            elif incident.status == Incident.Status.OPEN:
                panel["estimate"] = incident_estimate(incident)
            else:
                panel["refunded"] = outage_refunds_by_restaurant(incident)
                panel["progress"] = self.progress(incident)
        elif incident.status != Incident.Status.CLOSED and self.has_work_permission(
            request, incident
        ):
            panel["assign_url"] = reverse("admin:{}_{}_assign".format(*info), args=[incident.pk])
            panel["work_url"] = reverse("admin:{}_{}_work".format(*info), args=[incident.pk])
            panel["staff"] = support_user_list()
            panel["work_form"] = WorkForm(initial={"findings": incident.findings})
        return panel

    def _act(self, request, object_id, allowed, act):
        """POST only; the incident, the permission, then the service; its refusal as a
        message. Returns to the incident's page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        incident = self.get_object(request, unquote(object_id))
        if incident is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not allowed(request, incident):
            raise PermissionDenied
        try:
            done = act(incident)
        except DomainError as error:
            self.message_user(request, f"{incident}: {error.detail}", messages.ERROR)
        else:
            self.message_user(request, f"{incident}: {done}", messages.SUCCESS)
        return redirect(self._change_url(incident.pk))

    def refund_view(self, request, object_id):
        """Start (or resume) the outage's bulk refund on the worker."""

        def act(incident):
            started = outage_refund_start(
                incident_id=incident.pk, actor=request.user, now=timezone.now()
            )
            return (
                f"bulk refund started for {started.affected_orders} orders; "
                "the progress below updates itself."
            )

        return self._act(request, object_id, self.has_run_permission, act)

    def assign_view(self, request, object_id):
        def act(incident):
            assignee = support_user_list().filter(pk=request.POST.get("assignee") or 0).first()
            done = allergen_investigation_assign(
                incident_id=incident.pk, assignee=assignee, actor=request.user, now=timezone.now()
            )
            return f"assigned to {done.assigned_to}."

        return self._act(request, object_id, self.has_work_permission, act)

    def work_view(self, request, object_id):
        def act(incident):
            close = "close" in request.POST
            allergen_investigation_record_findings(
                incident_id=incident.pk,
                actor=request.user,
                findings=request.POST.get("findings", ""),
                close=close,
                now=timezone.now(),
            )
            return "closed; the restaurant was told the findings." if close else "findings saved."

        return self._act(request, object_id, self.has_work_permission, act)


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
class EscalationAdmin(DecideUrlMixin, SearchWithoutHashMixin, MoneyDisplayMixin, admin.ModelAdmin):
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


# -- chargebacks and suspensions (L-8.2, D-4) ------------------------------------------------


class ChargebackEntryForm(forms.Form):
    """What an agent types from the bank's notice (L-8.2)."""

    order = forms.IntegerField(min_value=1, help_text="The order number.")
    amount = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    bank_reference = forms.CharField(max_length=80)
    reason_code = forms.CharField(max_length=40)
    evidence_due_by = forms.DateTimeField(
        required=False, help_text="The bank's date; empty: the order's policy version decides."
    )


class ChargebackActionForm(forms.Form):
    note = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2})
    )


class SuspendForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    suspected_fraud = forms.BooleanField(required=False)


# action name: (service, button label, who may see it: "support" or "supervisor")
CHARGEBACK_ACTIONS = {
    "submit_evidence": (chargeback_submit_evidence, "Send the evidence to the bank", "support"),
    "won": (chargeback_win, "Won: the bank ruled for us", "supervisor"),
    "lost": (chargeback_lose, "Lost: the money goes back", "supervisor"),
    "accept": (chargeback_accept, "Accept: do not contest", "supervisor"),
}


def _domain_error_message(admin_instance, request, error: DomainError) -> None:
    clauses = f" ({', '.join(error.clauses)})" if error.clauses else ""
    admin_instance.message_user(request, f"{error.detail}{clauses}", messages.ERROR)


@admin.register(Chargeback)
class ChargebackAdmin(SearchWithoutHashMixin, MoneyDisplayMixin, admin.ModelAdmin):
    """Chargebacks by evidence due date (L-8.2). Agents enter them (a form calling
    `chargeback_open`) and send the evidence; supervisors record the outcome and suspend the
    buyer; everyone of support downloads the evidence bundle. No field is edited here."""

    list_display = (
        "id",
        "status",
        "order_link",
        "buyer",
        "amount_text",
        "at_stake_text",
        "bank_reference",
        "reason_code",
        "evidence_due_by",
        "source",
        "settled_at",
    )
    list_display_links = ("id", "status")
    list_filter = ("status", "source")
    search_fields = ("bank_reference", "order__id__exact", "order__buyer__username")
    list_select_related = ("order__buyer", "payment")
    ordering = ("evidence_due_by", "pk")
    fields = (
        "status",
        "order_link",
        "buyer",
        "amount_text",
        "at_stake_text",
        "bank_reference",
        "reason_code",
        "evidence_due_by",
        "source",
        "received_at",
        "created_by",
        "evidence_submitted_at",
        "evidence_submitted_by",
        "decided_at",
        "decided_by",
        "note",
        "settled_at",
        "settlement_reference",
        "settlement_error",
        "evidence_links",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return request.user.has_perm("disputes.add_chargeback")

    def has_change_permission(self, request, obj=None):
        return False  # every change is an outcome button

    def has_delete_permission(self, request, obj=None):
        return False

    def has_act_permission(self, request) -> bool:
        return request.user.has_perm("disputes.change_chargeback")

    @admin.display(description="Order", ordering="order")
    def order_link(self, chargeback: Chargeback) -> str:
        url = reverse("admin:orders_order_change", args=[chargeback.order_id])
        return format_html('<a href="{}">{}</a>', url, chargeback.order)

    @admin.display(description="Buyer", ordering="order__buyer__username")
    def buyer(self, chargeback: Chargeback):
        return chargeback.order.buyer

    @admin.display(description="Disputed", ordering="amount")
    def amount_text(self, chargeback: Chargeback) -> str:
        return money(chargeback.amount)

    @admin.display(description="At stake (after refunds made)", ordering="amount_at_stake")
    def at_stake_text(self, chargeback: Chargeback) -> str:
        return money(chargeback.amount_at_stake)

    @admin.display(description="Evidence bundle")
    def evidence_links(self, chargeback: Chargeback) -> str:
        pdf = reverse("admin:disputes_chargeback_evidence", args=[chargeback.pk, "pdf"])
        data = reverse("admin:disputes_chargeback_evidence", args=[chargeback.pk, "json"])
        return format_html('<a href="{}">PDF</a> · <a href="{}">JSON</a>', pdf, data)

    def get_urls(self):
        own = [
            path(
                "<int:object_id>/evidence.<str:fmt>",
                self.admin_site.admin_view(self.evidence_view),
                name="disputes_chargeback_evidence",
            ),
            path(
                "<int:object_id>/act/<str:action>/",
                self.admin_site.admin_view(self.act_view),
                name="disputes_chargeback_act",
            ),
        ]
        return own + super().get_urls()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["chargeback_actions"] = self.action_buttons(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def action_buttons(self, request, chargeback: Chargeback) -> list[dict]:
        """The outcomes open to this user now (each posts to `act_view`)."""
        if not self.has_act_permission(request):
            return []
        supervisor = is_supervisor(request.user)
        buttons = [
            {
                "name": name,
                "label": label,
                "url": reverse("admin:disputes_chargeback_act", args=[chargeback.pk, name]),
                "form": ChargebackActionForm(),
            }
            for name, (_, label, who) in CHARGEBACK_ACTIONS.items()
            if chargeback.status in Chargeback.OPEN_STATUSES and (supervisor or who == "support")
        ]
        if supervisor and buyer_active_suspension(chargeback.order.buyer) is None:
            buttons.append(
                {
                    "name": "suspend",
                    "label": "Suspend the buyer",
                    "url": reverse(
                        "admin:disputes_chargeback_act", args=[chargeback.pk, "suspend"]
                    ),
                    "form": SuspendForm(initial={"reason": f"Chargeback #{chargeback.pk}."}),
                }
            )
        return buttons

    def act_view(self, request, object_id: int, action: str):
        """POST: an outcome (or the buyer's suspension) through its service as the signed-in
        user; a refusal comes back as a message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_act_permission(request):
            raise PermissionDenied
        chargeback = self.get_object(request, str(object_id))
        if chargeback is None or (action not in CHARGEBACK_ACTIONS and action != "suspend"):
            return self._get_obj_does_not_exist_redirect(request, self.opts, str(object_id))
        try:
            if action == "suspend":
                form = SuspendForm(request.POST)
                if not form.is_valid():
                    raise InvalidInput("reason_required", "Give the reason the buyer will read.")
                buyer_suspend(
                    buyer_id=chargeback.order.buyer_id,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    suspected_fraud=form.cleaned_data["suspected_fraud"],
                    chargeback_id=chargeback.pk,
                )
                done = f"{chargeback.order.buyer} is suspended (L-8.2)."
            else:
                service = CHARGEBACK_ACTIONS[action][0]
                chargeback = service(
                    chargeback_id=chargeback.pk,
                    actor=request.user,
                    note=request.POST.get("note", ""),
                )
                done = f"{chargeback}: {chargeback.get_status_display().lower()}."
        except DomainError as error:
            _domain_error_message(self, request, error)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return redirect("admin:disputes_chargeback_change", object_id)

    def evidence_view(self, request, object_id: int, fmt: str):
        """The evidence bundle (L-8.2) as a PDF or JSON download, for support."""
        if not self.has_view_permission(request) or fmt not in ("pdf", "json"):
            raise PermissionDenied
        if not Chargeback.objects.filter(pk=object_id).exists():
            return self._get_obj_does_not_exist_redirect(request, self.opts, str(object_id))
        bundle = chargeback_evidence_bundle(object_id)
        if fmt == "pdf":
            response = HttpResponse(
                render_evidence_pdf(bundle, chargeback_evidence_photos(bundle)),
                content_type="application/pdf",
            )
        else:
            response = HttpResponse(
                json.dumps(bundle, cls=DjangoJSONEncoder, indent=2),
                content_type="application/json",
            )
        response["Content-Disposition"] = (
            f'attachment; filename="chargeback-{object_id}-evidence.{fmt}"'
        )
        return response

    def add_view(self, request, form_url="", extra_context=None):
        """Enter a chargeback from the bank's notice through `chargeback_open` (L-8.2)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ChargebackEntryForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                chargeback, _ = chargeback_open(actor=request.user, **_entry(form.cleaned_data))
            except DomainError as error:
                form.add_error(None, error.detail)
            else:
                self.message_user(
                    request,
                    f"{chargeback} entered: {money(chargeback.amount_at_stake)} at stake, evidence "
                    f"due by {moment(chargeback.evidence_due_by)}.",
                    messages.SUCCESS,
                )
                return redirect("admin:disputes_chargeback_change", chargeback.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Enter a chargeback",
            "form": form,
            "submit_label": "Enter the chargeback",
            "help": "What is already refunded to the card is left out of what is at stake "
            "(L-7.2); a refund request on the order is refused from now on.",
        }
        return TemplateResponse(request, "admin/disputes/simple_form.html", context)


def _entry(data: dict) -> dict:
    return {
        "order_id": data["order"],
        "amount": data["amount"],
        "bank_reference": data["bank_reference"],
        "reason_code": data["reason_code"],
        "evidence_due_by": data["evidence_due_by"],
    }


class SuspensionAddForm(forms.Form):
    buyer = forms.CharField(max_length=150, help_text="The buyer's username.")
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    suspected_fraud = forms.BooleanField(required=False)
    chargeback = forms.IntegerField(required=False, min_value=1, help_text="Optional.")


@admin.register(Suspension)
class SuspensionAdmin(SearchWithoutHashMixin, MoneyDisplayMixin, admin.ModelAdmin):
    """Suspended buyers (L-8.2, D-4), active ones first. Supervisors suspend (a form calling
    `buyer_suspend`) and reinstate (the action, calling `buyer_reinstate`); agents read."""

    list_display = (
        "id",
        "buyer",
        "is_active",
        "suspected_fraud",
        "chargeback",
        "created_by",
        "created_at",
        "lifted_by",
        "lifted_at",
    )
    list_filter = ("suspected_fraud", ("lifted_at", admin.EmptyFieldListFilter))
    search_fields = ("buyer__username", "buyer__email")
    list_select_related = ("buyer", "created_by", "lifted_by", "chargeback")
    fields = (
        "buyer",
        "reason",
        "suspected_fraud",
        "chargeback",
        "created_by",
        "created_at",
        "lifted_by",
        "lifted_at",
        "lift_note",
    )
    readonly_fields = fields
    actions = ["reinstate"]

    @admin.display(description="Active", boolean=True)
    def is_active(self, suspension: Suspension) -> bool:
        return suspension.is_active

    def get_ordering(self, request):
        active_first = Case(When(lifted_at__isnull=True, then=Value(0)), default=Value(1))
        return [active_first.asc(), "-created_at"]

    def has_add_permission(self, request):
        return request.user.has_perm("disputes.add_suspension")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_reinstate_permission(self, request) -> bool:
        return request.user.has_perm("disputes.change_suspension")

    @admin.action(description="Reinstate the selected buyers", permissions=["reinstate"])
    def reinstate(self, request, queryset):
        for suspension in queryset.filter(lifted_at__isnull=True).select_related("buyer"):
            try:
                buyer_reinstate(buyer_id=suspension.buyer_id, actor=request.user)
            except DomainError as error:
                _domain_error_message(self, request, error)
            else:
                self.message_user(request, f"{suspension.buyer} is reinstated.", messages.SUCCESS)

    def add_view(self, request, form_url="", extra_context=None):
        """Suspend a buyer through `buyer_suspend` (L-8.2)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = SuspensionAddForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            buyer = get_user_model().objects.filter(username=form.cleaned_data["buyer"]).first()
            try:
                if buyer is None:
                    raise InvalidInput("not_found", "There is no such user.")
                suspension = buyer_suspend(
                    buyer_id=buyer.pk,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    suspected_fraud=form.cleaned_data["suspected_fraud"],
                    chargeback_id=form.cleaned_data["chargeback"],
                )
            except DomainError as error:
                form.add_error(None, error.detail)
            else:
                self.message_user(request, f"{buyer} is suspended (L-8.2).", messages.SUCCESS)
                return redirect("admin:disputes_suspension_change", suspension.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Suspend a buyer",
            "form": form,
            "submit_label": "Suspend",
            "help": "The buyer keeps reading their orders, requests and credit but can place "
            "no order, cancel, ask for a refund or escalate until reinstated (L-8.2).",
        }
        return TemplateResponse(request, "admin/disputes/simple_form.html", context)


@admin.register(GatewayEvent)
class GatewayEventAdmin(ReadOnlyModelAdmin):
    """The processor's webhook events as received (D-10), newest first."""

    list_display = ("event_id", "type", "received_at", "chargeback")
    list_filter = ("type",)
    search_fields = ("event_id",)
    fields = ("event_id", "type", "received_at", "chargeback", "payload")
    readonly_fields = fields
