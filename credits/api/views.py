"""The credits API (D-10): the buyer's wallet, through `credits.selectors`."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.pagination import PageNumberPagination

from credits.api.serializers import CreditBalanceSerializer, CreditGrantSerializer
from credits.models import CreditGrant
from credits.selectors import credit_balance, credit_grant_list_for_buyer

_MONEY_SCHEMA = {"type": "string", "format": "decimal", "pattern": r"^-?\d{0,10}(?:\.\d{0,2})?$"}


class CreditWalletPagination(PageNumberPagination):
    """A page of grants with the wallet's balance on top (`balance` is set by the view)."""

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"] = {
            "balance": {
                "type": "object",
                "properties": {name: _MONEY_SCHEMA for name in ("promo", "account", "total")},
                "required": ["promo", "account", "total"],
            },
            **paginated["properties"],
        }
        paginated["required"] = ["balance", *paginated.get("required", [])]
        return paginated


@extend_schema_view(
    get=extend_schema(
        responses={200: CreditGrantSerializer(many=True)},
        summary="The buyer's credit wallet: grants and balance",
    )
)
class CreditWalletApi(generics.ListAPIView):
    """The buyer's credit grants, soonest-expiring first, with the usable balance."""

    serializer_class = CreditGrantSerializer
    pagination_class = CreditWalletPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return CreditGrant.objects.none()
        return credit_grant_list_for_buyer(self.request.user)

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        balance = credit_balance(self.request.user, now=timezone.now())
        response.data = {"balance": CreditBalanceSerializer(balance).data, **response.data}
        return response
