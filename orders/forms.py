"""Buyer forms: adding to the cart and checking out. Shape only; the rules live in services."""

from django import forms

from orders.models import MenuItem, Order, Restaurant
from orders.services.placement import MAX_QUANTITY_PER_LINE


def _quantity_field(**kwargs) -> forms.IntegerField:
    return forms.IntegerField(
        min_value=1,
        max_value=MAX_QUANTITY_PER_LINE,
        widget=forms.NumberInput(attrs={"class": "qty", "min": 1, "max": MAX_QUANTITY_PER_LINE}),
        **kwargs,
    )


class AddToCartForm(forms.Form):
    menu_item = forms.IntegerField(widget=forms.HiddenInput)
    quantity = _quantity_field(initial=1)
    # Set when the buyer agreed to replace a cart holding another restaurant's items.
    replace = forms.BooleanField(required=False, widget=forms.HiddenInput)


class CheckoutForm(forms.Form):
    """The cart page: a quantity per line, fulfilment, address, code and credit."""

    fulfillment = forms.ChoiceField(label="How do you want it?", widget=forms.RadioSelect)
    delivery_address = forms.CharField(label="Delivery address", max_length=240, required=False)
    discount_code = forms.CharField(label="Discount code", max_length=32, required=False)
    use_credit = forms.BooleanField(label="Use my credit", required=False)
    # One per rendering of the cart: a double submission places one order (see the view).
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, restaurant: Restaurant, items: list[MenuItem], **kwargs):
        super().__init__(*args, **kwargs)
        self.items = items
        self.fields["fulfillment"].choices = [
            (value, label) for value, label in Order.Fulfillment.choices if restaurant.offers(value)
        ]
        for item in items:
            self.fields[self.quantity_name(item)] = _quantity_field(
                label=f"Quantity of {item.name}"
            )

    @staticmethod
    def quantity_name(item: MenuItem) -> str:
        return f"qty_{item.pk}"

    def quantity_fields(self):
        """(menu item, its bound quantity field) pairs, in cart order, for the template."""
        return [(item, self[self.quantity_name(item)]) for item in self.items]

    def lines(self) -> list[tuple[MenuItem, int]]:
        return [(item, self.cleaned_data[self.quantity_name(item)]) for item in self.items]


class CancelForm(forms.Form):
    """The buyer confirms a cancellation at the fee they were shown (binding, L-2.1)."""

    quote = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, widget=forms.HiddenInput
    )
