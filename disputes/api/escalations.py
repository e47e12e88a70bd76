"""The escalation API (D-10, L-8.1, K-DR): thin views over `disputes.services.escalations`.

A buyer escalates and reads their own escalations (another buyer's request or escalation is a
404); supervisors list the queue by due date and decide (anyone else gets a 403). Refusals are
the services' own: 409 for the state or the policy (with the clause), 400 for bad input."""

from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import (
    UPLOAD_PARSERS,
    json_or_multipart,
    validated,
)
from core.errors import DomainError
from core.idempotency import idempotent
from core.roles import is_supervisor
from core.serializers import ModelSerializer
from disputes.api import examples
from disputes.models import Escalation, EscalationEvidence
from disputes.selectors import (
    escalation_detail_queryset,
    escalation_list_for_buyer,
    escalation_queue,
    escalation_refunds,
)
from disputes.services.escalations import (
    escalation_decide,
    escalation_open,
    escalation_open_for_order,
    escalation_take,
)
from orders.api.serializers import MONEY, RefundSerializer
from refunds.api.serializers import FIELD_CODES, MAX_TEXT, PhotoField

ESCALATION_CODES = FIELD_CODES | {
    ("outcome", "invalid_choice"): "invalid_outcome",
    ("subject", "invalid_choice"): "invalid_subject",
}


# K-DR: what a buyer may contest on an order (named CancellationDisputeSubjectEnum).
ORDER_SUBJECTS = [
    (Escalation.Subject.CANCELLATION_DENIED.value, Escalation.Subject.CANCELLATION_DENIED.label),
    (Escalation.Subject.CANCELLATION_FEE.value, Escalation.Subject.CANCELLATION_FEE.label),
]
OUTCOMES = [("upheld", "Upheld"), ("overturned", "Overturned")]

# -- input -------------------------------------------------------------------------------------


class EscalateSerializer(serializers.Serializer):
    statement = serializers.CharField(max_length=MAX_TEXT, allow_blank=True)
    photos = serializers.ListField(
        child=PhotoField(),
        required=False,
        default=list,
        help_text="Multipart only: JPEG, PNG, WebP or GIF, at most 5.",
    )


class EscalateOrderSerializer(EscalateSerializer):
    subject = serializers.ChoiceField(choices=ORDER_SUBJECTS)


class DecideSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=OUTCOMES)
    explanation = serializers.CharField(max_length=MAX_TEXT, allow_blank=True)
    amount = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        required=False,
        allow_null=True,
        default=None,
        help_text="Overturn: the new total refund; default everything still refundable.",
    )


# -- output ------------------------------------------------------------------------------------


class EscalationEvidenceSerializer(ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = EscalationEvidence
        fields = ["id", "url", "content_type", "size", "width", "height", "created_at"]
        read_only_fields = fields

    def get_url(self, evidence: EscalationEvidence) -> str:
        return f"/disputes/evidence/{evidence.pk}/"


class EscalationDecisionSerializer(serializers.Serializer):
    """The supervisor's decision, final (L-8.1)."""

    outcome = serializers.CharField(source="status", read_only=True)
    amount = serializers.DecimalField(allow_null=True, **MONEY)
    explanation = serializers.CharField(read_only=True)
    decided_at = serializers.DateTimeField(read_only=True)
    final = serializers.SerializerMethodField()

    def get_final(self, escalation: Escalation) -> bool:
        return True


class EscalationSerializer(ModelSerializer):
    """An escalation: what is contested, the statement and photos, the due date, and once
    decided the final decision; `previous_amount` is what the contested decision gave back."""

    previous_amount = serializers.DecimalField(**MONEY)
    evidence = EscalationEvidenceSerializer(many=True, read_only=True)
    decision = serializers.SerializerMethodField()

    class Meta:
        model = Escalation
        fields = [
            "id",
            "subject",
            "order",
            "refund_request",
            "status",
            "statement",
            "opened_at",
            "due_at",
            "previous_amount",
            "evidence",
            "decision",
        ]
        read_only_fields = fields

    @extend_schema_field(EscalationDecisionSerializer(allow_null=True))
    def get_decision(self, escalation: Escalation) -> dict | None:
        """`null` until a supervisor decides."""
        return EscalationDecisionSerializer(escalation).data if escalation.is_final else None


class EscalationDetailSerializer(EscalationSerializer):
    refunds = serializers.SerializerMethodField()

    class Meta(EscalationSerializer.Meta):
        fields = [*EscalationSerializer.Meta.fields, "refunds"]
        read_only_fields = fields

    @extend_schema_field(RefundSerializer(many=True))
    def get_refunds(self, escalation: Escalation) -> list:
        """The money an overturn moved, with its expected dates (L-4.2)."""
        return RefundSerializer(escalation_refunds(escalation), many=True).data


class SupportEscalationSerializer(EscalationSerializer):
    buyer = serializers.CharField(source="buyer.username", read_only=True)
    due_soon_at = serializers.DateTimeField(read_only=True)

    class Meta(EscalationSerializer.Meta):
        fields = [*EscalationSerializer.Meta.fields, "buyer", "due_soon_at"]
        read_only_fields = fields


def _detail(escalation_id: int) -> dict:
    return EscalationDetailSerializer(escalation_detail_queryset().get(pk=escalation_id)).data


# -- buyer -------------------------------------------------------------------------------------


class RefundRequestEscalateApi(APIView):
    """`POST /api/refund-requests/{id}/escalate/`: ask a supervisor to review a denied or
    partially approved request, once, with a `statement` and `photos` (L-8.1). A supervisor
    decides by `due_at` (5 business days). An approved request, a second escalation or one
    still waiting for a second approval is a 409 with clause L-8.1; another buyer's is a 404."""

    parser_classes = UPLOAD_PARSERS

    @extend_schema(
        request=json_or_multipart(EscalateSerializer),
        # 403: a suspended buyer (`account_suspended`, L-8.2).
        responses={201: EscalationDetailSerializer},
        summary="Escalate a refund decision to a supervisor",
        examples=examples.ESCALATE,
    )
    @idempotent
    def post(self, request, pk: int):
        data = validated(EscalateSerializer, request.data, ESCALATION_CODES)
        escalation = escalation_open(
            request_id=pk, actor=request.user, statement=data["statement"], photos=data["photos"]
        )
        return Response(_detail(escalation.pk), status=status.HTTP_201_CREATED)


class OrderEscalateApi(APIView):
    """`POST /api/orders/{id}/escalate/` (K-DR): contest the restaurant's denial of the
    buyer's cancellation request (`subject` `cancellation_denied`) or the fee it kept
    (`cancellation_fee`), once each, like a refund decision."""

    parser_classes = UPLOAD_PARSERS

    @extend_schema(
        request=json_or_multipart(EscalateOrderSerializer),
        responses={201: EscalationDetailSerializer},
        summary="Contest the restaurant's answer to a cancellation request",
        examples=examples.ESCALATE_ORDER,
    )
    @idempotent
    def post(self, request, pk: int):
        data = validated(EscalateOrderSerializer, request.data, ESCALATION_CODES)
        escalation = escalation_open_for_order(
            order_id=pk,
            actor=request.user,
            subject=data["subject"],
            statement=data["statement"],
            photos=data["photos"],
        )
        return Response(_detail(escalation.pk), status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(
        responses={200: EscalationSerializer(many=True)},
        summary="The buyer's escalations, newest first",
    )
)
class EscalationListApi(generics.ListAPIView):
    """`GET /api/escalations/`: the buyer's own escalations, newest first."""

    serializer_class = EscalationSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Escalation.objects.none()
        return escalation_list_for_buyer(self.request.user)


class EscalationDetailApi(APIView):
    """`GET /api/escalations/{id}/`: one of the buyer's own escalations, with the money an
    overturn moved."""

    @extend_schema(responses={200: EscalationDetailSerializer}, summary="One escalation")
    def get(self, request, pk: int):
        if not escalation_list_for_buyer(request.user).filter(pk=pk).exists():
            raise DomainError("not_found", f"You have no escalation {pk}.", kind="not_found")
        return Response(_detail(pk))


# -- supervisors -------------------------------------------------------------------------------


class IsSupervisor(BasePermission):
    message = "Only supervisors decide escalations."
    code = "not_supervisor"

    def has_permission(self, request, view):
        return is_supervisor(request.user)


@extend_schema_view(
    get=extend_schema(
        responses={200: SupportEscalationSerializer(many=True)},
        summary="Escalations to decide, soonest due first",
    )
)
class SupportEscalationListApi(generics.ListAPIView):
    """`GET /api/support/escalations/` (supervisors): undecided escalations first, soonest due
    first (L-8.1), then the decided ones."""

    permission_classes = [IsAuthenticated, IsSupervisor]
    serializer_class = SupportEscalationSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Escalation.objects.none()
        return escalation_queue().select_related("buyer")


class SupportEscalationTakeApi(APIView):
    """`POST /api/support/escalations/{id}/take/` (supervisors): take it for review."""

    permission_classes = [IsAuthenticated, IsSupervisor]

    @extend_schema(
        request=None,
        responses={200: EscalationDetailSerializer},
        summary="Take an escalation for review",
    )
    @idempotent
    def post(self, request, pk: int):
        escalation_take(escalation_id=pk, actor=request.user)
        return Response(_detail(pk))


class SupportEscalationDecideApi(APIView):
    """`POST /api/support/escalations/{id}/decide/` (supervisors): `outcome` `upheld` or
    `overturned`, `explanation` required, `amount` for an overturn (the new total refund,
    default everything still refundable); the difference moves once. Final: deciding again is
    a 409 `escalation_decided`."""

    permission_classes = [IsAuthenticated, IsSupervisor]

    @extend_schema(
        request=DecideSerializer,
        responses={200: EscalationDetailSerializer},
        summary="Decide an escalation (final)",
        examples=examples.DECIDE,
    )
    @idempotent
    def post(self, request, pk: int):
        data = validated(DecideSerializer, request.data, ESCALATION_CODES)
        escalation_decide(escalation_id=pk, actor=request.user, **data)
        return Response(_detail(pk))
