"""The orders API (D-10): thin views over `orders.services` and `orders.selectors`.

A buyer sees only their own orders (another buyer's is a 404); a partner sees only the orders
of their restaurants (another restaurant's is a 404; a user who is no partner gets a 403).
"""

import uuid

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import (
    ApiErrorSerializer,
    invalid_input_from,
)
from core.errors import DomainError
from core.idempotency import HEADER as IDEMPOTENCY_HEADER
from core.idempotency import idempotency_key_generation, idempotent, request_fingerprint
from core.parsers import SafeJSONParser
from orders.api import examples
from orders.api.serializers import (
    CANCEL_FIELD_CODES,
    DELAY_FIELD_CODES,
    FIELD_CODES,
    CancellationRefusalSerializer,
    OrderCancelSerializer,
    OrderCreateSerializer,
    OrderDetailSerializer,
    OrderListSerializer,
    SellerCancellationDenySerializer,
    SellerCancellationRequestSerializer,
    SellerOrderCancelSerializer,
    SellerOrderDelaySerializer,
    SellerOrderSerializer,
)
from orders.models import Order
from orders.selectors import (
    order_cancellation_requests_for_partner,
    order_detail_for_buyer,
    order_list_for_buyer,
    order_list_for_partner,
)
from orders.services.cancellation import (
    order_cancel_by_buyer,
    order_cancel_by_restaurant,
    order_cancellation_approve,
    order_cancellation_deny,
)
from orders.services.delays import order_set_delay_cause
from orders.services.lifecycle import order_advance
from orders.services.missing import order_missing_locate, order_report_missing
from orders.services.placement import LineRequest, order_checkout_charge, order_place


def _buyer_order(user, order_id: int) -> Order:
    try:
        return order_detail_for_buyer(user, order_id)
    except Order.DoesNotExist as error:
        raise _no_buyer_order(order_id) from error


def _no_buyer_order(order_id: int) -> DomainError:
    # The same answer whether the order is someone else's or does not exist (D-4).
    return DomainError("not_found", f"You have no order {order_id}.", kind="not_found")


# -- buyer -------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        responses={200: OrderListSerializer(many=True)},
        summary="The buyer's orders, newest first",
    )
)
class OrderListCreateApi(generics.ListAPIView):
    """`GET` the buyer's own orders, newest first; `POST` places an order."""

    serializer_class = OrderListSerializer
    parser_classes = [SafeJSONParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Order.objects.none()
        return order_list_for_buyer(self.request.user)

    @extend_schema(
        request=OrderCreateSerializer,
        # 403: a suspended buyer (`account_suspended`, L-8.2); 503 also when the card
        # processor's answer was lost (`payment_unconfirmed`): retry with the same key.
        responses={201: OrderDetailSerializer},
        summary="Place and pay for an order",
        examples=examples.PLACE_ORDER,
    )
    @idempotent
    def post(self, request):
        order = order_place(checkout=request.idempotent_prepared)
        return Response(_order_detail(request.user, order.pk), status=status.HTTP_201_CREATED)

    def prepare_idempotent(self, request):
        """Validate, price and charge before the request's transaction (D-7). The charge's key
        is the buyer's `Idempotency-Key` (a fresh one when the request has none) with the body's
        fingerprint: a retry charges once, and a different body sent under the same key while
        the first runs charges apart (whichever does not commit is voided as an orphan)."""
        serializer = OrderCreateSerializer(data=request.data)
        if not serializer.is_valid():
            raise invalid_input_from(serializer.errors, FIELD_CODES)
        data = serializer.validated_data
        key = request.headers.get(IDEMPOTENCY_HEADER) or str(uuid.uuid4())
        return order_checkout_charge(
            buyer=request.user,
            restaurant=data["restaurant"],
            lines=[LineRequest(line["menu_item"], line["quantity"]) for line in data["items"]],
            fulfillment=data["fulfillment"],
            delivery_address=data["delivery_address"],
            discount_code=data["discount_code"],
            use_credit=data["use_credit"],
            checkout_key=":".join(
                [
                    f"checkout:{request.user.pk}:{key}",
                    request_fingerprint(request)[:16],
                    # Keys live 24 hours (D-10): a key reused after it expired is a new checkout.
                    idempotency_key_generation(user=request.user, key=key),
                ]
            ),
        )


class OrderDetailApi(APIView):
    """One of the buyer's own orders with its money, lines, payments, refunds and timeline."""

    @extend_schema(
        responses={200: OrderDetailSerializer},
        summary="One of the buyer's orders, with its timeline",
    )
    def get(self, request, pk: int):
        return Response(_order_detail(request.user, pk))


class OrderCancelApi(APIView):
    """`POST /api/orders/{id}/cancel/`: the buyer cancels (L-2.1): at once and free before the
    restaurant accepts, or as a request the restaurant answers while its window is open.

    Send the `quote` (the fee you showed) to make the fee binding: if the terms changed since,
    nothing happens and the 409 `quote_changed` carries the new `cancellation`. A refusal is a
    409 with its `code`, `detail` and `clauses`.
    """

    @extend_schema(
        request=OrderCancelSerializer,
        responses={
            200: OrderDetailSerializer,
            409: CancellationRefusalSerializer,
            **{code: ApiErrorSerializer for code in (400, 401, 404, 422)},
        },
        summary="Cancel an order, or ask the restaurant to",
        examples=examples.CANCEL_ORDER,
    )
    @idempotent
    def post(self, request, pk: int):
        if not order_list_for_buyer(request.user).filter(pk=pk).exists():
            raise _no_buyer_order(pk)
        serializer = OrderCancelSerializer(data=request.data)
        if not serializer.is_valid():
            raise invalid_input_from(serializer.errors, CANCEL_FIELD_CODES)
        order_cancel_by_buyer(
            order_id=pk, actor=request.user, quote=serializer.validated_data["quote"]
        )
        return Response(_order_detail(request.user, pk))


class OrderReportMissingApi(APIView):
    """`POST /api/orders/{id}/report-missing/`: the delivery never came (L-6.2). Out for
    delivery, or delivered within the L-5.1 window; the restaurant then searches, and an order
    not located within the policy's `locate_minutes` is refunded in full. A refusal is a 409
    (`not_a_delivery`, `not_out_for_delivery`, `report_window_passed`) with its clauses."""

    @extend_schema(
        request=None,
        responses={200: OrderDetailSerializer},
        summary="Report a delivery that never came",
    )
    @idempotent
    def post(self, request, pk: int):
        if not order_list_for_buyer(request.user).filter(pk=pk).exists():
            raise _no_buyer_order(pk)
        order_report_missing(order_id=pk, actor=request.user)
        return Response(_order_detail(request.user, pk))


def _order_detail(user, order_id: int) -> dict:
    order = _buyer_order(user, order_id)
    return OrderDetailSerializer(order, context={"now": timezone.now()}).data


# -- seller ------------------------------------------------------------------------------


class IsRestaurantPartner(BasePermission):
    message = "Only restaurant partners may use the seller API."
    code = "not_a_partner"

    def has_permission(self, request, view):
        return request.user.restaurants.exists()


@extend_schema_view(
    get=extend_schema(
        responses={200: SellerOrderSerializer(many=True)},
        summary="Orders of the partner's restaurants",
    )
)
class SellerOrderListApi(generics.ListAPIView):
    """Orders of the partner's restaurants, newest first, each with the actions it allows."""

    permission_classes = [IsAuthenticated, IsRestaurantPartner]
    serializer_class = SellerOrderSerializer
    filterset_fields = ["status", "fulfillment"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Order.objects.none()
        return order_list_for_partner(self.request.user).order_by("-placed_at", "-pk")


class SellerOrderActionApi(APIView):
    """`POST /api/seller/orders/{id}/{action}/`: one step along the order's lifecycle (D-5).
    An action the order's state does not allow is a 409 `transition_not_allowed`."""

    permission_classes = [IsAuthenticated, IsRestaurantPartner]

    @extend_schema(
        request=None,
        responses={200: SellerOrderSerializer},
        summary="Take the order one step along its lifecycle",
        examples=examples.SELLER_ACTION,
    )
    @idempotent
    def post(self, request, pk: int, action: str):
        _check_partner_order(request.user, pk)
        order_advance(order_id=pk, action=action, actor=request.user)
        return Response(_seller_order(request.user, pk))


class SellerOrderCancelApi(APIView):
    """`POST /api/seller/orders/{id}/cancel/`: the restaurant cancels (L-2.2, K-S1..3) with a
    `reason` code and an `explanation` the buyer reads at once; the buyer gets everything
    back and a goodwill credit. A finished order is a 409 `not_cancellable`; a reason not in
    the list or a missing explanation a 400 (`invalid_reason`, `explanation_required`)."""

    permission_classes = [IsAuthenticated, IsRestaurantPartner]

    @extend_schema(
        request=SellerOrderCancelSerializer,
        responses={200: SellerOrderSerializer},
        summary="Cancel an order as its restaurant",
        examples=examples.SELLER_CANCEL,
    )
    @idempotent
    def post(self, request, pk: int):
        _check_partner_order(request.user, pk)
        serializer = SellerOrderCancelSerializer(data=request.data)
        if not serializer.is_valid():
            raise invalid_input_from(serializer.errors, CANCEL_FIELD_CODES)
        order_cancel_by_restaurant(order_id=pk, actor=request.user, **serializer.validated_data)
        return Response(_seller_order(request.user, pk))


class SellerOrderLocateApi(APIView):
    """`POST /api/seller/orders/{id}/locate/`: a missing order was found and delivered (L-6.2);
    the case closes and no refund follows. An order that is not missing is a 409
    `not_missing`."""

    permission_classes = [IsAuthenticated, IsRestaurantPartner]

    @extend_schema(
        request=None,
        responses={200: SellerOrderSerializer},
        summary="Mark a missing order located and delivered",
    )
    @idempotent
    def post(self, request, pk: int):
        _check_partner_order(request.user, pk)
        order_missing_locate(order_id=pk, actor=request.user)
        return Response(_seller_order(request.user, pk))


class SellerOrderDelayApi(APIView):
    """`POST /api/seller/orders/{id}/delay/`: the restaurant says why a delivery is late
    (`delay_cause`, L-3.3); the buyer sees it on the order. A cause not in the list is a 400
    `invalid_delay_cause`; a pickup or dine-in order a 409 `not_a_delivery`; an order that has
    ended a 409 `order_not_open`."""

    permission_classes = [IsAuthenticated, IsRestaurantPartner]

    @extend_schema(
        request=SellerOrderDelaySerializer,
        responses={200: SellerOrderSerializer},
        summary="Set why a delivery is late",
        examples=examples.SELLER_DELAY,
    )
    @idempotent
    def post(self, request, pk: int):
        _check_partner_order(request.user, pk)
        serializer = SellerOrderDelaySerializer(data=request.data)
        if not serializer.is_valid():
            raise invalid_input_from(serializer.errors, DELAY_FIELD_CODES)
        order_set_delay_cause(order_id=pk, actor=request.user, **serializer.validated_data)
        return Response(_seller_order(request.user, pk))


@extend_schema_view(
    get=extend_schema(
        responses={200: SellerCancellationRequestSerializer(many=True)},
        summary="Buyers' cancellation requests waiting for an answer",
    )
)
class SellerCancellationRequestListApi(generics.ListAPIView):
    """Buyers' cancellation requests waiting for the partner's restaurants, the oldest first:
    the fee the restaurant keeps if it approves, what the buyer gets back, and when support
    decides instead (K-OV)."""

    permission_classes = [IsAuthenticated, IsRestaurantPartner]
    serializer_class = SellerCancellationRequestSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Order.objects.none()
        return order_cancellation_requests_for_partner(self.request.user)


class SellerCancellationRequestApproveApi(APIView):
    """`POST /api/seller/cancellation-requests/{order_id}/approve/`: the buyer gets what was
    paid back less the quoted fee, which the restaurant keeps (L-2.1). An order with no
    request waiting is a 409 `no_cancellation_request`."""

    permission_classes = [IsAuthenticated, IsRestaurantPartner]

    @extend_schema(
        request=None,
        responses={200: SellerOrderSerializer},
        summary="Approve a buyer's cancellation request",
    )
    @idempotent
    def post(self, request, order_id: int):
        _check_partner_order(request.user, order_id)
        order_cancellation_approve(order_id=order_id, actor=request.user)
        return Response(_seller_order(request.user, order_id))


class SellerCancellationRequestDenyApi(APIView):
    """`POST /api/seller/cancellation-requests/{order_id}/deny/`: the order goes on; the
    optional `reason` is told to the buyer. An order with no request waiting is a 409
    `no_cancellation_request`."""

    permission_classes = [IsAuthenticated, IsRestaurantPartner]

    @extend_schema(
        request=SellerCancellationDenySerializer,
        responses={200: SellerOrderSerializer},
        summary="Deny a buyer's cancellation request",
        examples=examples.SELLER_DENY,
    )
    @idempotent
    def post(self, request, order_id: int):
        _check_partner_order(request.user, order_id)
        serializer = SellerCancellationDenySerializer(data=request.data)
        if not serializer.is_valid():
            raise invalid_input_from(serializer.errors)
        order_cancellation_deny(
            order_id=order_id, actor=request.user, reason=serializer.validated_data["reason"]
        )
        return Response(_seller_order(request.user, order_id))


def _check_partner_order(user, order_id: int) -> None:
    """Another restaurant's order is a 404, the same as one that does not exist (D-4)."""
    if not order_list_for_partner(user).filter(pk=order_id).exists():
        raise DomainError(
            "not_found", f"Your restaurants have no order {order_id}.", kind="not_found"
        )


def _seller_order(user, order_id: int) -> dict:
    return SellerOrderSerializer(order_list_for_partner(user).get(pk=order_id)).data
