"""Refunds: one row is one money movement, made exactly once (D-5, D-7)."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.models import PhotoEvidence
from orders.models import MONEY, is_restaurant_member, is_support
from refunds.policy import Reason


def _is_buyer(request, user) -> bool:
    return user.is_authenticated and request.buyer_id == user.pk


def _is_support(request, user) -> bool:
    return is_support(user)


def _is_partner(request, user) -> bool:
    return is_restaurant_member(request.order.restaurant_id, user)


class RefundRequest(ConcurrentTransitionMixin, models.Model):
    """A buyer's request for a refund, decided by the policy or by support (D-5, L-4.1).

    submitted -> under_review <-> info_requested, under_review -> awaiting_restaurant ->
    under_review, under_review -> approved | partially_approved | denied, and approved |
    partially_approved -> refunded once money moved. Automatic decisions go submitted ->
    approved -> refunded (or submitted -> denied) with no person.
    """

    class Status(models.TextChoices):
        SUBMITTED = "submitted"
        UNDER_REVIEW = "under_review", "Under review"
        INFO_REQUESTED = "info_requested", "Waiting for your answer"
        AWAITING_RESTAURANT = "awaiting_restaurant", "Checking with the restaurant"
        APPROVED = "approved"
        PARTIALLY_APPROVED = "partially_approved", "Partially approved"
        DENIED = "denied"
        REFUNDED = "refunded"

    class Method(models.TextChoices):
        ORIGINAL = "original", "Original payment method"
        ACCOUNT_CREDIT = "account_credit", "Account credit"

    class Resolution(models.TextChoices):
        REFUND = "refund", "Refund"
        PROMO_CREDIT = "promo_credit", "Promotional credit"
        REPLACEMENT = "replacement", "Replacement order"
        CHARGE_CANCELLED = "charge_cancelled", "Second charge cancelled"

    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="refund_requests"
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="refund_requests"
    )
    reason = models.CharField(max_length=24, choices=list(Reason.LABELS.items()))
    description = models.TextField(blank=True)
    preferred_method = models.CharField(
        max_length=16, choices=Method.choices, default=Method.ORIGINAL
    )
    status = FSMField(
        default=Status.SUBMITTED, choices=Status.choices, protected=True, db_index=True
    )
    discovered_at = models.DateTimeField(help_text="When the buyer found the problem (L-5.2).")
    submitted_at = models.DateTimeField(default=timezone.now, db_index=True)
    # L-4.1 review SLA: due 48 h after submission; the clock pauses while we wait for the buyer.
    review_due_at = models.DateTimeField(db_index=True)
    info_requested_at = models.DateTimeField(null=True, blank=True)
    due_soon_flagged_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # K-OV: when support last asked the restaurant to verify (the restaurant's clock).
    restaurant_asked_at = models.DateTimeField(null=True, blank=True)
    # What the policy suggested when the request arrived (D-6), shown to the agent.
    suggested_outcome = models.CharField(max_length=10)
    suggested_amount = models.DecimalField(**MONEY)
    suggested_code = models.CharField(max_length=40)
    suggested_clauses = models.JSONField(default=list)
    # The decision (D-5): amount, method, explanation, clauses, who (None: the policy).
    decided_amount = models.DecimalField(null=True, blank=True, **MONEY)
    decided_method = models.CharField(max_length=16, choices=Method.choices, blank=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    explanation = models.TextField(blank=True)
    decision_clauses = models.JSONField(default=list, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # Four eyes (D-6): above the version's threshold a supervisor approves before money moves.
    needs_second_approval = models.BooleanField(default=False)
    second_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    second_approved_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    replacement_order = models.OneToOneField(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaces_request",
    )

    class Meta:
        ordering = ["review_due_at", "pk"]
        indexes = [
            # K-OV: the sweep for unanswered verification requests reads only the few waiting.
            models.Index(
                fields=["restaurant_asked_at"],
                condition=Q(status="awaiting_restaurant"),
                name="refund_request_awaiting_rest",
            ),
        ]
        constraints = [
            # Four eyes are two people.
            models.CheckConstraint(
                condition=Q(second_approved_by__isnull=True)
                | ~Q(second_approved_by=models.F("decided_by")),
                name="refund_request_four_eyes_are_two_people",
            ),
        ]

    def __str__(self):
        return f"Refund request #{self.pk} ({self.get_reason_display()})"

    def get_absolute_url(self):
        return reverse("refunds:request", args=[self.pk])

    @property
    def decided_by_label(self) -> str:
        return str(self.decided_by) if self.decided_by_id else "policy"

    @transition(status, source=Status.SUBMITTED, target=Status.UNDER_REVIEW)
    def start_review(self, *, at):
        """The policy routes the request to support (L-4.1 step 3)."""

    @transition(
        status, source=Status.UNDER_REVIEW, target=Status.INFO_REQUESTED, permission=_is_support
    )
    def request_info(self, *, at):
        self.info_requested_at = at

    @transition(
        status, source=Status.INFO_REQUESTED, target=Status.UNDER_REVIEW, permission=_is_buyer
    )
    def answer(self, *, at):
        """The buyer answers; the review clock resumes with the time it was paused added."""
        self.review_due_at += at - self.info_requested_at
        self.info_requested_at = None

    @transition(
        status,
        source=Status.UNDER_REVIEW,
        target=Status.AWAITING_RESTAURANT,
        permission=_is_support,
    )
    def ask_restaurant(self, *, at):
        """L-4.1 step 3: "May contact restaurant for verification"."""
        self.restaurant_asked_at = at

    @transition(
        status,
        source=Status.AWAITING_RESTAURANT,
        target=Status.UNDER_REVIEW,
        permission=_is_partner,
    )
    def restaurant_answer(self, *, at):
        pass

    # K-OV: support may decide a request that waits on a restaurant that never answers.
    @transition(
        status,
        source=[Status.SUBMITTED, Status.UNDER_REVIEW, Status.AWAITING_RESTAURANT],
        target=Status.APPROVED,
    )
    def approve(self, *, at):
        self.decided_at = at

    @transition(
        status,
        source=[Status.UNDER_REVIEW, Status.AWAITING_RESTAURANT],
        target=Status.PARTIALLY_APPROVED,
    )
    def partially_approve(self, *, at):
        self.decided_at = at

    @transition(
        status,
        source=[Status.SUBMITTED, Status.UNDER_REVIEW, Status.AWAITING_RESTAURANT],
        target=Status.DENIED,
    )
    def deny(self, *, at):
        self.decided_at = at

    @transition(status, source=[Status.APPROVED, Status.PARTIALLY_APPROVED], target=Status.REFUNDED)
    def mark_refunded(self, *, at):
        self.refunded_at = at

    # Four eyes (D-6): a supervisor refuses the second approval; nothing was paid, so the
    # request goes back to review and the decision is cleared by the service.
    @transition(
        status, source=[Status.APPROVED, Status.PARTIALLY_APPROVED], target=Status.UNDER_REVIEW
    )
    def send_back(self, *, at):
        pass


# Decided with a resolution (money, credit or a replacement): the lines it named are used up.
DECIDED_STATUSES = [
    RefundRequest.Status.APPROVED,
    RefundRequest.Status.PARTIALLY_APPROVED,
    RefundRequest.Status.REFUNDED,
]

# Undecided: the buyer may still write, add photos, and cannot open another request.
OPEN_STATUSES = [
    RefundRequest.Status.SUBMITTED,
    RefundRequest.Status.UNDER_REVIEW,
    RefundRequest.Status.INFO_REQUESTED,
    RefundRequest.Status.AWAITING_RESTAURANT,
]


class RefundRequestItem(models.Model):
    """A line named in a claim, with how many were affected and, once the request is decided,
    the part of the decided refund that went to this line (D-7, L-7.2)."""

    request = models.ForeignKey(RefundRequest, on_delete=models.CASCADE, related_name="items")
    order_item = models.ForeignKey("orders.OrderItem", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    refunded_amount = models.DecimalField(default=Decimal("0.00"), **MONEY)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "order_item"], name="refund_item_once"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="refund_item_quantity"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0), name="refund_item_refunded_not_negative"
            ),
        ]

    def __str__(self):
        return f"{self.quantity} x {self.order_item.name}"


def _evidence_path(instance, filename):
    return f"evidence/{instance.request.order_id}/{instance.request_id}/{filename}"


def _evidence_thumbnail_path(instance, filename):
    return f"evidence/{instance.request.order_id}/{instance.request_id}/thumbs/{filename}"


class RefundEvidence(PhotoEvidence):
    """A photo of the problem (L-5.2), stored re-encoded without metadata and capped in size,
    with a thumbnail of the same type (refunds.photos); served only to those allowed."""

    request = models.ForeignKey(RefundRequest, on_delete=models.CASCADE, related_name="evidence")
    file = models.ImageField(upload_to=_evidence_path, width_field="width", height_field="height")
    thumbnail = models.ImageField(upload_to=_evidence_thumbnail_path, blank=True)

    class Meta(PhotoEvidence.Meta):
        verbose_name_plural = "refund evidence"

    def __str__(self):
        return f"Photo {self.pk} for {self.request}"


def _held_photo_path(instance, filename):
    return f"evidence/{instance.order_id}/held/{filename}"


def _held_photo_thumbnail_path(instance, filename):
    return f"evidence/{instance.order_id}/held/thumbs/{filename}"


class HeldPhoto(PhotoEvidence):
    """A photo a buyer chose on the report-a-problem form, validated and re-encoded like any
    evidence (refunds.photos) and kept for that buyer and order until the request is sent, when
    it becomes the request's `RefundEvidence` (same stored files); unsent ones are purged by age
    (refunds.tasks.purge_held_photos). Served only to the buyer who chose it."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="+")
    file = models.ImageField(upload_to=_held_photo_path, width_field="width", height_field="height")
    thumbnail = models.ImageField(upload_to=_held_photo_thumbnail_path, blank=True)

    class Meta(PhotoEvidence.Meta):
        indexes = [models.Index(fields=["created_at"], name="held_photo_created_at")]

    def __str__(self):
        return f"Held photo {self.pk} for order #{self.order_id}"


class RefundMessage(models.Model):
    """The conversation on a request between the buyer, support and the restaurant."""

    class Role(models.TextChoices):
        BUYER = "buyer"
        SUPPORT = "support"
        RESTAURANT = "restaurant"

    request = models.ForeignKey(RefundRequest, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=12, choices=Role.choices)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"{self.role}: {self.body[:40]}"


class RefundRequestEvent(models.Model):
    """The request's timeline: every status change and decision, who made it and why."""

    request = models.ForeignKey(RefundRequest, on_delete=models.CASCADE, related_name="events")
    name = models.CharField(max_length=40)
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_role = models.CharField(max_length=12)
    message = models.CharField(max_length=500)
    clauses = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"{self.request}: {self.message}"


class Refund(models.Model):
    """One money movement back to the buyer: to the card, or as account or promotional credit.

    `idempotency_key` is unique, so a retried or concurrent call can never move money twice.
    """

    class Destination(models.TextChoices):
        CARD = "card"
        ACCOUNT_CREDIT = "account_credit", "Account credit"
        PROMO_CREDIT = "promo_credit", "Promotional credit"

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="refunds")
    request = models.ForeignKey(
        RefundRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    amount = models.DecimalField(validators=[MinValueValidator(Decimal("0.01"))], **MONEY)
    destination = models.CharField(max_length=16, choices=Destination.choices)
    idempotency_key = models.CharField(max_length=160, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    payment = models.ForeignKey(
        "orders.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    gateway_reference = models.CharField(max_length=80, blank=True)
    failure_message = models.CharField(max_length=240, blank=True)
    reason = models.CharField(max_length=240)
    clauses = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    # D-7: a card refund is committed pending, then the processor is called outside any
    # transaction under `processor_key`: the same key after an unknown outcome, a new one
    # (`<key>:attempt-<n>`) after a decline. `next_attempt_at` is when the retry sweep may try
    # again; None once it succeeded or support took it over.
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processor_key = models.CharField(max_length=200, blank=True)
    # Support paid a card refund that kept failing as account credit instead (D-7).
    replaced_by = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaces"
    )
    # L-4.2: processed within 1-3 business days, then 5-10 business days at the bank (card).
    expected_processed_by = models.DateField(null=True, blank=True)
    expected_in_bank_from = models.DateField(null=True, blank=True)
    expected_in_bank_by = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=~Q(destination="card") | Q(payment__isnull=False),
                name="refund_to_card_names_its_payment",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(next_attempt_at__isnull=False),
                name="refund_next_attempt_due",
            )
        ]

    def __str__(self):
        return f"Refund {self.amount} to {self.destination} ({self.status})"

    @property
    def is_money_back(self) -> bool:
        """Card and account credit return paid money; promotional credit is goodwill (L-7.1)."""
        return self.destination != self.Destination.PROMO_CREDIT


class RestaurantLedgerEntry(models.Model):
    """What a restaurant is owed, entry by entry (L-9): a sale when an order is fulfilled, the
    fee it keeps when it approves a buyer's cancellation, deductions for refunds it caused, the
    reversal of a deduction support agreed was not the restaurant's, and the weekly payout that
    closes each period. Signed: what the platform owes the restaurant is positive. Entries are
    never edited: a correction is an entry of its own."""

    class Kind(models.TextChoices):
        SALE = "sale"
        CANCELLATION_FEE = "cancellation_fee", "Cancellation fee kept"
        REFUND_DEDUCTION = "refund_deduction", "Refund deducted"
        DEDUCTION_REVERSAL = "deduction_reversal", "Deduction reversed"
        PAYOUT = "payout"

    restaurant = models.ForeignKey(
        "orders.Restaurant", on_delete=models.PROTECT, related_name="ledger_entries"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    amount = models.DecimalField(**MONEY)
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refund = models.OneToOneField(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="deduction"
    )
    # A deduction_reversal points at the deduction it reverses: one reversal per deduction.
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversal"
    )
    # A payout names the weekly period (its Monday, site time zone) it closes.
    period_starts_on = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=240)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "restaurant ledger entries"
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind__in=["sale", "cancellation_fee", "deduction_reversal"], amount__gt=0
                )
                | Q(kind="refund_deduction", amount__lt=0)
                # A period whose balance is not positive closes with a payout of zero.
                | Q(kind="payout", amount__lte=0),
                name="restaurant_ledger_sign_matches_kind",
            ),
            # An order is sold once and its cancellation fee kept once.
            models.UniqueConstraint(
                fields=["order", "kind"],
                condition=Q(kind__in=["sale", "cancellation_fee"]),
                name="restaurant_ledger_one_sale_and_fee_per_order",
            ),
            models.CheckConstraint(
                condition=Q(kind="deduction_reversal", reverses__isnull=False)
                | (~Q(kind="deduction_reversal") & Q(reverses__isnull=True)),
                name="restaurant_ledger_reversal_names_its_deduction",
            ),
            models.CheckConstraint(
                condition=Q(kind="payout", period_starts_on__isnull=False)
                | (~Q(kind="payout") & Q(period_starts_on__isnull=True)),
                name="restaurant_ledger_payout_names_its_period",
            ),
            # L-9: one payout per restaurant per weekly period.
            models.UniqueConstraint(
                fields=["restaurant", "period_starts_on"],
                condition=Q(kind="payout"),
                name="restaurant_ledger_one_payout_per_period",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount} ({self.restaurant})"


class DeductionDispute(models.Model):
    """A restaurant contesting one refund deduction (L-9, K-DR), once, with a note; a
    supervisor upholds it (the deduction is reversed by a ledger entry of its own) or rejects it
    (the deduction stands), with an explanation the restaurant reads."""

    class Status(models.TextChoices):
        OPEN = "open", "Waiting for support"
        UPHELD = "upheld", "Upheld: deduction reversed"
        REJECTED = "rejected", "Rejected: deduction stands"

    deduction = models.OneToOneField(
        RestaurantLedgerEntry, on_delete=models.PROTECT, related_name="dispute"
    )
    restaurant = models.ForeignKey(
        "orders.Restaurant", on_delete=models.PROTECT, related_name="deduction_disputes"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    note = models.TextField()
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now, db_index=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    explanation = models.TextField(blank=True)

    class Meta:
        ordering = ["opened_at"]

    def __str__(self):
        return f"Dispute #{self.pk} of deduction {self.deduction.amount} ({self.restaurant})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN
