"""Credit and discount codes in admin. Credit grants and the ledger are read-only: credit is
created, spent and expired by `credits.services`. Agents issue discount codes (L-7.2)."""

from django import forms
from django.contrib import admin

from core.admin import (
    MoneyDisplayMixin,
    ReadOnlyModelAdmin,
    ReadOnlyTabularInline,
    money,
    search_term_without_hash,
)
from credits.models import CreditGrant, CreditTransaction, DiscountCode
from credits.selectors import discount_codes_with_use


class CreditTransactionInline(ReadOnlyTabularInline):
    model = CreditTransaction
    fk_name = "grant"
    fields = ("created_at", "kind", "amount", "order", "note")
    readonly_fields = fields


@admin.register(CreditGrant)
class CreditGrantAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "buyer",
        "kind",
        "amount",
        "remaining",
        "expires_at",
        "source",
        "order",
        "created_at",
    )
    list_filter = ("kind", "source", "expires_at", "created_at")
    search_fields = ("buyer__username", "buyer__email", "reason", "order__id__exact")
    date_hierarchy = "created_at"
    list_select_related = ("buyer", "order")
    inlines = [CreditTransactionInline]

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term_without_hash(search_term))


@admin.register(CreditTransaction)
class CreditTransactionAdmin(ReadOnlyModelAdmin):
    """The credit ledger: balances are derived from it (D-5)."""

    list_display = ("created_at", "buyer", "grant", "kind", "amount", "order", "note")
    list_filter = ("kind", "created_at")
    search_fields = ("buyer__username", "buyer__email", "order__id__exact", "note")
    date_hierarchy = "created_at"
    list_select_related = ("buyer", "grant__buyer", "order")

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term_without_hash(search_term))


class UsedFilter(admin.SimpleListFilter):
    """A code is used once an order carries it; it stays used if that order is cancelled."""

    title = "used"
    parameter_name = "used"

    def lookups(self, request, model_admin):
        return [("yes", "Used"), ("no", "Unused")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(is_used=True)
        if self.value() == "no":
            return queryset.filter(is_used=False)
        return queryset


class DiscountCodeForm(forms.ModelForm):
    class Meta:
        model = DiscountCode
        fields = ["code", "amount_off", "percent_off"]  # the admin adds its fieldsets' fields

    def clean_code(self):
        # The model stores codes upper-case; check uniqueness against what will be stored.
        return self.cleaned_data["code"].strip().upper()

    def clean(self):
        """The model's constraint says the same; this says it in words, next to the field (a
        field with an error is left out of the constraint check, so it is said once)."""
        cleaned = super().clean()
        if "amount_off" not in self.fields or self.has_error("percent_off"):
            return cleaned
        has_amount = cleaned.get("amount_off") is not None
        has_percent = cleaned.get("percent_off") is not None
        if has_amount and has_percent:
            self.add_error("amount_off", "Give an amount off or a percent off, not both.")
        elif not has_amount and not has_percent:
            self.add_error("amount_off", "Give an amount off or a percent off.")
        return cleaned


DISCOUNT_TERMS = (
    "code",
    "amount_off",
    "percent_off",
    "min_order_subtotal",
    "restaurants",
    "is_multi_use",
    "issued_to",
    "valid_from",
)
REDEMPTION_FIELDS = ("redeemed_by", "redeemed_on_order", "redeemed_at", "created_at")


@admin.register(DiscountCode)
class DiscountCodeAdmin(MoneyDisplayMixin, admin.ModelAdmin):
    """Codes: agents create them (an amount or a percent off). Once used, a code's terms are
    read-only; it may still be deactivated or given an end date."""

    form = DiscountCodeForm
    list_display = (
        "code",
        "discount",
        "min_order_subtotal",
        "is_multi_use",
        "is_active",
        "valid_until",
        "used",
        "issued_to",
        "redeemed_by",
        "redeemed_on_order",
        "redeemed_at",
    )
    list_filter = (UsedFilter, "is_active", "is_multi_use", "valid_until", "created_at")
    search_fields = (
        "code",
        "description",
        "issued_to__username",
        "issued_to__email",
        "redeemed_by__username",
        "redeemed_by__email",
    )
    list_select_related = ("issued_to", "redeemed_by", "redeemed_on_order")
    raw_id_fields = ("issued_to",)
    autocomplete_fields = ("restaurants",)
    fieldsets = (
        (None, {"fields": ("code", "description", ("amount_off", "percent_off"))}),
        (
            "Who and when",
            {
                "fields": (
                    "min_order_subtotal",
                    "restaurants",
                    "is_multi_use",
                    "issued_to",
                    ("valid_from", "valid_until"),
                    "is_active",
                )
            },
        ),
        ("Redemption (L-7.2)", {"fields": REDEMPTION_FIELDS}),
    )

    def get_queryset(self, request):
        return discount_codes_with_use(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_used:
            return DISCOUNT_TERMS + REDEMPTION_FIELDS
        return REDEMPTION_FIELDS

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_used:
            return False  # a used code stays used (L-7.2)
        return super().has_delete_permission(request, obj)

    @admin.display(description="Discount")
    def discount(self, code: DiscountCode) -> str:
        if code.amount_off is not None:
            return f"{money(code.amount_off)} off"
        return f"{code.percent_off} % off"

    @admin.display(description="Used", boolean=True, ordering="is_used")
    def used(self, code: DiscountCode) -> bool:
        return code.is_used
