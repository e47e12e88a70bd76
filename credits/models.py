"""Promotional and account credit with one ledger, and discount codes (D-5, L-7)."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.display import money_text
from orders.models import MONEY, PERCENT


class CreditGrant(models.Model):
    """Credit given to one buyer. Non-transferable: nothing ever changes `buyer` (L-7.1).

    `remaining` always equals the sum of the grant's ledger transactions.
    """

    class Kind(models.TextChoices):
        PROMO = "promo", "Promotional credit"
        ACCOUNT = "account", "Account credit"

    class Source(models.TextChoices):
        REFUND = "refund", "Refund"
        RESTAURANT_CANCEL_GOODWILL = "restaurant_cancel_goodwill", "Restaurant cancellation"
        LATE_DELIVERY = "late_delivery", "Late delivery"
        AGENT = "agent", "Support resolution"
        PROMOTION = "promotion", "Promotion"

    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_grants"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    amount = models.DecimalField(**MONEY)
    remaining = models.DecimalField(**MONEY)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    source = models.CharField(max_length=32, choices=Source.choices)
    reason = models.CharField(max_length=240)
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refund = models.OneToOneField(
        "refunds.Refund",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credit_grant",
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_grant_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0, remaining__lte=F("amount")),
                name="credit_grant_remaining_within_amount",
            ),
            # L-2.2: one goodwill credit per restaurant cancellation.
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(source="restaurant_cancel_goodwill"),
                name="credit_grant_one_goodwill_per_order",
            ),
            # L-7.1: promotional credit always expires; account credit never does.
            models.CheckConstraint(
                condition=Q(kind="promo", expires_at__isnull=False)
                | Q(kind="account", expires_at__isnull=True),
                name="credit_grant_only_promo_expires",
            ),
        ]

    def __str__(self):
        return (
            f"{self.get_kind_display()} {money_text(self.remaining)} of "
            f"{money_text(self.amount)} for {self.buyer}"
        )


class CreditTransaction(models.Model):
    """The credit ledger: every change of a grant's `remaining`, signed."""

    class Kind(models.TextChoices):
        GRANT = "grant"
        SPEND = "spend"
        EXPIRY = "expiry"
        RESTORE = "restore"
        REVERSAL = "reversal"

    grant = models.ForeignKey(CreditGrant, on_delete=models.PROTECT, related_name="transactions")
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_transactions"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.DecimalField(**MONEY)
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.CharField(max_length=240, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["grant", "restore"], amount__gt=0)
                | Q(kind__in=["spend", "expiry", "reversal"], amount__lt=0),
                name="credit_transaction_sign_matches_kind",
            ),
            # A grant is granted once and expires at most once.
            models.UniqueConstraint(
                fields=["grant"], condition=Q(kind="grant"), name="credit_transaction_one_grant"
            ),
            models.UniqueConstraint(
                fields=["grant"], condition=Q(kind="expiry"), name="credit_transaction_one_expiry"
            ),
            models.UniqueConstraint(
                fields=["grant", "order"],
                condition=Q(kind="restore"),
                name="credit_transaction_one_restore_per_order",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {money_text(self.amount)}"


class DiscountCode(models.Model):
    """A code taking an amount or a percent off the subtotal. Single use unless multi-use;
    a used code stays used even if its order is cancelled (L-7.2)."""

    code = models.CharField(max_length=32, unique=True)
    description = models.CharField(max_length=240, blank=True)
    amount_off = models.DecimalField(
        null=True, blank=True, validators=[MinValueValidator(Decimal("0.01"))], **MONEY
    )
    percent_off = models.DecimalField(
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(100)],
        **PERCENT,
    )
    min_order_subtotal = models.DecimalField(default=Decimal("0.00"), **MONEY)
    restaurants = models.ManyToManyField("orders.Restaurant", blank=True, related_name="+")
    is_multi_use = models.BooleanField(default=False)
    issued_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Only this buyer may use the code (a code given as a resolution, L-7.2).",
    )
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    redeemed_on_order = models.OneToOneField(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    redeemed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_off__isnull=False, percent_off__isnull=True)
                | Q(amount_off__isnull=True, percent_off__isnull=False),
                name="discount_code_amount_or_percent",
            ),
            models.CheckConstraint(
                condition=Q(is_multi_use=True, redeemed_on_order__isnull=True)
                | Q(is_multi_use=False),
                name="discount_code_multi_use_not_redeemed_once",
            ),
        ]

    def __str__(self):
        return self.code

    def save(self, *args, **kwargs):
        self.code = self.code.strip().upper()
        super().save(*args, **kwargs)

    @property
    def is_redeemed(self) -> bool:
        return self.redeemed_on_order_id is not None
