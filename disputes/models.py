"""The platform stepping in (K-OV), chargebacks and suspensions (L-8.2, D-4), and incidents
(L-10). Escalations join with their issue (D-5)."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.models import PhotoEvidence
from orders.models import MONEY


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


class Escalation(ConcurrentTransitionMixin, models.Model):
    """A buyer asks a supervisor to review a decision again, once, with a statement and more
    photos (L-8.1): a denied or partially approved refund request, or (K-DR) a restaurant's
    denial of a cancellation request or the fee it kept, as an escalation on the order.

    open -> under_review -> upheld | overturned (open -> upheld | overturned too); final.
    `amount` is the new total refund of what was contested when overturned; the difference
    with `previous_amount` moves once through the refund service (key `escalation:<id>`)."""

    class Subject(models.TextChoices):
        REFUND_DECISION = "refund_decision", "Refund decision"
        CANCELLATION_DENIED = "cancellation_denied", "Denied cancellation request"
        CANCELLATION_FEE = "cancellation_fee", "Cancellation fee"

    class Status(models.TextChoices):
        OPEN = "open"
        UNDER_REVIEW = "under_review", "Under review"
        UPHELD = "upheld"
        OVERTURNED = "overturned"

    subject = models.CharField(max_length=24, choices=Subject.choices)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="escalations")
    refund_request = models.OneToOneField(
        "refunds.RefundRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="escalation",
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="escalations"
    )
    statement = models.TextField()
    status = FSMField(default=Status.OPEN, choices=Status.choices, protected=True, db_index=True)
    opened_at = models.DateTimeField(default=timezone.now)
    # L-8.1: decided within 3-5 business days (the pinned version's escalation_*_days).
    due_soon_at = models.DateTimeField()
    due_at = models.DateTimeField(db_index=True)
    due_soon_flagged_at = models.DateTimeField(null=True, blank=True)
    overdue_notified_at = models.DateTimeField(null=True, blank=True)
    # What the contested decision gave back when the escalation opened (0 for a denial).
    previous_amount = models.DecimalField(**MONEY)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    explanation = models.TextField(blank=True)
    amount = models.DecimalField(null=True, blank=True, **MONEY)

    class Meta:
        ordering = ["due_at", "pk"]
        constraints = [
            # K-DR: one escalation per contested cancellation decision (the request's is the
            # one-to-one above): final, no second.
            models.UniqueConstraint(
                fields=["order", "subject"],
                condition=~Q(subject="refund_decision"),
                name="escalation_once_per_order_subject",
            ),
            models.CheckConstraint(
                condition=Q(subject="refund_decision", refund_request__isnull=False)
                | (~Q(subject="refund_decision") & Q(refund_request__isnull=True)),
                name="escalation_request_matches_subject",
            ),
            models.CheckConstraint(
                condition=~Q(status="overturned") | Q(amount__gt=models.F("previous_amount")),
                name="escalation_overturn_gives_more",
            ),
        ]

    def __str__(self):
        return f"Escalation #{self.pk} ({self.get_subject_display()}, order #{self.order_id})"

    def get_absolute_url(self):
        return reverse("disputes:escalation", args=[self.pk])

    @property
    def is_final(self) -> bool:
        return self.status in (self.Status.UPHELD, self.Status.OVERTURNED)

    @transition(status, source=Status.OPEN, target=Status.UNDER_REVIEW)
    def take(self, *, at):
        """A supervisor takes it for review."""

    @transition(status, source=[Status.OPEN, Status.UNDER_REVIEW], target=Status.UPHELD)
    def uphold(self, *, at):
        self.decided_at = at

    @transition(status, source=[Status.OPEN, Status.UNDER_REVIEW], target=Status.OVERTURNED)
    def overturn(self, *, at):
        self.decided_at = at


def _escalation_photo_path(instance, filename):
    return f"escalations/{instance.escalation.order_id}/{instance.escalation_id}/{filename}"


def _escalation_thumbnail_path(instance, filename):
    return f"escalations/{instance.escalation.order_id}/{instance.escalation_id}/thumbs/{filename}"


class EscalationEvidence(PhotoEvidence):
    """A photo with the escalation (L-8.1 "additional evidence"), made safe like a refund
    request's (refunds.photos): re-encoded, stripped, capped, with a thumbnail."""

    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="evidence")
    file = models.ImageField(
        upload_to=_escalation_photo_path, width_field="width", height_field="height"
    )
    thumbnail = models.ImageField(upload_to=_escalation_thumbnail_path, blank=True)

    class Meta(PhotoEvidence.Meta):
        verbose_name_plural = "escalation evidence"

    def __str__(self):
        return f"Photo {self.pk} for escalation #{self.escalation_id}"


class Chargeback(ConcurrentTransitionMixin, models.Model):
    """A buyer's bank taking a card payment back (L-8.2): entered by an agent or received from
    the processor's webhook, answered with the evidence bundle by `evidence_due_by`, and decided
    by the bank (`won`, `lost`) or not contested (`accepted`). A lost or accepted chargeback
    moves `amount_at_stake` back to the buyer through the processor (`settled_at` once it did).

    `amount` is what the bank disputes; `amount_at_stake` is what can still be taken back once
    the card refunds already made and other chargebacks are counted (a chargeback plus the
    refunds never take back more than was paid, L-7.2). Transitions only set fields on self."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        EVIDENCE_SUBMITTED = "evidence_submitted", "Evidence submitted"
        WON = "won"
        LOST = "lost"
        ACCEPTED = "accepted", "Accepted (not contested)"

    class Source(models.TextChoices):
        AGENT = "agent", "Entered by support"
        PROCESSOR = "processor", "Processor webhook"

    OPEN_STATUSES = (Status.RECEIVED, Status.EVIDENCE_SUBMITTED)
    # The money goes back to the buyer (L-8.2): what a chargeback takes once it is over.
    MONEY_MOVES_STATUSES = (Status.LOST, Status.ACCEPTED)

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="chargebacks")
    payment = models.ForeignKey(
        "orders.Payment", on_delete=models.PROTECT, related_name="chargebacks"
    )
    amount = models.DecimalField(validators=[MinValueValidator(Decimal("0.01"))], **MONEY)
    amount_at_stake = models.DecimalField(**MONEY)
    bank_reference = models.CharField(max_length=80)
    reason_code = models.CharField(max_length=40)
    evidence_due_by = models.DateTimeField()
    status = FSMField(
        default=Status.RECEIVED, choices=Status.choices, protected=True, db_index=True
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    received_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    evidence_submitted_at = models.DateTimeField(null=True, blank=True)
    evidence_submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True)
    # The processor's record of the money moved back (lost or accepted), made outside lojix's
    # transactions under `settlement_key` and recorded here once it answered.
    settlement_key = models.CharField(max_length=120, blank=True)
    settlement_reference = models.CharField(max_length=80, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    settlement_error = models.CharField(max_length=240, blank=True)

    class Meta:
        ordering = ["evidence_due_by", "pk"]
        constraints = [
            # The processor and an agent entering the same dispute open it once.
            models.UniqueConstraint(
                fields=["order", "bank_reference"], name="chargeback_one_per_bank_reference"
            ),
            models.CheckConstraint(
                condition=Q(amount_at_stake__gte=0) & Q(amount_at_stake__lte=models.F("amount")),
                name="chargeback_at_stake_within_amount",
            ),
        ]

    def __str__(self):
        return f"Chargeback #{self.pk} on order #{self.order_id}"

    def get_absolute_url(self):
        return f"/admin/disputes/chargeback/{self.pk}/change/"

    @transition(field=status, source=Status.RECEIVED, target=Status.EVIDENCE_SUBMITTED)
    def submit_evidence(self, *, at):
        self.evidence_submitted_at = at

    @transition(field=status, source=OPEN_STATUSES, target=Status.WON)
    def win(self, *, at):
        self.decided_at = at

    @transition(field=status, source=OPEN_STATUSES, target=Status.LOST)
    def lose(self, *, at):
        self.decided_at = at

    @transition(field=status, source=Status.RECEIVED, target=Status.ACCEPTED)
    def accept(self, *, at):
        self.decided_at = at


class Suspension(models.Model):
    """A buyer's account suspended by a supervisor (L-8.2, D-4), after a chargeback or on its
    own: they sign in and read everything, but start nothing new. Lifted when reinstated; a
    buyer with an unlifted suspension is suspended."""

    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="suspensions"
    )
    reason = models.TextField()
    chargeback = models.ForeignKey(
        Chargeback, null=True, blank=True, on_delete=models.PROTECT, related_name="suspensions"
    )
    suspected_fraud = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Suspending a suspended buyer twice would need two reinstatements.
            models.UniqueConstraint(
                fields=["buyer"],
                condition=Q(lifted_at__isnull=True),
                name="suspension_one_active_per_buyer",
            ),
        ]

    def __str__(self):
        state = "lifted" if self.lifted_at else "active"
        return f"Suspension of {self.buyer} ({state})"

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None


class GatewayEvent(models.Model):
    """An event the processor sent to the webhook (D-10), stored once by its id: a replayed
    event id is refused by the unique constraint, so a chargeback opens once however often its
    event arrives."""

    event_id = models.CharField(max_length=120, unique=True)
    type = models.CharField(max_length=60)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    chargeback = models.ForeignKey(
        Chargeback, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )

    class Meta:
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.type} {self.event_id}"
