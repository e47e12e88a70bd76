"""What the credits API shows (D-10). Money fields are strings with two decimals."""

from rest_framework import serializers

from core.serializers import ModelSerializer
from credits.models import CreditGrant

MONEY = {"max_digits": 12, "decimal_places": 2, "read_only": True}


class CreditGrantSerializer(ModelSerializer):
    class Meta:
        model = CreditGrant
        fields = [
            "id",
            "kind",
            "amount",
            "remaining",
            "expires_at",
            "source",
            "reason",
            "created_at",
        ]
        read_only_fields = fields


class CreditBalanceSerializer(serializers.Serializer):
    """Usable credit: unexpired promotional credit, account credit, and both together."""

    promo = serializers.DecimalField(**MONEY)
    account = serializers.DecimalField(**MONEY)
    total = serializers.DecimalField(**MONEY)

    def to_representation(self, instance: dict) -> dict:
        return super().to_representation(
            {**instance, "total": instance["promo"] + instance["account"]}
        )
