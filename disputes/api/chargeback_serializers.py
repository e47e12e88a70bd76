"""Serializers of the disputes API (D-10): money as strings with two decimals."""

from rest_framework import serializers

from core.api import MAX_DB_ID, BoundedDateTimeField, StrictIntegerField
from core.serializers import ModelSerializer
from disputes.models import Chargeback, Suspension


def _amount(**kwargs):
    return serializers.DecimalField(max_digits=12, decimal_places=2, **kwargs)


class ChargebackCreateSerializer(serializers.Serializer):
    order = StrictIntegerField(min_value=1, max_value=MAX_DB_ID)
    amount = _amount()
    bank_reference = serializers.CharField(max_length=80)
    reason_code = serializers.CharField(max_length=40)
    evidence_due_by = BoundedDateTimeField(required=False, allow_null=True, default=None)


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


class SuspendSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    suspected_fraud = serializers.BooleanField(required=False, default=False)
    chargeback = StrictIntegerField(
        min_value=1, max_value=MAX_DB_ID, required=False, allow_null=True, default=None
    )


class ChargebackSerializer(ModelSerializer):
    amount = _amount(read_only=True)
    amount_at_stake = _amount(read_only=True)
    charge_reference = serializers.CharField(source="payment.gateway_reference", read_only=True)
    # None: opened by the processor's webhook, no evidence yet, not decided yet.
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    evidence_submitted_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    decided_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    evidence_pdf = serializers.SerializerMethodField()
    evidence_json = serializers.SerializerMethodField()

    class Meta:
        model = Chargeback
        fields = [
            "id",
            "order",
            "charge_reference",
            "amount",
            "amount_at_stake",
            "bank_reference",
            "reason_code",
            "evidence_due_by",
            "status",
            "source",
            "received_at",
            "created_by",
            "evidence_submitted_at",
            "evidence_submitted_by",
            "decided_at",
            "decided_by",
            "note",
            "settled_at",
            "settlement_reference",
            "evidence_pdf",
            "evidence_json",
        ]
        read_only_fields = fields

    def get_evidence_pdf(self, chargeback: Chargeback) -> str:
        return f"/api/support/chargebacks/{chargeback.pk}/evidence.pdf"

    def get_evidence_json(self, chargeback: Chargeback) -> str:
        return f"/api/support/chargebacks/{chargeback.pk}/evidence.json"


class SuspensionSerializer(ModelSerializer):
    buyer = serializers.SlugRelatedField(slug_field="username", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    lifted_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = Suspension
        fields = [
            "id",
            "buyer",
            "reason",
            "chargeback",
            "suspected_fraud",
            "created_by",
            "created_at",
            "lifted_by",
            "lifted_at",
            "active",
        ]
        read_only_fields = fields


class WebhookReceiptSerializer(serializers.Serializer):
    event = serializers.CharField()
    type = serializers.CharField()
    handled = serializers.BooleanField()
    chargeback = serializers.IntegerField(allow_null=True)
