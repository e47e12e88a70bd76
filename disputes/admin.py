"""The K-OV queue in admin: cases a restaurant or a buyer left unanswered, open ones first, each
with the one decision that resolves it; and the incidents (L-10), read-only, for supervisors.

Thin: an unanswered cancellation request is decided through `order_cancellation_approve` /
`order_cancellation_deny` (shared with the order page), which also resolve the case. Nothing
here is a form field: cases are opened by the beat task and closed by those services.
"""

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
from disputes.models import Incident, Intervention
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
        "restaurant_names",
        "order_link",
        "refund_request_link",
        "created_at",
        "closed_at",
    )
    list_display_links = ("id", "title")
    list_filter = ("status", "kind", ("restaurants", admin.RelatedOnlyFieldListFilter))
    search_fields = ("title", "restaurants__name", "order__id__exact", "refund_request__id__exact")
    list_select_related = ("order", "refund_request", "opened_by")

    fields = (
        "kind",
        "status",
        "title",
        "description",
        "restaurant_names",
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

    @admin.display(description="Restaurants")
    def restaurant_names(self, incident: Incident) -> str:
        names = [r.name for r in incident.restaurants.all()]
        return ", ".join(names) if names else "All restaurants"

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
