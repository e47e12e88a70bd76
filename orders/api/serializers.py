"""What the orders API reads and writes (D-10). Money fields are strings with two decimals."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.models import Order, OrderEvent, OrderItem, Payment, Restaurant
from orders.selectors import order_next_actions
from orders.services import MAX_LINES, MAX_QUANTITY_PER_LINE
from refunds.models import Refund

MAX_ID = 2**63 - 1  # bigint primary keys
MONEY = {"max_digits": 12, "decimal_places": 2, "read_only": True}

# -- errors ------------------------------------------------------------------------------


# (field, DRF error code) -> the API's stable code for order input. The domain codes are the
# ones the service raises for the same mistake, so a client sees one code whichever caught it.
FIELD_CODES = {
    ("restaurant", "does_not_exist"): "unknown_restaurant",
    ("restaurant", "incorrect_type"): "wrong_type",
    ("items", "empty"): "empty_order",
    ("items", "max_length"): "too_many_lines",
    ("quantity", "min_value"): "invalid_quantity",
    ("quantity", "max_value"): "invalid_quantity",
    ("menu_item", "min_value"): "unknown_menu_item",
    ("menu_item", "max_value"): "unknown_menu_item",
    ("fulfillment", "invalid_choice"): "invalid_fulfillment",
}


# -- buyer: placing an order ---------------------------------------------------------------


class OrderLineInSerializer(serializers.Serializer):
    menu_item = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        error_messages={
            "min_value": "There is no such menu item (ids are positive).",
            "max_value": "There is no such menu item.",
        },
    )
    quantity = serializers.IntegerField(
        min_value=1,
        max_value=MAX_QUANTITY_PER_LINE,
        error_messages={
            "min_value": f"Quantity must be between 1 and {MAX_QUANTITY_PER_LINE}.",
            "max_value": f"Quantity must be between 1 and {MAX_QUANTITY_PER_LINE}.",
        },
    )


class OrderCreateSerializer(serializers.Serializer):
    """The body of `POST /api/orders/`. The service checks the rest (menu, opening hours,
    codes, credit) and refuses with a 400 that changes nothing."""

    restaurant = serializers.PrimaryKeyRelatedField(
        queryset=Restaurant.objects.all(),
        error_messages={"does_not_exist": "There is no restaurant {pk_value}."},
    )
    items = OrderLineInSerializer(
        many=True,
        allow_empty=False,
        max_length=MAX_LINES,
        error_messages={
            "empty": "An order needs at least one item.",
            "max_length": f"An order can have at most {MAX_LINES} lines.",
        },
    )
    fulfillment = serializers.ChoiceField(choices=Order.Fulfillment.choices)
    delivery_address = serializers.CharField(
        max_length=240, required=False, allow_blank=True, default=""
    )
    discount_code = serializers.CharField(
        max_length=32, required=False, allow_blank=True, default=""
    )
    use_credit = serializers.BooleanField(required=False, default=False)


# -- buyer: reading orders -----------------------------------------------------------------


class RestaurantRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Restaurant
        fields = ["id", "name", "slug"]
        read_only_fields = fields


class OrderListSerializer(serializers.ModelSerializer):
    restaurant = RestaurantRefSerializer(read_only=True)
    amount_paid = serializers.DecimalField(**MONEY)

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "fulfillment",
            "restaurant",
            "total",
            "amount_paid",
            "placed_at",
            "estimated_ready_at",
            "estimated_delivery_at",
        ]
        read_only_fields = fields


class OrderItemSerializer(serializers.ModelSerializer):
    line_total = serializers.DecimalField(**MONEY)

    class Meta:
        model = OrderItem
        fields = ["id", "menu_item", "name", "unit_price", "quantity", "line_total"]
        read_only_fields = fields


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "amount", "status", "created_at"]
        read_only_fields = fields


class RefundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Refund
        fields = [
            "id",
            "amount",
            "destination",
            "status",
            "reason",
            "clauses",
            "created_at",
            "succeeded_at",
            "expected_processed_by",
            "expected_in_bank_from",
            "expected_in_bank_by",
        ]
        read_only_fields = fields


class TimelineEventSerializer(serializers.ModelSerializer):
    at = serializers.DateTimeField(source="created_at", read_only=True)
    clauses = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = OrderEvent
        fields = [
            "at",
            "kind",
            "name",
            "from_status",
            "to_status",
            "actor_role",
            "message",
            "clauses",
            "amount",
        ]
        read_only_fields = fields


class OrderDetailSerializer(serializers.ModelSerializer):
    """Everything the buyer's order page shows: money (D-7), times, lines, payments,
    refunds and the timeline. Expects `orders.selectors.order_detail_for_buyer`."""

    restaurant = RestaurantRefSerializer(read_only=True)
    policy_version = serializers.CharField(source="policy_version.label", read_only=True)
    discount_code = serializers.CharField(
        source="discount_code.code", read_only=True, allow_null=True, default=None
    )
    amount_paid = serializers.DecimalField(**MONEY)
    items = OrderItemSerializer(many=True, read_only=True)
    payments = PaymentSerializer(many=True, read_only=True)
    refunds = RefundSerializer(many=True, read_only=True)
    timeline = TimelineEventSerializer(source="events", many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "fulfillment",
            "restaurant",
            "delivery_address",
            "policy_version",
            "discount_code",
            "subtotal",
            "delivery_fee",
            "discount_amount",
            "promo_credit_applied",
            "account_credit_applied",
            "amount_charged",
            "total",
            "amount_paid",
            "placed_at",
            "accepted_at",
            "preparation_started_at",
            "ready_at",
            "dispatched_at",
            "delivered_at",
            "picked_up_at",
            "served_at",
            "closed_at",
            "cancelled_at",
            "cancellation_requested_at",
            "reported_missing_at",
            "estimated_ready_at",
            "estimated_delivery_at",
            "delay_cause",
            "items",
            "payments",
            "refunds",
            "timeline",
        ]
        read_only_fields = fields


# -- seller --------------------------------------------------------------------------------


class SellerOrderItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderItem
        fields = ["id", "name", "quantity", "unit_price"]
        read_only_fields = fields


class SellerOrderSerializer(serializers.ModelSerializer):
    """An order as its restaurant sees it: what to cook and where it goes, never how it was
    paid (D-4). Expects `orders.selectors.order_list_for_partner`."""

    restaurant = RestaurantRefSerializer(read_only=True)
    buyer_first_name = serializers.CharField(source="buyer.first_name", read_only=True)
    delivery_address = serializers.SerializerMethodField()
    items = SellerOrderItemSerializer(many=True, read_only=True)
    next_actions = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "fulfillment",
            "restaurant",
            "buyer_first_name",
            "delivery_address",
            "items",
            "subtotal",
            "placed_at",
            "accepted_at",
            "preparation_started_at",
            "ready_at",
            "estimated_ready_at",
            "estimated_delivery_at",
            "delay_cause",
            "next_actions",
        ]
        read_only_fields = fields

    def get_delivery_address(self, order: Order) -> str:
        # D-4: a partner sees the buyer's address only while the order is on its way.
        return "" if order.status in Order.FINISHED_STATUSES else order.delivery_address

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_next_actions(self, order: Order) -> list[str]:
        """Hyphenated, as in the action URLs: `start-preparation`, `mark-ready`..."""
        return [action.replace("_", "-") for action in order_next_actions(order)]
