"""The platform stepping in (K-OV). Escalations, chargebacks and incidents join with their
issues (D-5)."""

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
        DEDUCTION_DISPUTE = "deduction_dispute", "Restaurant disputes a deduction"

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
    majeure (the automatic rules pause and agents decide)."""

    class Kind(models.TextChoices):
        OUTAGE = "outage", "System outage"
        ALLERGEN = "allergen", "Allergen investigation"
        FORCE_MAJEURE = "force_majeure", "Force majeure"

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    title = models.CharField(max_length=160)
    description = models.TextField(blank=True)
    restaurant = models.ForeignKey(
        "orders.Restaurant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="incidents",
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
    closed_at = models.DateTimeField(null=True, blank=True)
    findings = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.title}"
