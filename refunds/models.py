"""Refunds: one row is one money movement, made exactly once (D-5, D-7)."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from orders.models import MONEY


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

    def __str__(self):
        return f"Refund {self.amount} to {self.destination} ({self.status})"

    @property
    def is_money_back(self) -> bool:
        """Card and account credit return paid money; promotional credit is goodwill (L-7.1)."""
        return self.destination != self.Destination.PROMO_CREDIT


class RestaurantLedgerEntry(models.Model):
    """What a restaurant is owed, entry by entry (L-9): a sale when an order is fulfilled, the
    fee it keeps when it approves a buyer's cancellation, deductions for refunds it caused, and
    payouts. Signed: what the platform owes the restaurant is positive."""

    class Kind(models.TextChoices):
        SALE = "sale"
        CANCELLATION_FEE = "cancellation_fee", "Cancellation fee kept"
        REFUND_DEDUCTION = "refund_deduction", "Refund deducted"
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
    description = models.CharField(max_length=240)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "restaurant ledger entries"
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["sale", "cancellation_fee"], amount__gt=0)
                | Q(kind__in=["refund_deduction", "payout"], amount__lt=0),
                name="restaurant_ledger_sign_matches_kind",
            ),
            # An order is sold once and its cancellation fee kept once.
            models.UniqueConstraint(
                fields=["order", "kind"],
                condition=Q(kind__in=["sale", "cancellation_fee"]),
                name="restaurant_ledger_one_sale_and_fee_per_order",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount} ({self.restaurant})"
