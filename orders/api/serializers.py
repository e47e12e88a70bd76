"""What the orders API reads and writes (D-10). Money fields are strings with two decimals."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import (
    MAX_DB_ID,
    ApiErrorSerializer,
    StrictIntegerField,
    StrictPrimaryKeyRelatedField,
)
from core.serializers import ModelSerializer
from orders.models import Order, OrderEvent, OrderItem, Payment, Restaurant
from orders.policy import MAX_EXPLANATION_LENGTH, RestaurantCancelReason
from orders.selectors import (
    buyer_cancellation_decision,
    cancellation_summary,
    order_cancellation_request_refund,
    order_cancellation_support_decides_at,
    order_next_actions,
)
from orders.services.placement import MAX_LINES, MAX_QUANTITY_PER_LINE
from refunds.models import Refund

MAX_ID = MAX_DB_ID
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
    menu_item = StrictIntegerField(
        min_value=1,
        max_value=MAX_ID,
        error_messages={
            "min_value": "There is no such menu item (ids are positive).",
            "max_value": "There is no such menu item.",
        },
    )
    quantity = StrictIntegerField(
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

    restaurant = StrictPrimaryKeyRelatedField(
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


class RestaurantRefSerializer(ModelSerializer):
    class Meta:
        model = Restaurant
        fields = ["id", "name", "slug"]
        read_only_fields = fields


class OrderListSerializer(ModelSerializer):
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


class OrderItemSerializer(ModelSerializer):
    line_total = serializers.DecimalField(**MONEY)

    class Meta:
        model = OrderItem
        fields = ["id", "menu_item", "name", "unit_price", "quantity", "line_total"]
        read_only_fields = fields


class PaymentSerializer(ModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "amount", "status", "created_at"]
        read_only_fields = fields


class RefundSerializer(ModelSerializer):
    clauses = serializers.ListField(child=serializers.CharField(), read_only=True)

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


class TimelineEventSerializer(ModelSerializer):
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


class CancellationSerializer(serializers.Serializer):
    """What cancelling would do now (`orders.services.cancellation_summary`): the buyer sees it
    before confirming, and a 409 `quote_changed` carries the new one."""

    allowed = serializers.BooleanField(read_only=True)
    requires_restaurant_approval = serializers.BooleanField(read_only=True)
    fee = serializers.DecimalField(**MONEY, help_text="What the restaurant keeps.")
    refund_amount = serializers.DecimalField(**MONEY, help_text="What comes back to the buyer.")
    clauses = serializers.ListField(child=serializers.CharField(), read_only=True)
    code = serializers.CharField(read_only=True)
    detail = serializers.CharField(read_only=True)
    window_ends_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="The end of the restaurant's window (K-B1)."
    )


class OrderDetailSerializer(ModelSerializer):
    """Everything the buyer's order page shows: money (D-7), times, lines, payments,
    refunds, the timeline and what cancelling would do now. Expects
    `orders.selectors.order_detail_for_buyer`; `context["now"]` is the moment of the
    cancellation preview (default: the clock)."""

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
    cancellation = serializers.SerializerMethodField()

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
            *Order.MONEY_FIELDS,
            "amount_paid",
            *Order.TIME_FIELDS,
            "delay_cause",
            "items",
            "payments",
            "refunds",
            "timeline",
            "cancellation",
        ]
        read_only_fields = fields

    @extend_schema_field(CancellationSerializer)
    def get_cancellation(self, order: Order) -> dict:
        now = self.context.get("now") or timezone.now()
        return cancellation_summary(buyer_cancellation_decision(order, now=now))


# -- seller --------------------------------------------------------------------------------


class SellerOrderItemSerializer(ModelSerializer):
    class Meta:
        model = OrderItem
        fields = ["id", "name", "quantity", "unit_price"]
        read_only_fields = fields


class SellerOrderSerializer(ModelSerializer):
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


# -- cancellation (D-6, D-10) ----------------------------------------------------------------


class OrderCancelSerializer(serializers.Serializer):
    """The body of `POST /api/orders/{id}/cancel/`, optional: `quote` is the fee the client
    showed; if the terms changed since, nothing happens and the 409 carries the new ones."""

    quote = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
        default=None,
        help_text="The fee shown to the buyer, e.g. `3.75`.",
    )


class CancellationRefusalSerializer(ApiErrorSerializer):
    """A refused cancellation; `quote_changed` also carries the terms that now apply."""

    cancellation = CancellationSerializer(
        required=False, help_text="With `quote_changed`: what cancelling would do now."
    )


# (field, DRF error code) -> the API's stable code for a cancellation's input.
CANCEL_FIELD_CODES = {
    ("quote", code): "invalid_quote"
    for code in ("invalid", "min_value", "max_digits", "max_decimal_places", "max_whole_digits")
} | {("reason", "invalid_choice"): "invalid_reason"}


class SellerOrderCancelSerializer(serializers.Serializer):
    """The body of `POST /api/seller/orders/{id}/cancel/`: a reason of L-2.2 and the
    explanation the buyer reads at once (K-S2); the service judges the explanation."""

    reason = serializers.ChoiceField(choices=list(RestaurantCancelReason.LABELS.items()))
    explanation = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default=""
    )


class SellerOrderDelaySerializer(serializers.Serializer):
    """The body of `POST /api/seller/orders/{id}/delay/`: why the delivery is late (L-3.3)."""

    delay_cause = serializers.ChoiceField(choices=Order.DelayCause.choices)


DELAY_FIELD_CODES = {("delay_cause", "invalid_choice"): "invalid_delay_cause"}


class SellerCancellationDenySerializer(serializers.Serializer):
    # Blank reaches the service, which refuses it with `reason_required`.
    reason = serializers.CharField(
        max_length=MAX_EXPLANATION_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="Why the request is denied, told to the buyer (required).",
    )


class SellerCancellationRequestSerializer(SellerOrderSerializer):
    """A buyer's cancellation request waiting for the restaurant: the fee it keeps if it
    approves, what the buyer gets back, and when support decides instead (K-OV). Expects
    `orders.selectors.order_cancellation_requests_for_partner`."""

    fee_kept = serializers.DecimalField(source="cancellation_fee", **MONEY)
    refund_amount = serializers.SerializerMethodField()
    support_decides_at = serializers.SerializerMethodField()

    class Meta(SellerOrderSerializer.Meta):
        fields = [
            *SellerOrderSerializer.Meta.fields,
            "cancellation_requested_at",
            "fee_kept",
            "refund_amount",
            "support_decides_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DecimalField(**MONEY))
    def get_refund_amount(self, order: Order) -> str:
        return f"{order_cancellation_request_refund(order):.2f}"

    @extend_schema_field(serializers.DateTimeField(read_only=True))
    def get_support_decides_at(self, order: Order):
        return serializers.DateTimeField().to_representation(
            order_cancellation_support_decides_at(order)
        )
