"""The platform stepping in (K-OV). Escalations, chargebacks and incidents join with their
issues (D-5)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Intervention(models.Model):
    """A case where a restaurant or a buyer did not follow the rules in time, handed to support
    with the one action that resolves it (K-OV)."""

    class Kind(models.TextChoices):
        UNANSWERED_CANCELLATION = "unanswered_cancellation", "Unanswered cancellation request"
        REVIEW_OVERDUE = "review_overdue", "Refund review overdue"
        REFUND_FAILED = "refund_failed", "Refund failed"
        UNANSWERED_VERIFICATION = "unanswered_verification", "Unanswered verification request"
        MISSING_ORDER = "missing_order", "Missing order"

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="interventions"
    )
    refund_request = models.ForeignKey(
        "refunds.RefundRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="interventions",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    summary = models.CharField(max_length=240)
    opened_at = models.DateTimeField(default=timezone.now, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action_taken = models.CharField(max_length=240, blank=True)

    class Meta:
        ordering = ["opened_at"]
        constraints = [
            # Handing a case to support twice would make two agents act on it.
            models.UniqueConstraint(
                fields=["order", "kind"],
                condition=Q(status="open"),
                name="intervention_one_open_per_order_and_kind",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} on {self.order}"


class Incident(models.Model):
    """Something that affects many orders or a restaurant's safety (L-10): a system outage
    (affected orders refunded in bulk), an allergen investigation against a restaurant, or force
    majeure (the automatic rules pause and agents decide).

    `restaurants` names the restaurants it covers; none means all. An outage moves `open ->
    refunding -> closed` (its bulk refund started, then finished, with its progress in
    `affected_orders`, `refunded_orders` and `refunded_amount`); an allergen investigation
    `open -> investigating -> closed` (assigned, then closed with its findings); force majeure
    covers its orders while `open`."""

    class Kind(models.TextChoices):
        OUTAGE = "outage", "System outage"
        ALLERGEN = "allergen", "Allergen investigation"
        FORCE_MAJEURE = "force_majeure", "Force majeure"

    class Status(models.TextChoices):
        OPEN = "open"
        REFUNDING = "refunding", "Refunding"
        INVESTIGATING = "investigating", "Investigating"
        CLOSED = "closed"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    title = models.CharField(max_length=160)
    description = models.TextField(blank=True)
    restaurants = models.ManyToManyField(
        "orders.Restaurant",
        blank=True,
        related_name="incidents",
        help_text="None: every restaurant.",
    )
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="incidents"
    )
    refund_request = models.OneToOneField(
        "refunds.RefundRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="incident",
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # An outage's bulk refund (L-10): counted in the transaction of each batch it refunds.
    affected_orders = models.PositiveIntegerField(default=0)
    refunded_orders = models.PositiveIntegerField(default=0)
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    refund_started_at = models.DateTimeField(null=True, blank=True)
    refund_started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refund_finished_at = models.DateTimeField(null=True, blank=True)
    # An allergen investigation (L-10): who works it, what they found, the restaurant's answer.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    findings = models.TextField(blank=True)
    restaurant_answer = models.TextField(blank=True)
    restaurant_answered_at = models.DateTimeField(null=True, blank=True)
    restaurant_answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0), name="incident_refunded_amount_not_negative"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.title}"
