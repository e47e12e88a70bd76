"""Seller portal forms: shape only. Whether a reason, an explanation or a term is acceptable is
the services' decision (orders.services), shown on these forms when they refuse."""

from django import forms

from orders.models import Order
from orders.policy import (
    MAX_EXPLANATION_LENGTH,
    MIN_EXPLANATION_LENGTH,
    RestaurantCancelReason,
    TermsBounds,
)

# The service's error codes, by the field they are about.
CANCEL_ERROR_FIELDS = {"invalid_reason": "reason", "explanation_required": "explanation"}


class DomainErrorsOnFields:
    """For forms whose service refuses with DomainError: `add_domain_error(error)` shows the
    error's per-field messages (`error.extra["errors"]`, e.g. terms_out_of_bounds,
    invalid_menu_item) on their fields, or its detail on the whole form."""

    def add_domain_error(self, error) -> None:
        by_field = error.extra.get("errors") or {}
        for field, message in by_field.items():
            self.add_error(field if field in self.fields else None, message)
        if not by_field:
            self.add_error(None, error.detail)


class RestaurantCancelForm(forms.Form):
    """The partner cancels an order (L-2.2): a reason from the policy's list and an explanation
    the buyer reads at once (K-S2)."""

    # A CharField rendered as radios: an unknown reason reaches the service, which refuses it.
    reason = forms.CharField(
        label="Reason",
        widget=forms.RadioSelect(choices=list(RestaurantCancelReason.LABELS.items())),
    )
    explanation = forms.CharField(
        label="Explanation for the buyer",
        max_length=MAX_EXPLANATION_LENGTH,
        help_text=f"The buyer reads this at once. At least {MIN_EXPLANATION_LENGTH} characters.",
        widget=forms.Textarea(attrs={"rows": 4, "minlength": MIN_EXPLANATION_LENGTH}),
    )

    def add_domain_error(self, error) -> None:
        """Show a service's refusal on the field it is about (or on the form)."""
        self.add_error(CANCEL_ERROR_FIELDS.get(error.code), error.detail)


class DelayCauseForm(forms.Form):
    """The partner says why a delivery is late (L-3.3); the buyer sees it on the order."""

    delay_cause = forms.ChoiceField(label="Delay cause", choices=Order.DelayCause.choices)


class CancellationDenyForm(forms.Form):
    """The partner denies a buyer's cancellation request with the reason the buyer reads."""

    reason = forms.CharField(
        label="Reason for the buyer",
        max_length=MAX_EXPLANATION_LENGTH,
        error_messages={"required": "Tell the buyer why the cancellation request is denied."},
    )


class RestaurantTermsForm(DomainErrorsOnFields, forms.Form):
    """The restaurant's cancellation window (K-B1) and fee (L-2.1), with the bounds of the
    policy version in force as the inputs' limits; the service enforces them."""

    cancellation_window_minutes = forms.IntegerField(label="Cancellation window (minutes)")
    cancellation_fee_percent = forms.DecimalField(
        label="Cancellation fee (percent)", max_digits=5, decimal_places=2
    )

    def __init__(self, *args, bounds: TermsBounds, **kwargs):
        super().__init__(*args, **kwargs)
        self.bounds = bounds
        self.fields["cancellation_window_minutes"].widget.attrs.update(
            min=bounds.window_min_minutes, max=bounds.window_max_minutes
        )
        self.fields["cancellation_fee_percent"].widget.attrs.update(
            min=bounds.fee_min_percent, max=bounds.fee_max_percent, step="0.01"
        )


class MenuItemForm(DomainErrorsOnFields, forms.Form):
    """A dish as the partner edits it: name, price and allergens (comma-separated). Only the
    shape is checked here; `orders.services.menu` decides what is acceptable and its refusals
    are shown on the fields."""

    name = forms.CharField(label="Name", max_length=200)
    price = forms.DecimalField(label="Price", max_digits=14)
    allergens = forms.CharField(
        label="Allergens",
        required=False,
        max_length=1000,
        help_text="Separated by commas, e.g. gluten, milk, nuts. Empty: none declared.",
    )

    def __init__(self, *args, currency: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["price"].label = f"Price ({currency})" if currency else "Price"
        self.fields["price"].widget.attrs.update(min="0.01", step="0.01", inputmode="decimal")

    def clean_allergens(self) -> list[str]:
        return [part for part in self.cleaned_data["allergens"].split(",") if part.strip()]


class SoldOutForm(forms.Form):
    """Sold out today (`sold_out=1`) or back on sale (`sold_out=0`)."""

    sold_out = forms.TypedChoiceField(
        choices=[("1", "Sold out today"), ("0", "Back on sale")],
        coerce=lambda value: value == "1",
        error_messages={"required": "Say whether the dish is sold out today or back on sale."},
    )
