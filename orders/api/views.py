"""The orders API (D-10): thin views over `orders.services` and `orders.selectors`.

A buyer sees only their own orders (another buyer's is a 404); a partner sees only the orders
of their restaurants (another restaurant's is a 404; a user who is no partner gets a 403).
"""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ApiErrorSerializer, invalid_input_from
from core.errors import DomainError
from core.idempotency import idempotent
from orders.api.serializers import (
    FIELD_CODES,
    OrderCreateSerializer,
    OrderDetailSerializer,
    OrderListSerializer,
    SellerOrderSerializer,
)
from orders.models import Order
from orders.selectors import order_detail_for_buyer, order_list_for_buyer, order_list_for_partner
from orders.services import LineRequest, order_advance, order_place

ERRORS = {code: ApiErrorSerializer for code in (400, 401, 404, 409, 422)}
SELLER_ERRORS = {code: ApiErrorSerializer for code in (400, 401, 403, 404, 409, 422)}


def _buyer_order(user, order_id: int) -> Order:
    try:
        return order_detail_for_buyer(user, order_id)
    except Order.DoesNotExist as error:
        # The same answer whether the order is someone else's or does not exist (D-4).
        raise DomainError(
            "not_found", f"You have no order {order_id}.", kind="not_found"
        ) from error


# -- buyer -------------------------------------------------------------------------------


class OrderListCreateApi(generics.ListAPIView):
    """`GET` the buyer's own orders, newest first; `POST` places an order."""

    serializer_class = OrderListSerializer
    parser_classes = [JSONParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Order.objects.none()
        return order_list_for_buyer(self.request.user)

    @extend_schema(
        request=OrderCreateSerializer,
        responses={201: OrderDetailSerializer, **ERRORS},
        summary="Place and pay for an order",
    )
    @idempotent
    def post(self, request):
        serializer = OrderCreateSerializer(data=request.data)
        if not serializer.is_valid():
            raise invalid_input_from(serializer.errors, FIELD_CODES)
        data = serializer.validated_data
        order = order_place(
            buyer=request.user,
            restaurant=data["restaurant"],
            lines=[LineRequest(line["menu_item"], line["quantity"]) for line in data["items"]],
            fulfillment=data["fulfillment"],
            delivery_address=data["delivery_address"],
            discount_code=data["discount_code"],
            use_credit=data["use_credit"],
        )
        body = OrderDetailSerializer(_buyer_order(request.user, order.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)


class OrderDetailApi(APIView):
    """One of the buyer's own orders with its money, lines, payments, refunds and timeline."""

    @extend_schema(
        responses={200: OrderDetailSerializer, 401: ApiErrorSerializer, 404: ApiErrorSerializer}
    )
    def get(self, request, pk: int):
        return Response(OrderDetailSerializer(_buyer_order(request.user, pk)).data)


# -- seller ------------------------------------------------------------------------------


class IsRestaurantPartner(BasePermission):
    message = "Only restaurant partners may use the seller API."
    code = "not_a_partner"

    def has_permission(self, request, view):
        return request.user.restaurants.exists()


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

    @extend_schema(request=None, responses={200: SellerOrderSerializer, **SELLER_ERRORS})
    @idempotent
    def post(self, request, pk: int, action: str):
        if not order_list_for_partner(request.user).filter(pk=pk).exists():
            raise DomainError(
                "not_found", f"Your restaurants have no order {pk}.", kind="not_found"
            )
        order_advance(order_id=pk, action=action, actor=request.user)
        order = order_list_for_partner(request.user).get(pk=pk)
        return Response(SellerOrderSerializer(order).data)
