"""Restaurants, menus, orders and their state machine, payments, and versioned policies."""

import datetime as dt
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.money import ZERO
from orders.policy import RestaurantCancelReason

MONEY = {"max_digits": 12, "decimal_places": 2}
PERCENT = {"max_digits": 5, "decimal_places": 2}


def _money_field(default=ZERO, **kwargs):
    return models.DecimalField(
        default=default, validators=[MinValueValidator(ZERO)], **MONEY, **kwargs
    )


class PolicyVersionQuerySet(models.QuerySet):
    def published(self) -> "PolicyVersionQuerySet":
        """Versions published through the review (K-UP); drafts and approved ones never apply."""
        return self.filter(status=PolicyVersion.Status.PUBLISHED)

    def in_force(self, at: dt.datetime) -> "PolicyVersion":
        """The version that applies to an order placed at `at` (K-UP)."""
        return self.published().filter(effective_from__lte=at).latest("effective_from")


class PolicyVersion(models.Model):
    """Every number the policy texts leave to the platform (D-6), versioned (K-UP).

    An order pins the version in force when it was placed and is always judged by it. A new
    version is drafted by a supervisor, approved by another (four eyes), then published with
    its effective date (K-UP): draft -> approved -> published, or draft -> rejected when the
    reviewing supervisor refuses it (with the reason its drafter reads). Only a draft is edited.
    """

    class Status(models.TextChoices):
        DRAFT = "draft"
        APPROVED = "approved", "Approved, not yet published"
        PUBLISHED = "published"
        REJECTED = "rejected", "Rejected in review"

    label = models.CharField(max_length=40, unique=True)
    # Proposed while a draft; fixed when published.
    effective_from = models.DateTimeField(unique=True, null=True, blank=True)
    text = models.TextField(help_text="The policy as published, shown on /policy/.")
    summary_of_changes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # K-UP: the review. Rows created outside it (a fixture) are drafts and never apply.
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    drafted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    # Buyers and partners told of the change, in batches by user id (K-UP).
    announced_through_user_id = models.PositiveBigIntegerField(default=0)
    announced_at = models.DateTimeField(null=True, blank=True)

    # L-2.1 / K-B1: the restaurant's fee and window must stay inside these bounds.
    cancellation_fee_min_percent = models.DecimalField(
        default=Decimal("10"), validators=[MinValueValidator(0), MaxValueValidator(100)], **PERCENT
    )
    cancellation_fee_max_percent = models.DecimalField(
        default=Decimal("20"), validators=[MinValueValidator(0), MaxValueValidator(100)], **PERCENT
    )
    cancellation_window_min_minutes = models.PositiveIntegerField(default=1)
    cancellation_window_max_minutes = models.PositiveIntegerField(default=30)
    # K-OV: a cancellation request unanswered this long goes to support.
    cancellation_response_minutes = models.PositiveIntegerField(default=10)
    # K-OV: a verification request support sent the restaurant, unanswered this long, goes
    # back to support as an `unanswered_verification` case.
    verification_response_hours = models.PositiveIntegerField(
        default=24, validators=[MinValueValidator(1), MaxValueValidator(168)]
    )
    # L-2.2: goodwill promotional credit after a restaurant cancels.
    restaurant_cancel_goodwill = _money_field(default=Decimal("5.00"))
    # L-7.1: promotional credit expires after 30-90 days and needs a qualifying order.
    promo_credit_expiry_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(30), MaxValueValidator(90)]
    )
    promo_credit_min_order = _money_field(default=Decimal("10.00"))
    # L-6.1: late-delivery tiers, in minutes past the estimate.
    late_small_credit = _money_field(default=Decimal("2.00"))
    late_partial_minutes = models.PositiveIntegerField(default=30)
    late_full_minutes = models.PositiveIntegerField(default=60)
    late_auto_refund_minutes = models.PositiveIntegerField(default=120)
    late_partial_percent = models.DecimalField(
        default=Decimal("50"), validators=[MinValueValidator(0), MaxValueValidator(100)], **PERCENT
    )
    weather_blocks_automatic = models.BooleanField(default=False)
    ready_late_full_minutes = models.PositiveIntegerField(default=120)
    # L-5.1: quality issues must be reported within these windows.
    quality_window_pickup_minutes = models.PositiveIntegerField(default=30)
    quality_window_delivery_minutes = models.PositiveIntegerField(default=60)
    # L-6.2: how long the platform searches for a missing order.
    locate_minutes = models.PositiveIntegerField(default=60)
    # L-4.1: review within 24-48 h; four eyes above this amount.
    review_due_soon_hours = models.PositiveIntegerField(default=24)
    review_sla_hours = models.PositiveIntegerField(default=48)
    supervisor_approval_above = _money_field(default=Decimal("50.00"))
    # L-4.2: refund processing and bank times, in business days.
    refund_processing_min_days = models.PositiveIntegerField(default=1)
    refund_processing_max_days = models.PositiveIntegerField(default=3)
    bank_processing_min_days = models.PositiveIntegerField(default=5)
    bank_processing_max_days = models.PositiveIntegerField(default=10)
    # D-7: tries of a card refund before support takes it over (a refund_failed intervention).
    refund_max_attempts = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    # L-8.1: a supervisor decides an escalation within 3-5 business days.
    escalation_min_days = models.PositiveIntegerField(default=3)
    escalation_max_days = models.PositiveIntegerField(default=5)
    # L-8.2: days the platform gives itself to answer a chargeback its agent enters, when the
    # bank's own due date is not known (the processor's webhook carries one).
    chargeback_evidence_days = models.PositiveIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(45)]
    )

    objects = PolicyVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-effective_from"]
        constraints = [
            # K-UP four eyes: the supervisor who drafted a version does not approve it.
            models.CheckConstraint(
                condition=~Q(approved_by=F("drafted_by")),
                name="policy_version_approved_by_another",
            ),
            models.CheckConstraint(
                condition=~Q(status="published") | Q(effective_from__isnull=False),
                name="policy_version_published_has_effective_date",
            ),
        ]

    def __str__(self):
        if self.effective_from is None:
            return f"{self.label} ({self.get_status_display()})"
        return f"{self.label} (from {self.effective_from:%Y-%m-%d})"

    def clean(self):
        ordered_pairs = [
            ("cancellation_fee_min_percent", "cancellation_fee_max_percent"),
            ("cancellation_window_min_minutes", "cancellation_window_max_minutes"),
            ("late_partial_minutes", "late_full_minutes"),
            ("late_full_minutes", "late_auto_refund_minutes"),
            ("review_due_soon_hours", "review_sla_hours"),
            ("refund_processing_min_days", "refund_processing_max_days"),
            ("bank_processing_min_days", "bank_processing_max_days"),
            ("escalation_min_days", "escalation_max_days"),
        ]
        errors = {
            high: f"Must be at least {low.replace('_', ' ')} ({getattr(self, low)})."
            for low, high in ordered_pairs
            if getattr(self, low) is not None
            and getattr(self, high) is not None
            and getattr(self, low) > getattr(self, high)
        }
        if errors:
            raise ValidationError(errors)


class Restaurant(models.Model):
    """A seller (Kajet's word): its own cancellation window and fee, within the policy's bounds."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(unique=True)
    description = models.CharField(max_length=240, blank=True)
    address = models.CharField(max_length=240)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="restaurants", blank=True
    )
    # K-B1: how long after acceptance a buyer may still ask to cancel.
    cancellation_window_minutes = models.PositiveIntegerField(default=5)
    # L-2.1: percent of the order value kept when a buyer cancels after acceptance.
    cancellation_fee_percent = models.DecimalField(default=Decimal("15"), **PERCENT)
    delivery_fee = _money_field(default=Decimal("2.99"))
    preparation_minutes = models.PositiveIntegerField(default=20)
    delivery_minutes = models.PositiveIntegerField(default=25)
    # Local opening hours; opens_at == closes_at means open around the clock.
    opens_at = models.TimeField(default=dt.time(0, 0))
    closes_at = models.TimeField(default=dt.time(0, 0))
    offers_delivery = models.BooleanField(default=True)
    offers_pickup = models.BooleanField(default=True)
    offers_dine_in = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("orders:restaurant", args=[self.slug])

    def is_open_at(self, moment: dt.datetime) -> bool:
        if self.opens_at == self.closes_at:
            return True
        local = timezone.localtime(moment).time()
        if self.opens_at < self.closes_at:
            return self.opens_at <= local < self.closes_at
        return local >= self.opens_at or local < self.closes_at

    def next_opening(self, moment: dt.datetime) -> dt.datetime:
        """When the restaurant next opens, at or after `moment` (local time)."""
        local = timezone.localtime(moment)
        opening = local.replace(
            hour=self.opens_at.hour, minute=self.opens_at.minute, second=0, microsecond=0
        )
        return opening if opening >= local else opening + dt.timedelta(days=1)

    def offers(self, fulfillment: str) -> bool:
        return {
            Order.Fulfillment.DELIVERY: self.offers_delivery,
            Order.Fulfillment.PICKUP: self.offers_pickup,
            Order.Fulfillment.DINE_IN: self.offers_dine_in,
        }[fulfillment]


class MenuItem(models.Model):
    restaurant = models.ForeignKey(Restaurant, on_delete=models.CASCADE, related_name="menu")
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=240, blank=True)
    price = models.DecimalField(validators=[MinValueValidator(Decimal("0.01"))], **MONEY)
    is_promotional = models.BooleanField(default=False)
    is_available = models.BooleanField(default=True)
    # The partner took the dish off for this local day only ("sold out today"): it is back on
    # the menu the next day without anyone doing anything.
    unavailable_on = models.DateField(null=True, blank=True)
    allergens = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["restaurant", "name"]

    def __str__(self):
        return f"{self.name} ({self.restaurant})"

    def is_available_on(self, day: dt.date) -> bool:
        """Whether buyers may order the dish on the local date `day`."""
        return self.is_available and self.unavailable_on != day

    @property
    def is_available_today(self) -> bool:
        """Whether buyers may order the dish today, in the restaurants' time zone (TIME_ZONE)."""
        return self.is_available_on(timezone.localdate())


def _is_buyer(order: "Order", user) -> bool:
    return user.is_authenticated and order.buyer_id == user.pk


# The restaurant's lifecycle actions in lifecycle order, each with its line on the timeline.
SELLER_ACTIONS = {
    "accept": "Accepted by the restaurant.",
    "start_preparation": "The restaurant started preparing the order.",
    "mark_ready": "The order is ready.",
    "dispatch": "Handed to the courier.",
    "deliver": "Delivered.",
    "hand_over": "Picked up.",
    "serve": "Served.",
    "close": "Closed.",
}


def is_restaurant_member(restaurant_id: int, user) -> bool:
    return user.is_authenticated and user.restaurants.filter(pk=restaurant_id).exists()


def is_support(user) -> bool:
    return user.is_authenticated and (
        user.is_superuser or user.groups.filter(name__in=["support_agent", "supervisor"]).exists()
    )


def _is_partner(order: "Order", user) -> bool:
    return is_restaurant_member(order.restaurant_id, user)


def _is_support_user(order: "Order", user) -> bool:
    return is_support(user)


def _is_partner_or_support(order: "Order", user) -> bool:
    return _is_partner(order, user) or is_support(user)


def _is_buyer_or_partner(order: "Order", user) -> bool:
    return _is_buyer(order, user) or _is_partner(order, user)


def _is_buyer_or_support(order: "Order", user) -> bool:
    return _is_buyer(order, user) or is_support(user)


# The rows the late sweep looks at (L-6.1, D-8): delivery orders the sweep is not done with, with
# an estimate, still on their way (any unfinished state but cancelled) or delivered after it. The
# partial index `order_late_sweep_due` and the sweep's query share this condition, so PostgreSQL
# sees the query implies the index predicate.
LATE_SWEEP_DUE = Q(
    fulfillment="delivery",
    late_sweep_done_at__isnull=True,
    estimated_delivery_at__isnull=False,
) & (
    Q(
        status__in=[
            "placed",
            "accepted",
            "cancellation_requested",
            "preparing",
            "ready",
            "out_for_delivery",
            "missing",
        ]
    )
    | Q(status="delivered", delivered_at__gt=F("estimated_delivery_at"))
)


class Order(ConcurrentTransitionMixin, models.Model):
    """An order from placement to delivery, pickup or dine-in (D-5 state machine).

    Transition methods only set fields on self; services lock, save and record events.
    """

    class Fulfillment(models.TextChoices):
        DELIVERY = "delivery"
        PICKUP = "pickup"
        DINE_IN = "dine_in", "Dine-in"

    class Status(models.TextChoices):
        PLACED = "placed"
        ACCEPTED = "accepted"
        CANCELLATION_REQUESTED = "cancellation_requested"
        PREPARING = "preparing"
        READY = "ready"
        OUT_FOR_DELIVERY = "out_for_delivery"
        DELIVERED = "delivered"
        PICKED_UP = "picked_up", "Picked up"
        SERVED = "served"
        CLOSED = "closed"
        CANCELLED = "cancelled"
        MISSING = "missing"
        UNDELIVERABLE = "undeliverable"

    class DelayCause(models.TextChoices):
        NONE = "none"
        WEATHER = "weather"
        TRAFFIC = "traffic"
        RESTAURANT = "restaurant"
        COURIER = "courier"
        PLATFORM = "platform"

    # What has ended: nothing more happens on the restaurant's side.
    FINISHED_STATUSES = frozenset(
        {
            Status.DELIVERED,
            Status.PICKED_UP,
            Status.CLOSED,
            Status.CANCELLED,
            Status.UNDELIVERABLE,
        }
    )
    # Fulfilled: the restaurant has earned the order (its sale is booked, L-9).
    COMPLETED_STATUSES = frozenset({Status.DELIVERED, Status.PICKED_UP, Status.CLOSED})
    # The money of D-7, and every timestamp of the lifecycle.
    MONEY_FIELDS = (
        "subtotal",
        "delivery_fee",
        "discount_amount",
        "promo_credit_applied",
        "account_credit_applied",
        "amount_charged",
        "total",
    )
    TIME_FIELDS = (
        "placed_at",
        "accepted_at",
        "preparation_started_at",
        "ready_at",
        "dispatched_at",
        "delivered_at",
        "picked_up_at",
        "served_at",
        "closed_at",
        "cancelled_at",
        "cancellation_requested_at",
        "reported_missing_at",
        "estimated_ready_at",
        "estimated_delivery_at",
    )

    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    restaurant = models.ForeignKey(Restaurant, on_delete=models.PROTECT, related_name="orders")
    fulfillment = models.CharField(max_length=10, choices=Fulfillment.choices)
    status = FSMField(default=Status.PLACED, choices=Status.choices, protected=True, db_index=True)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    delivery_address = models.CharField(max_length=240, blank=True)
    discount_code = models.ForeignKey(
        "credits.DiscountCode",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
    )

    subtotal = _money_field()
    delivery_fee = _money_field()
    discount_amount = _money_field()
    promo_credit_applied = _money_field()
    account_credit_applied = _money_field()
    amount_charged = _money_field()
    total = _money_field()

    placed_at = models.DateTimeField(default=timezone.now, db_index=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    preparation_started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    picked_up_at = models.DateTimeField(null=True, blank=True)
    served_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancellation_requested_at = models.DateTimeField(null=True, blank=True)
    reported_missing_at = models.DateTimeField(null=True, blank=True)
    estimated_ready_at = models.DateTimeField(null=True, blank=True)
    estimated_delivery_at = models.DateTimeField(null=True, blank=True)
    delay_cause = models.CharField(
        max_length=12, choices=DelayCause.choices, default=DelayCause.NONE
    )
    # Cancellation: the fee quoted to the buyer when they asked (binding, L-2.1), the reason and
    # explanation a restaurant gave (K-S2), and when a restaurant turned a request down.
    cancellation_fee = models.DecimalField(null=True, blank=True, **MONEY)
    cancellation_reason = models.CharField(
        max_length=20, blank=True, choices=list(RestaurantCancelReason.LABELS.items())
    )
    cancellation_explanation = models.TextField(blank=True)
    cancellation_denied_at = models.DateTimeField(null=True, blank=True)
    # K-B1, L-2.1: the restaurant's window and fee shown in the order summary at acceptance,
    # pinned so later changes to the restaurant's terms do not change this order's.
    accepted_cancellation_window_minutes = models.PositiveIntegerField(null=True, blank=True)
    accepted_cancellation_fee_percent = models.DecimalField(null=True, blank=True, **PERCENT)
    # L-6.1: when the one automatic late refund was made (by the sweep or a late claim).
    auto_late_refunded_at = models.DateTimeField(null=True, blank=True)
    # D-8: when the late sweep was done with the order for good (refunded, or delivered and its
    # decision can no longer change), so it leaves the sweep's partial index.
    late_sweep_done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-placed_at"]
        indexes = [
            models.Index(fields=["buyer", "-placed_at"]),
            # L-6.2 sweep: missing orders are few; the index holds only them.
            models.Index(
                fields=["reported_missing_at"],
                condition=Q(status="missing"),
                name="order_missing_reported_idx",
            ),
            # The late sweep's claim query: few rows (delivery orders not yet auto-refunded and
            # not on time), so it costs the late orders, not the table (D-8).
            models.Index(
                fields=["estimated_delivery_at", "id"],
                condition=LATE_SWEEP_DUE,
                name="order_late_sweep_due",
            ),
        ]
        constraints = [
            # L-6.1: one automatic late refund per order, and only for a delivery.
            models.CheckConstraint(
                condition=Q(auto_late_refunded_at__isnull=True) | Q(fulfillment="delivery"),
                name="order_auto_late_refund_delivery_only",
            ),
            # L-7.2: a used code stays used; one buyer never uses the same code twice.
            models.UniqueConstraint(
                fields=["buyer", "discount_code"], name="order_one_use_of_a_code_per_buyer"
            ),
        ]

    def __str__(self):
        return f"Order #{self.pk}"

    def get_absolute_url(self):
        return reverse("orders:detail", args=[self.pk])

    @property
    def amount_paid(self) -> Decimal:
        """The money the buyer actually paid: card plus account credit (D-7)."""
        return self.amount_charged + self.account_credit_applied

    # -- the state machine (D-5); each transition stamps its time and nothing else --

    def _is_delivery(self):
        return self.fulfillment == self.Fulfillment.DELIVERY

    def _is_pickup(self):
        return self.fulfillment == self.Fulfillment.PICKUP

    def _is_dine_in(self):
        return self.fulfillment == self.Fulfillment.DINE_IN

    @transition(
        status, source=Status.PLACED, target=Status.ACCEPTED, permission=_is_partner_or_support
    )
    def accept(self, *, at):
        self.accepted_at = at
        self.estimated_ready_at = at + dt.timedelta(minutes=self.restaurant.preparation_minutes)
        if self._is_delivery():
            self.estimated_delivery_at = self.estimated_ready_at + dt.timedelta(
                minutes=self.restaurant.delivery_minutes
            )

    @transition(
        status, source=Status.ACCEPTED, target=Status.PREPARING, permission=_is_partner_or_support
    )
    def start_preparation(self, *, at):
        self.preparation_started_at = at

    @transition(
        status, source=Status.PREPARING, target=Status.READY, permission=_is_partner_or_support
    )
    def mark_ready(self, *, at):
        self.ready_at = at

    @transition(
        status,
        source=Status.READY,
        target=Status.OUT_FOR_DELIVERY,
        conditions=[_is_delivery],
        permission=_is_partner_or_support,
    )
    def dispatch(self, *, at):
        self.dispatched_at = at

    @transition(
        status,
        source=Status.OUT_FOR_DELIVERY,
        target=Status.DELIVERED,
        permission=_is_partner_or_support,
    )
    def deliver(self, *, at):
        self.delivered_at = at

    @transition(
        status,
        source=Status.READY,
        target=Status.PICKED_UP,
        conditions=[_is_pickup],
        permission=_is_partner_or_support,
    )
    def hand_over(self, *, at):
        self.picked_up_at = at

    @transition(
        status,
        source=Status.READY,
        target=Status.SERVED,
        conditions=[_is_dine_in],
        permission=_is_partner_or_support,
    )
    def serve(self, *, at):
        self.served_at = at

    @transition(
        status, source=Status.SERVED, target=Status.CLOSED, permission=_is_partner_or_support
    )
    def close(self, *, at):
        self.closed_at = at

    @transition(
        status, source=Status.PLACED, target=Status.CANCELLED, permission=_is_buyer_or_partner
    )
    def cancel(self, *, at):
        """Before acceptance: the buyer cancels for free (L-2.1)."""
        self.cancelled_at = at

    @transition(
        status,
        source=Status.ACCEPTED,
        target=Status.CANCELLATION_REQUESTED,
        permission=_is_buyer,
    )
    def request_cancellation(self, *, at):
        self.cancellation_requested_at = at

    @transition(
        status,
        source=Status.CANCELLATION_REQUESTED,
        target=Status.CANCELLED,
        permission=_is_partner_or_support,
    )
    def approve(self, *, at):
        """The restaurant (or support, K-OV) approves the buyer's cancellation request."""
        self.cancelled_at = at

    @transition(
        status,
        source=Status.CANCELLATION_REQUESTED,
        target=Status.ACCEPTED,
        permission=_is_partner_or_support,
    )
    def deny(self, *, at):
        """The restaurant (or support, K-OV) denies the request; the order goes on."""

    @transition(
        status,
        source=[Status.PLACED, Status.ACCEPTED, Status.PREPARING, Status.READY],
        target=Status.CANCELLED,
        permission=_is_partner_or_support,
    )
    def cancel_by_restaurant(self, *, at):
        self.cancelled_at = at

    @transition(
        status,
        source=[Status.OUT_FOR_DELIVERY, Status.DELIVERED],
        target=Status.MISSING,
        permission=_is_buyer_or_support,
    )
    def report_missing(self, *, at):
        """The buyer says it never came (L-6.2). From `delivered` (inside the L-5.1 window, which
        the policy checks) the delivery mark is withdrawn: the order is missing, not delivered,
        until it is located (a new `delivered_at`) or given up; the timeline keeps the old mark."""
        self.reported_missing_at = at
        self.delivered_at = None

    @transition(
        status, source=Status.MISSING, target=Status.DELIVERED, permission=_is_partner_or_support
    )
    def locate(self, *, at):
        self.delivered_at = at

    @transition(
        status, source=Status.MISSING, target=Status.UNDELIVERABLE, permission=_is_support_user
    )
    def give_up(self, *, at):
        """The order could not be located within the policy's search time (L-6.2)."""


class OrderItem(models.Model):
    """A line: name, price and promotional flag copied from the menu at order time."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    menu_item = models.ForeignKey(MenuItem, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    unit_price = models.DecimalField(**MONEY)
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    is_promotional = models.BooleanField(default=False)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="order_item_quantity_positive"
            )
        ]

    def __str__(self):
        return f"{self.quantity} x {self.name}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class OrderEvent(models.Model):
    """One line of an order's timeline: a transition, a payment or a refund, with who and why."""

    class Kind(models.TextChoices):
        TRANSITION = "transition"
        PAYMENT = "payment"
        REFUND = "refund"
        CREDIT = "credit"
        NOTE = "note"

    class Role(models.TextChoices):
        BUYER = "buyer"
        RESTAURANT = "restaurant"
        SUPPORT = "support"
        POLICY = "policy", "Policy (automatic)"
        SYSTEM = "system"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    name = models.CharField(max_length=40, blank=True)
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_role = models.CharField(max_length=12, choices=Role.choices)
    message = models.CharField(max_length=500, blank=True)
    reason = models.TextField(blank=True)
    clauses = models.JSONField(default=list, blank=True)
    amount = models.DecimalField(null=True, blank=True, **MONEY)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"{self.order}: {self.message or self.name}"


class Payment(models.Model):
    """A charge against the buyer's card for an order, as the gateway reported it."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(validators=[MinValueValidator(Decimal("0.01"))], **MONEY)
    gateway = models.CharField(max_length=40)
    gateway_reference = models.CharField(max_length=80, blank=True)
    idempotency_key = models.CharField(max_length=120, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    failure_message = models.CharField(max_length=240, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self):
        return f"{self.amount} {self.status} ({self.gateway_reference})"


# Referenced by migration 0001 (the removed `GatewayOperation`); migrations keep importing it.
def _simulated_reference() -> str:
    return f"sim_{uuid.uuid4().hex[:24]}"
