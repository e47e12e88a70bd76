"""What the incidents API reads and writes (D-10, L-10). Money is a string with two decimals."""

from rest_framework import serializers

from core.api import BoundedDateTimeField, StrictIntegerField
from core.serializers import ModelSerializer
from disputes.models import Incident

MONEY = {"max_digits": 12, "decimal_places": 2}
FIELD_CODES = {
    ("kind", "invalid_choice"): "invalid_kind",
    ("starts_at", "invalid"): "invalid_datetime",
    ("ends_at", "invalid"): "invalid_datetime",
    ("starts_at", "out_of_range"): "invalid_datetime",
    ("ends_at", "out_of_range"): "invalid_datetime",
    ("restaurants", "invalid"): "wrong_type",
}


class IncidentCreateSerializer(serializers.Serializer):
    """An outage or force majeure as a supervisor enters it; `restaurants` empty for all."""

    kind = serializers.ChoiceField(choices=Incident.Kind.choices)
    title = serializers.CharField(max_length=160)
    description = serializers.CharField(max_length=4000, required=False, default="")
    starts_at = BoundedDateTimeField()
    ends_at = BoundedDateTimeField(required=False, allow_null=True, default=None)
    restaurants = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=2**31 - 1),
        required=False,
        default=list,
        max_length=1000,
    )
    dry_run = serializers.BooleanField(required=False, default=False)


class RestaurantShareSerializer(serializers.Serializer):
    restaurant = serializers.IntegerField(source="restaurant_id")
    name = serializers.CharField(source="restaurant")
    orders = serializers.IntegerField()
    amount = serializers.DecimalField(**MONEY)


class OutageEstimateSerializer(serializers.Serializer):
    """The dry run: what the bulk refund would give back now; nothing was written."""

    affected_orders = serializers.IntegerField()
    total_amount = serializers.DecimalField(**MONEY)
    per_restaurant = RestaurantShareSerializer(many=True)


class IncidentSerializer(ModelSerializer):
    """An incident with its progress (an outage's bulk refund: `affected_orders`,
    `refunded_orders`, `refunded_amount`, and `refunded_per_restaurant` so far)."""

    restaurants = serializers.SerializerMethodField()
    refunded_amount = serializers.DecimalField(**MONEY)
    refunded_per_restaurant = RestaurantShareSerializer(many=True, source="refund_summary")

    class Meta:
        model = Incident
        fields = [
            "id",
            "kind",
            "status",
            "title",
            "description",
            "starts_at",
            "ends_at",
            "restaurants",
            "created_at",
            "affected_orders",
            "refunded_orders",
            "refunded_amount",
            "refund_started_at",
            "refund_finished_at",
            "refunded_per_restaurant",
            "order",
            "refund_request",
            "findings",
            "restaurant_answer",
            "closed_at",
        ]

    def get_restaurants(self, incident) -> list[int]:
        return sorted(r.pk for r in incident.restaurants.all())
