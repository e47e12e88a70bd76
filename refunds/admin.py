"""Refunds in admin: read-only; every money movement goes through `refunds.services`.

The refund review queue (refund requests) comes with the refund-request issue.
"""

from django.contrib import admin

from core.admin import ReadOnlyModelAdmin, SearchWithoutHashMixin, search_term_without_hash
from refunds.models import Refund, RestaurantLedgerEntry


@admin.register(Refund)
class RefundAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "order",
        "amount",
        "destination",
        "status",
        "gateway_reference",
        "created_at",
        "succeeded_at",
        "expected_in_bank_by",
        "created_by",
    )
    list_filter = ("status", "destination", "created_at", "succeeded_at")
    search_fields = (
        "order__id__exact",
        "gateway_reference",
        "idempotency_key",
        "order__buyer__username",
        "order__buyer__email",
        "order__restaurant__name",
        "reason",
    )
    date_hierarchy = "created_at"
    list_select_related = ("order", "created_by")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "order",
                    "amount",
                    "destination",
                    "status",
                    "reason",
                    "clauses",
                    "created_by",
                    "created_at",
                    "succeeded_at",
                )
            },
        ),
        (
            "Gateway",
            {"fields": ("payment", "gateway_reference", "failure_message", "idempotency_key")},
        ),
        (
            "Expected dates (L-4.2)",
            {"fields": ("expected_processed_by", "expected_in_bank_from", "expected_in_bank_by")},
        ),
    )

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term_without_hash(search_term))


@admin.register(RestaurantLedgerEntry)
class RestaurantLedgerEntryAdmin(SearchWithoutHashMixin, ReadOnlyModelAdmin):
    """What each restaurant is owed, entry by entry (L-9): sales, cancellation fees kept, refund
    deductions and payouts, written by `refunds.services` only."""

    list_display = (
        "id",
        "created_at",
        "restaurant",
        "kind",
        "amount",
        "order",
        "refund",
        "description",
    )
    list_filter = ("kind", "restaurant", "created_at")
    search_fields = (
        "order__id__exact",
        "restaurant__name",
        "description",
        "refund__gateway_reference",
    )
    date_hierarchy = "created_at"
    list_select_related = ("restaurant", "order", "refund")
    fields = ("restaurant", "kind", "amount", "order", "refund", "description", "created_at")
