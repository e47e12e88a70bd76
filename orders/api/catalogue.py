"""The catalogue API (D-10): restaurants and their menus, what a mobile client shows before
anyone orders.

Browsing needs no account, as on any marketplace: both endpoints answer anonymous callers as
well as signed-in ones, read-only (GET only). They show nothing personal: a restaurant's public
terms and its menu, the same for everyone. Placing an order needs a token (`POST /api/orders/`).
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.permissions import AllowAny

from core.api import ApiErrorSerializer
from core.errors import DomainError
from orders.api.catalogue_serializers import MenuItemSerializer, RestaurantCatalogueSerializer
from orders.models import MenuItem
from orders.selectors import menu_for_restaurant, restaurant_catalogue, restaurant_find


class RestaurantListApi(generics.ListAPIView):
    """`GET /api/restaurants/`: every restaurant, open ones first then by name, paginated like
    the other lists (`count`, `next`, `previous`, `results`). Open to anyone, signed in or not."""

    permission_classes = [AllowAny]
    serializer_class = RestaurantCatalogueSerializer

    def get_queryset(self):
        return restaurant_catalogue(timezone.now())

    @extend_schema(
        auth=[],  # anyone may browse; a token is optional
        responses={200: RestaurantCatalogueSerializer(many=True)},
        summary="List restaurants, open ones first",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RestaurantMenuApi(generics.ListAPIView):
    """`GET /api/restaurants/{id}/menu/`: the restaurant's dishes, available ones first then by
    name, paginated. Open to anyone; an unknown restaurant is a 404 `not_found`."""

    permission_classes = [AllowAny]
    serializer_class = MenuItemSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no URL kwargs
            return MenuItem.objects.none()
        restaurant_id = self.kwargs["pk"]
        if restaurant_find(restaurant_id) is None:
            raise DomainError(
                "not_found", f"There is no restaurant {restaurant_id}.", kind="not_found"
            )
        return menu_for_restaurant(restaurant_id, today=timezone.localdate())

    @extend_schema(
        auth=[],  # anyone may browse; a token is optional
        responses={
            200: MenuItemSerializer(many=True),
            404: ApiErrorSerializer,
        },
        summary="A restaurant's menu",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
