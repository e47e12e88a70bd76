"""What the catalogue API reads (D-10): restaurants with their hours and cancellation terms, and
their menus. Money is a string with two decimals; percentages too."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.serializers import ModelSerializer
from orders.models import MenuItem, Order, Restaurant


# Hours and minutes, "09:30": not OpenAPI's `time` format, which (RFC 3339) has seconds too.
@extend_schema_field(
    {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "09:30"}
)
class ClockTimeField(serializers.TimeField):
    """A local time of day as `HH:MM`."""

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", **kwargs)


class OpeningHoursSerializer(serializers.Serializer):
    """Local opening hours; `opens_at` equal to `closes_at` means open around the clock, and a
    `closes_at` before `opens_at` closes after midnight."""

    opens_at = ClockTimeField()
    closes_at = ClockTimeField()
    around_the_clock = serializers.BooleanField()


class CancellationTermsSerializer(serializers.Serializer):
    """The restaurant's cancellation terms (K-B1, L-2.1): before the restaurant accepts, a
    buyer cancels free; after, within `window_minutes`, the buyer may ask to cancel and pays
    `fee_percent` of the order value if the restaurant agrees."""

    window_minutes = serializers.IntegerField()
    fee_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    clauses = serializers.ListField(child=serializers.CharField())


class RestaurantCatalogueSerializer(ModelSerializer):
    """A restaurant as the catalogue lists it: open or not now, its hours, what it offers, its
    delivery fee and cancellation terms, and where its menu is."""

    is_open = serializers.BooleanField(read_only=True, help_text="Open at the time of the call.")
    opening_hours = serializers.SerializerMethodField()
    fulfillment = serializers.SerializerMethodField(help_text="The ways it serves an order.")
    delivery_fee = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    cancellation = serializers.SerializerMethodField()
    menu = serializers.SerializerMethodField(help_text="The path of its menu in this API.")

    class Meta:
        model = Restaurant
        fields = [
            "id", "name", "slug", "description", "address", "is_open", "opening_hours",
            "fulfillment", "delivery_fee", "cancellation", "menu",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(OpeningHoursSerializer)
    def get_opening_hours(self, restaurant: Restaurant) -> dict:
        return OpeningHoursSerializer(
            {
                "opens_at": restaurant.opens_at,
                "closes_at": restaurant.closes_at,
                "around_the_clock": restaurant.opens_at == restaurant.closes_at,
            }
        ).data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_fulfillment(self, restaurant: Restaurant) -> list[str]:
        return [kind for kind in Order.Fulfillment.values if restaurant.offers(kind)]

    @extend_schema_field(CancellationTermsSerializer)
    def get_cancellation(self, restaurant: Restaurant) -> dict:
        return CancellationTermsSerializer(
            {
                "window_minutes": restaurant.cancellation_window_minutes,
                "fee_percent": restaurant.cancellation_fee_percent,
                "clauses": ["K-B1", "L-2.1"],
            }
        ).data

    @extend_schema_field(OpenApiTypes.STR)
    def get_menu(self, restaurant: Restaurant) -> str:
        return reverse("api-restaurant-menu", args=[restaurant.pk])


class MenuItemSerializer(ModelSerializer):
    """A dish: its price (for new orders; placed orders keep the price they were placed at),
    its allergens and whether it can be ordered today (`available`: on the menu and not sold
    out for today)."""

    price = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    allergens = serializers.ListField(child=serializers.CharField(), read_only=True)
    available = serializers.BooleanField(source="available_today", read_only=True)
    promotional = serializers.BooleanField(source="is_promotional", read_only=True)

    class Meta:
        model = MenuItem
        fields = ["id", "name", "description", "price", "allergens", "available", "promotional"]
        read_only_fields = fields
