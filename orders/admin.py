"""Admin for support agents and supervisors (D-9): orders with their audit trail and lifecycle
buttons, money records read-only, policy versions grouped by clause.

Thin: the lifecycle buttons call `orders.services.order_advance`, the cancellation buttons
`order_cancellation_approve` / `order_cancellation_deny` / `order_cancel_by_restaurant` (support
stepping in, K-OV); a refusal is a message.
"""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django_fsm import has_transition_perm

from core.admin import (
    MoneyDisplayMixin,
    ReadOnlyModelAdmin,
    ReadOnlyTabularInline,
    money,
    search_term_without_hash,
)
from core.errors import DomainError
from core.roles import is_supervisor
from orders.clause_links import clause_links
from orders.models import (
    MenuItem,
    Order,
    OrderEvent,
    OrderItem,
    Payment,
    PolicyVersion,
    Restaurant,
    is_support,
)
from orders.policy import MAX_EXPLANATION_LENGTH, RestaurantCancelReason
from orders.selectors import (
    order_cancellation_request_refund,
    order_next_actions,
    orders_placed_since_exist,
)
from orders.services.cancellation import (
    order_cancel_by_restaurant,
    order_cancellation_approve,
    order_cancellation_deny,
)
from orders.services.delays import order_set_delay_cause
from orders.services.lifecycle import order_advance
from orders.services.missing import order_missing_locate, order_missing_replace
from orders.services.policy_versions import (
    policy_version_approve,
    policy_version_publish,
    policy_version_save_draft,
)
from refunds.models import Refund
from refunds.selectors import order_list_held_for_agents

# -- policy versions -----------------------------------------------------------------------

POLICY_FIELDSETS = [
    (
        "Version",
        {"fields": ["label", "effective_from", "summary_of_changes", "created_at"]},
    ),
    (
        "L-2.1 / K-B1 Cancellation fee and window",
        {
            "description": "Bounds for each restaurant's own fee and cancellation window.",
            "fields": [
                ("cancellation_fee_min_percent", "cancellation_fee_max_percent"),
                ("cancellation_window_min_minutes", "cancellation_window_max_minutes"),
            ],
        },
    ),
    (
        "K-OV Platform intervention",
        {
            "description": "A cancellation request, or a verification request to the "
            "restaurant, unanswered this long goes to support.",
            "fields": ["cancellation_response_minutes", "verification_response_hours"],
        },
    ),
    (
        "L-2.2 Restaurant cancellation",
        {"description": "Goodwill promotional credit.", "fields": ["restaurant_cancel_goodwill"]},
    ),
    (
        "L-7.1 Promotional credit",
        {"fields": ["promo_credit_expiry_days", "promo_credit_min_order"]},
    ),
    (
        "L-6.1 Late delivery",
        {
            "description": "Tiers in minutes past the estimate.",
            "fields": [
                "late_small_credit",
                ("late_partial_minutes", "late_partial_percent"),
                ("late_full_minutes", "late_auto_refund_minutes"),
                "weather_blocks_automatic",
                "ready_late_full_minutes",
            ],
        },
    ),
    (
        "L-5.1 Quality report windows",
        {"fields": ["quality_window_pickup_minutes", "quality_window_delivery_minutes"]},
    ),
    ("L-6.2 Non-delivery", {"fields": ["locate_minutes"]}),
    (
        "L-4.1 Review",
        {"fields": ["review_due_soon_hours", "review_sla_hours", "supervisor_approval_above"]},
    ),
    (
        "L-4.2 Refund processing (business days)",
        {
            "fields": [
                ("refund_processing_min_days", "refund_processing_max_days"),
                ("bank_processing_min_days", "bank_processing_max_days"),
                "refund_max_attempts",
            ]
        },
    ),
    (
        "L-8.1 Escalation (business days)",
        {"fields": [("escalation_min_days", "escalation_max_days")]},
    ),
    ("L-8.2 Chargeback evidence (days)", {"fields": ["chargeback_evidence_days"]}),
    ("Published text (/policy/)", {"classes": ["collapse"], "fields": ["text"]}),
]


def _flatten(fields) -> list[str]:
    return [name for field in fields for name in (field if isinstance(field, tuple) else [field])]


# K-UP: who drafted, approved and published a version, and when buyers and partners were told.
REVIEW_FIELDS = (
    "status",
    "drafted_by",
    "approved_by",
    "approved_at",
    "rejected_by",
    "rejected_at",
    "rejection_reason",
    "published_by",
    "published_at",
    "announced_through_user_id",
    "announced_at",
)


def policy_fieldsets() -> list:
    """The clause fieldsets and the review, plus any parameter added to the model since, so
    none is hidden."""
    fieldsets = [*POLICY_FIELDSETS, ("K-UP Review", {"fields": list(REVIEW_FIELDS)})]
    listed = {name for _, options in fieldsets for name in _flatten(options["fields"])}
    rest = [
        field.name
        for field in PolicyVersion._meta.concrete_fields
        if not field.primary_key and field.name not in listed
    ]
    return fieldsets + ([("Other parameters", {"fields": rest})] if rest else [])


class PolicyVersionForm(forms.ModelForm):
    class Meta:
        model = PolicyVersion
        fields = ["effective_from"]  # the admin adds its fieldsets' fields

    def clean_effective_from(self):
        """K-UP: the proposed date; orders pin the version in force when placed, so a version
        cannot start before an order that was already pinned to another one (checked again
        when it is published)."""
        effective_from = self.cleaned_data["effective_from"]
        if effective_from and orders_placed_since_exist(effective_from):
            raise ValidationError(
                "Orders placed since then are already pinned to the version in force at the "
                "time; choose a later date (K-UP)."
            )
        return effective_from


class PublishForm(forms.Form):
    effective_from = forms.DateTimeField()


@admin.register(PolicyVersion)
class PolicyVersionAdmin(MoneyDisplayMixin, admin.ModelAdmin):
    """K-UP in admin: a supervisor drafts a version (the add form; a draft stays editable, and
    whoever edits it last is its drafter), another supervisor approves it, and a supervisor
    publishes it with its effective date; then buyers and partners are told. Approved and
    published versions are read-only (an order may pin them). Agents only look. The model's
    `clean` checks that every lower bound stays below its upper."""

    form = PolicyVersionForm
    change_form_template = "admin/orders/policyversion/change_form.html"
    list_display = ("label", "status", "effective_from", "state", "drafted_by", "approved_by")
    list_filter = ("status",)
    search_fields = ("label", "summary_of_changes")
    readonly_fields = ("created_at", *REVIEW_FIELDS)

    def get_fieldsets(self, request, obj=None):
        return policy_fieldsets()

    @admin.display(description="State")
    def state(self, version: PolicyVersion) -> str:
        if version.status != PolicyVersion.Status.PUBLISHED:
            return version.get_status_display()
        if version.effective_from > timezone.now():
            return "published, scheduled (read-only)"
        return "published (read-only)"

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status != PolicyVersion.Status.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status != PolicyVersion.Status.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def has_review_permission(self, request) -> bool:
        return is_supervisor(request.user)

    def save_model(self, request, obj, form, change):
        policy_version_save_draft(version=obj, actor=request.user)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.has_review_permission(request):
            if obj.status == PolicyVersion.Status.DRAFT and obj.drafted_by_id != request.user.pk:
                context["approve_url"] = reverse(
                    "admin:orders_policyversion_approve", args=[obj.pk]
                )
            if obj.status == PolicyVersion.Status.APPROVED:
                context["publish_url"] = reverse(
                    "admin:orders_policyversion_publish", args=[obj.pk]
                )
                proposed = obj.effective_from and timezone.localtime(obj.effective_from)
                context["proposed_effective_from"] = proposed and proposed.strftime(
                    "%Y-%m-%dT%H:%M"
                )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="orders_policyversion_approve",
            ),
            path(
                "<path:object_id>/publish/",
                self.admin_site.admin_view(self.publish_view),
                name="orders_policyversion_publish",
            ),
            *super().get_urls(),
        ]

    def approve_view(self, request, object_id):
        """POST: the signed-in supervisor approves a draft another one wrote (four eyes)."""
        return self._review(
            request,
            object_id,
            lambda version: policy_version_approve(
                version_id=version.pk, actor=request.user, now=timezone.now()
            ),
        )

    def publish_view(self, request, object_id):
        """POST: the signed-in supervisor publishes an approved version from `effective_from`."""
        form = PublishForm(request.POST)
        effective_from = form.cleaned_data["effective_from"] if form.is_valid() else None
        return self._review(
            request,
            object_id,
            lambda version: policy_version_publish(
                version_id=version.pk,
                actor=request.user,
                effective_from=effective_from,
                now=timezone.now(),
            ),
        )

    def _review(self, request, object_id, service):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        version = self.get_object(request, unquote(object_id))
        if version is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_review_permission(request):
            raise PermissionDenied
        try:
            done = service(version)
        except DomainError as error:
            self.message_user(request, f"Version {version.label}: {error.detail}", messages.ERROR)
        else:
            self.message_user(
                request, f"Version {done.label}: {done.get_status_display()}.", messages.SUCCESS
            )
        return redirect("admin:orders_policyversion_change", version.pk)


# -- restaurants and menus -----------------------------------------------------------------


class MenuItemInline(MoneyDisplayMixin, admin.TabularInline):
    model = MenuItem
    extra = 0
    fields = ("name", "price", "is_promotional", "is_available", "allergens")


@admin.register(Restaurant)
class RestaurantAdmin(MoneyDisplayMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "address",
        "cancellation_window_minutes",
        "cancellation_fee_percent",
        "delivery_fee",
        "opens_at",
        "closes_at",
        "offers_delivery",
        "offers_pickup",
        "offers_dine_in",
    )
    list_filter = ("offers_delivery", "offers_pickup", "offers_dine_in")
    search_fields = ("name", "slug", "address")
    prepopulated_fields = {"slug": ("name",)}
    raw_id_fields = ("members",)
    inlines = [MenuItemInline]


@admin.register(MenuItem)
class MenuItemAdmin(MoneyDisplayMixin, admin.ModelAdmin):
    list_display = ("name", "restaurant", "price", "is_promotional", "is_available")
    list_filter = ("is_promotional", "is_available", "restaurant")
    search_fields = ("name", "restaurant__name")
    list_select_related = ("restaurant",)
    autocomplete_fields = ("restaurant",)


# -- orders and their audit trail ----------------------------------------------------------

TRANSITION_LABELS = {
    "accept": "Accept",
    "start_preparation": "Start preparing",
    "mark_ready": "Mark ready",
    "dispatch": "Hand to courier",
    "deliver": "Mark delivered",
    "hand_over": "Mark picked up",
    "serve": "Mark served",
    "close": "Close",
}


MISSING_OUTCOMES = {
    "locate": "Located and delivered",
    "replace": "Send a replacement instead of the refund",
}


def transition_label(action: str) -> str:
    return TRANSITION_LABELS.get(action, action.replace("_", " ").capitalize())


MONEY_FIELDS = (*Order.MONEY_FIELDS, "amount_paid")
TIME_FIELDS = Order.TIME_FIELDS
CANCELLATION_FIELDS = (
    "cancellation_fee",
    "cancellation_reason",
    "cancellation_explanation",
    "cancellation_denied_at",
)
ORDER_FIELDS = (
    "buyer",
    "restaurant",
    "fulfillment",
    "status",
    "policy_version",
    "delivery_address",
    "discount_code",
    "delay_cause",
)


class OrderItemInline(ReadOnlyTabularInline):
    model = OrderItem
    money_attributes = ("line_total",)
    fields = ("name", "unit_price", "quantity", "line_total", "is_promotional")
    readonly_fields = fields


class PaymentInline(ReadOnlyTabularInline):
    model = Payment
    fields = ("created_at", "amount", "status", "gateway", "gateway_reference", "failure_message")
    readonly_fields = fields
    show_change_link = True


class ClauseLinksMixin:
    """`clause_links` for a read-only row's `clauses`: each linked to /policy/ (D-9)."""

    @admin.display(description="clauses")
    def clause_links(self, obj) -> str:
        return clause_links(obj.clauses) or "-"


class RefundInline(ClauseLinksMixin, ReadOnlyTabularInline):
    model = Refund
    fields = (
        "created_at",
        "amount",
        "destination",
        "status",
        "gateway_reference",
        "reason",
        "clause_links",
        "created_by",
        "expected_in_bank_by",
    )
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")


class OrderEventInline(ClauseLinksMixin, ReadOnlyTabularInline):
    """The order's timeline: every transition, payment and refund, with who and why."""

    model = OrderEvent
    verbose_name = "timeline event"
    verbose_name_plural = "timeline (audit trail)"
    fields = (
        "created_at",
        "kind",
        "name",
        "from_status",
        "to_status",
        "actor",
        "actor_role",
        "message",
        "reason",
        "clause_links",
        "amount",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class HeldForAgentsFilter(admin.SimpleListFilter):
    """The late deliveries an open force-majeure incident holds back from the automatic refund
    for agents to decide (L-6.1, L-10)."""

    title = "force majeure"
    parameter_name = "held"

    def lookups(self, request, model_admin):
        return [("yes", "Held for agents")]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        held = order_list_held_for_agents(now=timezone.now())
        return queryset.filter(pk__in=[h.order.pk for h in held])


@admin.register(Order)
class OrderAdmin(MoneyDisplayMixin, admin.ModelAdmin):
    """Orders for support. Only the delivery address of a delivery order is editable; status
    moves through the lifecycle buttons, which call `order_advance` (never a form field)."""

    list_display = (
        "id",
        "placed_at",
        "buyer",
        "restaurant",
        "fulfillment",
        "status",
        "total",
        "amount_charged",
    )
    list_filter = (
        "status",
        "fulfillment",
        "restaurant",
        "delay_cause",
        "placed_at",
        "delivered_at",
        "policy_version",
        HeldForAgentsFilter,
    )
    search_fields = (
        "id__exact",
        "buyer__username",
        "buyer__email",
        "restaurant__name",
        "discount_code__code",
        "payments__gateway_reference",
        "refunds__gateway_reference",
    )
    date_hierarchy = "placed_at"
    list_select_related = ("buyer", "restaurant")
    money_attributes = ("amount_paid",)
    fieldsets = (
        (None, {"fields": ORDER_FIELDS}),
        ("Money", {"fields": MONEY_FIELDS}),
        ("Times", {"fields": TIME_FIELDS}),
        ("Cancellation (L-2.1, L-2.2)", {"fields": CANCELLATION_FIELDS}),
    )
    inlines = [OrderItemInline, PaymentInline, RefundInline, OrderEventInline]
    actions = [f"set_delay_cause_{cause}" for cause in Order.DelayCause.values]

    def get_readonly_fields(self, request, obj=None):
        everything = ORDER_FIELDS + MONEY_FIELDS + TIME_FIELDS + CANCELLATION_FIELDS
        if obj is not None and obj.fulfillment == Order.Fulfillment.DELIVERY:
            return tuple(name for name in everything if name != "delivery_address")
        return everything

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term_without_hash(search_term))

    def has_add_permission(self, request):
        return False  # orders are placed by buyers, through `order_place`

    def has_delete_permission(self, request, obj=None):
        return False  # money and audit records stay

    def save_model(self, request, obj, form, change):
        # Only what the form changed: a full save could overwrite a concurrent transition.
        if form.changed_data:
            obj.save(update_fields=form.changed_data)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        advance = path(
            "<path:object_id>/advance/<str:action>/",
            self.admin_site.admin_view(self.advance_view),
            name="{}_{}_advance".format(*info),
        )
        decide = path(
            "<path:object_id>/cancellation-request/<str:decision>/",
            self.admin_site.admin_view(self.cancellation_request_view),
            name="{}_{}_cancellation_request".format(*info),
        )
        cancel = path(
            "<path:object_id>/cancel-for-restaurant/",
            self.admin_site.admin_view(self.cancel_for_restaurant_view),
            name="{}_{}_cancel_for_restaurant".format(*info),
        )
        missing = path(
            "<path:object_id>/missing/<str:outcome>/",
            self.admin_site.admin_view(self.missing_view),
            name="{}_{}_missing".format(*info),
        )
        return [advance, decide, cancel, missing, *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["transition_buttons"] = self.transition_buttons(request, obj) if obj else []
        context["cancellation_panel"] = self.cancellation_panel(request, obj) if obj else None
        return super().render_change_form(request, context, add, change, form_url, obj)

    def cancellation_panel(self, request, order: Order) -> dict | None:
        """What support may do about cancelling this order now: decide the buyer's request, or
        cancel for the restaurant (K-OV). None when neither is open to this user."""
        if not self.has_change_permission(request, order):
            return None
        user = request.user
        request_open = has_transition_perm(order.approve, user)
        can_cancel = has_transition_perm(order.cancel_by_restaurant, user)
        if not (request_open or can_cancel):
            return None
        return {
            "request": cancellation_request_context(order) if request_open else None,
            "cancel_url": reverse("admin:orders_order_cancel_for_restaurant", args=[order.pk])
            if can_cancel
            else None,
            "cancel_form": CancelForRestaurantForm(auto_id="cancel_%s") if can_cancel else None,
        }

    def transition_buttons(self, request, order: Order) -> list[dict]:
        """The lifecycle steps this user may take on this order now."""
        if not self.has_change_permission(request, order):
            return []
        return [
            {
                "action": action,
                "label": transition_label(action),
                "url": reverse("admin:orders_order_advance", args=[order.pk, action]),
            }
            for action in order_next_actions(order)
            if has_transition_perm(getattr(order, action), request.user)
        ] + self.missing_buttons(request, order)

    def missing_buttons(self, request, order: Order) -> list[dict]:
        """A missing order (L-6.2): support marks it located, or sends a replacement instead of
        the refund the sweep would make."""
        if order.status != Order.Status.MISSING or not is_support(request.user):
            return []
        return [
            {
                "action": outcome,
                "label": label,
                "url": reverse("admin:orders_order_missing", args=[order.pk, outcome]),
            }
            for outcome, label in MISSING_OUTCOMES.items()
        ]

    def missing_view(self, request, object_id, outcome):
        """POST: resolve a missing order through its service; a refusal becomes a message."""
        order = self._order_to_change(request, object_id)
        if not isinstance(order, Order):
            return order
        try:
            if outcome == "locate":
                order_missing_locate(order_id=order.pk, actor=request.user)
                done = "located and delivered; the case is closed"
            elif outcome == "replace":
                replacement = order_missing_replace(order_id=order.pk, actor=request.user)
                done = f"replacement {replacement} placed free of charge; the case is closed"
            else:
                raise DomainError("unknown_action", f"Unknown outcome {outcome!r}.")
        except DomainError as error:
            self.message_user(request, f"{order}: {error.detail}", messages.ERROR)
        else:
            self.message_user(request, f"{order}: {done}.", messages.SUCCESS)
        return redirect("admin:orders_order_change", order.pk)

    def advance_view(self, request, object_id, action):
        """POST: take one lifecycle step through the service; a refusal becomes a message."""
        order = self._order_to_change(request, object_id)
        if not isinstance(order, Order):
            return order
        try:
            order = order_advance(order_id=order.pk, action=action, actor=request.user)
        except DomainError as error:
            self.message_user(request, f"{order}: {error.detail}", messages.ERROR)
        else:
            self.message_user(
                request,
                f"{order}: {transition_label(action).lower()} done; the order is now "
                f"{order.get_status_display().lower()}.",
                messages.SUCCESS,
            )
        return redirect("admin:orders_order_change", order.pk)

    def cancellation_request_view(self, request, object_id, decision):
        """POST: approve or deny the buyer's cancellation request for the restaurant (K-OV)."""
        order = self._order_to_change(request, object_id)
        if not isinstance(order, Order):
            return order
        decide_cancellation_request(self, request, order=order, decision=decision)
        return redirect("admin:orders_order_change", order.pk)

    def cancel_for_restaurant_view(self, request, object_id):
        """POST: cancel the order on the restaurant's behalf, with a reason and an explanation
        the buyer reads (L-2.2, K-OV); the buyer is refunded in full and gets goodwill credit."""
        order = self._order_to_change(request, object_id)
        if not isinstance(order, Order):
            return order
        form = CancelForRestaurantForm(request.POST)
        if not form.is_valid():
            self.message_user(request, f"{order}: {form_errors(form)}", messages.ERROR)
            return redirect("admin:orders_order_change", order.pk)
        try:
            order = order_cancel_by_restaurant(
                order_id=order.pk,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                explanation=form.cleaned_data["explanation"],
            )
        except DomainError as error:
            self.message_user(request, f"{order}: {error.detail}", messages.ERROR)
        else:
            self.message_user(
                request,
                f"{order}: cancelled for the restaurant; the buyer gets "
                f"{money(order.amount_paid)} back in full and was told why.",
                messages.SUCCESS,
            )
        return redirect("admin:orders_order_change", order.pk)

    def _order_to_change(self, request, object_id):
        """The order a POSTed action is about, or the response that ends the request."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        order = self.get_object(request, unquote(object_id))
        if order is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, order):
            raise PermissionDenied
        return order


def _set_delay_cause_action(cause: str, label: str):
    """An order list action recording one delay cause (L-3.3) on each selected order through
    `order_set_delay_cause`; each refusal is reported and changes nothing."""

    def action(model_admin, request, queryset):
        done = 0
        for order_id in queryset.values_list("pk", flat=True):
            try:
                order_set_delay_cause(order_id=order_id, actor=request.user, delay_cause=cause)
            except DomainError as error:
                model_admin.message_user(
                    request, f"Order #{order_id}: {error.detail}", messages.ERROR
                )
            else:
                done += 1
        if done:
            model_admin.message_user(
                request, f"Delay cause {label.lower()} set on {done} order(s).", messages.SUCCESS
            )

    action.__name__ = f"set_delay_cause_{cause}"
    return admin.action(description=f"Set delay cause: {label.lower()} (L-3.3)")(action)


for _cause, _label in Order.DelayCause.choices:
    setattr(OrderAdmin, f"set_delay_cause_{_cause}", _set_delay_cause_action(_cause, _label))


# -- cancellation decisions, shared with the interventions admin (K-OV) ---------------------


class DenyCancellationForm(forms.Form):
    reason = forms.CharField(
        label="Reason the buyer reads",
        max_length=MAX_EXPLANATION_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        error_messages={"required": "Give the buyer a reason for denying the request."},
    )


class CancelForRestaurantForm(forms.Form):
    reason = forms.ChoiceField(
        label="Reason (L-2.2)", choices=[("", "---------"), *RestaurantCancelReason.LABELS.items()]
    )
    # The explanation ends up on the timeline line, which holds 500 characters with its prefix.
    explanation = forms.CharField(
        label="Explanation the buyer reads",
        max_length=MAX_EXPLANATION_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


def form_errors(form: forms.Form) -> str:
    return " ".join(error for errors in form.errors.values() for error in errors)


def cancellation_request_context(order: Order) -> dict:
    """The consequences of each answer, and where to post it, for the decision buttons."""
    return {
        "amount_paid": money(order.amount_paid),
        "fee": money(order.cancellation_fee or Decimal("0")),
        "refund": money(order_cancellation_request_refund(order)),
        "requested_at": order.cancellation_requested_at,
        "approve_url": reverse(
            "admin:orders_order_cancellation_request", args=[order.pk, "approve"]
        ),
        "deny_url": reverse("admin:orders_order_cancellation_request", args=[order.pk, "deny"]),
        "deny_form": DenyCancellationForm(auto_id="deny_%s"),
    }


def decide_cancellation_request(model_admin, request, *, order: Order, decision: str) -> bool:
    """Approve or deny an order's cancellation request through its service, as the signed-in
    agent; tell them the result or why it was refused (the restaurant may have answered first).
    Deny takes the buyer-facing `reason` from the POST. Returns whether it was done."""
    order_id = order.pk
    try:
        if decision == "approve":
            refund = order_cancellation_request_refund(order)  # before the approval refunds it
            order = order_cancellation_approve(order_id=order_id, actor=request.user)
            done = (
                f"{order}: cancellation approved; the buyer gets {money(refund)} back and the "
                f"restaurant keeps the {money(order.cancellation_fee or Decimal('0'))} fee."
            )
        elif decision == "deny":
            form = DenyCancellationForm(request.POST)
            if not form.is_valid():
                model_admin.message_user(
                    request, f"Order #{order_id}: {form_errors(form)}", messages.ERROR
                )
                return False
            order = order_cancellation_deny(
                order_id=order_id, actor=request.user, reason=form.cleaned_data["reason"]
            )
            done = f"{order}: cancellation denied; the order goes on and the buyer was told why."
        else:
            model_admin.message_user(request, f"Unknown decision {decision!r}.", messages.ERROR)
            return False
    except DomainError as error:
        # The services' refusals name the order ("Order #7 has no cancellation request ...").
        model_admin.message_user(request, error.detail, messages.ERROR)
        return False
    model_admin.message_user(request, done, messages.SUCCESS)
    return True


@admin.register(OrderItem)
class OrderItemAdmin(ReadOnlyModelAdmin):
    list_display = ("order", "name", "quantity", "unit_price", "line_total", "is_promotional")
    money_attributes = ("line_total",)
    list_filter = ("is_promotional",)
    search_fields = ("order__id__exact", "name")
    list_select_related = ("order",)

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term_without_hash(search_term))


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyModelAdmin):
    """The audit trail across all orders."""

    list_display = (
        "created_at",
        "order",
        "kind",
        "name",
        "from_status",
        "to_status",
        "actor",
        "actor_role",
        "amount",
        "message",
    )
    list_filter = ("kind", "actor_role", "name", "created_at")
    search_fields = ("order__id__exact", "actor__username", "message", "reason")
    date_hierarchy = "created_at"
    list_select_related = ("order", "actor")

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term_without_hash(search_term))


@admin.register(Payment)
class PaymentAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "order",
        "amount",
        "status",
        "gateway",
        "gateway_reference",
        "created_at",
    )
    list_filter = ("status", "gateway", "created_at")
    search_fields = (
        "order__id__exact",
        "gateway_reference",
        "idempotency_key",
        "order__buyer__username",
        "order__buyer__email",
    )
    date_hierarchy = "created_at"
    list_select_related = ("order",)

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term_without_hash(search_term))
