"""The K-OV queue in admin: cases a restaurant or a buyer left unanswered, open ones first, each
with the one decision that resolves it; and the incidents (L-10): supervisors enter an outage or
force majeure, see an outage's dry run, start its bulk refund and watch its progress; support
assigns, works and closes allergen investigations.

Thin: an unanswered cancellation request is decided through `order_cancellation_approve` /
`order_cancellation_deny` (shared with the order page), which also resolve the case. Nothing
here is a form field: cases are opened by the beat task and closed by those services.
"""

from django import forms
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

from core.admin import SearchWithoutHashMixin
from core.errors import DomainError
from core.roles import is_supervisor
from disputes.models import Incident, Intervention
from disputes.selectors import (
    incident_estimate,
    outage_refunds_by_restaurant,
    support_user_list,
)
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
from orders.admin import (
    cancellation_request_context,
    decide_cancellation_request,
    money,
)
from orders.selectors import order_cancellation_request_refund
from refunds.selectors import order_list_held_for_agents

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
class IncidentAdmin(SearchWithoutHashMixin, admin.ModelAdmin):
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
        start = timezone.localtime(incident.starts_at)
        if incident.ends_at is None:
            return f"from {start:%d %b %Y %H:%M}"
        return f"{start:%d %b %Y %H:%M} to {timezone.localtime(incident.ends_at):%d %b %Y %H:%M}"

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
