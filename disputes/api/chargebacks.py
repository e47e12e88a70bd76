"""The disputes API (D-10): thin views over `disputes.services` and `disputes.selectors`.

Support (agents and supervisors) enter chargebacks, read them and their evidence bundle, and
send the evidence; supervisors decide them and suspend or reinstate buyers (the services refuse
anyone else with a 403). Buyers and partners get a 403, anonymous callers a 401. The processor's
webhook takes no login: its HMAC signature is its authentication.
"""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ApiErrorSerializer, validated
from core.errors import DomainError
from core.idempotency import idempotent
from disputes.api import examples
from disputes.api.chargeback_serializers import (
    ChargebackCreateSerializer,
    ChargebackSerializer,
    NoteSerializer,
    SuspendSerializer,
    SuspensionSerializer,
    WebhookReceiptSerializer,
)
from disputes.evidence_pdf import render_evidence_pdf
from disputes.models import Chargeback
from disputes.selectors import (
    chargeback_evidence_bundle,
    chargeback_evidence_photos,
    chargeback_list,
)
from disputes.services.chargebacks import (
    chargeback_accept,
    chargeback_lose,
    chargeback_open,
    chargeback_submit_evidence,
    chargeback_win,
)
from disputes.services.suspensions import buyer_reinstate, buyer_suspend
from disputes.services.webhooks import gateway_event_receive
from orders.gateway import SIGNATURE_HEADER
from orders.models import is_support


class IsSupport(BasePermission):
    message = "Only support agents and supervisors work on chargebacks and suspensions."
    code = "not_support"

    def has_permission(self, request, view):
        return is_support(request.user)


def _chargeback(pk: int) -> Chargeback:
    chargeback = chargeback_list().filter(pk=pk).first()
    if chargeback is None:
        raise DomainError("not_found", f"There is no chargeback {pk}.", kind="not_found")
    return chargeback


class SupportApi(APIView):
    permission_classes = [IsAuthenticated, IsSupport]


class ChargebackListCreateApi(SupportApi):
    """`GET` the chargebacks, the soonest evidence due date first; `POST` enters one (L-8.2):
    `order`, `amount`, `bank_reference`, `reason_code`, optional `evidence_due_by` (default:
    the pinned version's `chargeback_evidence_days`). What the card refunds already took back
    is left out of `amount_at_stake`."""

    @extend_schema(
        responses={200: ChargebackSerializer(many=True)},
        summary="Chargebacks, the soonest evidence due date first",
    )
    def get(self, request):
        return Response(ChargebackSerializer(chargeback_list()[:200], many=True).data)

    @extend_schema(
        request=ChargebackCreateSerializer,
        responses={201: ChargebackSerializer, 404: ApiErrorSerializer},  # 404: the body's order
        summary="Enter a chargeback",
        examples=examples.CHARGEBACK,
    )
    @idempotent
    def post(self, request):
        data = validated(ChargebackCreateSerializer, request.data)
        chargeback, _ = chargeback_open(
            order_id=data["order"],
            amount=data["amount"],
            bank_reference=data["bank_reference"],
            reason_code=data["reason_code"],
            evidence_due_by=data["evidence_due_by"],
            actor=request.user,
        )
        return Response(
            ChargebackSerializer(_chargeback(chargeback.pk)).data, status=status.HTTP_201_CREATED
        )


class ChargebackDetailApi(SupportApi):
    @extend_schema(responses={200: ChargebackSerializer}, summary="A chargeback")
    def get(self, request, pk: int):
        return Response(ChargebackSerializer(_chargeback(pk)).data)


class ChargebackEvidenceJsonApi(SupportApi):
    """The evidence bundle as JSON (L-8.2): order, timeline, payments, refunds, requests with
    messages and photos, the accepted policy version and the delivery times."""

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="The evidence bundle as JSON",
    )
    def get(self, request, pk: int):
        bundle = chargeback_evidence_bundle(_chargeback(pk).pk)
        response = HttpResponse(
            json.dumps(bundle, cls=DjangoJSONEncoder, indent=2),
            content_type="application/json",
        )
        response["Content-Disposition"] = f'attachment; filename="chargeback-{pk}-evidence.json"'
        return response


class ChargebackEvidencePdfApi(SupportApi):
    """The evidence bundle as a PDF for the bank (L-8.2)."""

    @extend_schema(
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, "The PDF.")},
        summary="The evidence bundle as PDF",
    )
    def get(self, request, pk: int):
        bundle = chargeback_evidence_bundle(_chargeback(pk).pk)
        pdf = render_evidence_pdf(bundle, chargeback_evidence_photos(bundle))
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="chargeback-{pk}-evidence.pdf"'
        return response


class ChargebackActionApi(SupportApi):
    """An outcome on a chargeback, through the same service as admin; optional `note`. 200 with
    the chargeback; 403 for an agent where a supervisor decides; 409 for its state."""

    service = None

    @idempotent
    def post(self, request, pk: int):
        data = validated(NoteSerializer, request.data)
        self.service(chargeback_id=pk, actor=request.user, note=data["note"])
        return Response(ChargebackSerializer(_chargeback(pk)).data)


def _action_schema(summary: str):
    return extend_schema(
        request=NoteSerializer,
        responses={200: ChargebackSerializer},
        summary=summary,
        examples=examples.NOTE,
    )


@_action_schema("Send the evidence to the bank (support)")
class ChargebackSubmitEvidenceApi(ChargebackActionApi):
    service = staticmethod(chargeback_submit_evidence)


@_action_schema("The bank ruled for the platform (supervisors)")
class ChargebackWonApi(ChargebackActionApi):
    service = staticmethod(chargeback_win)


@_action_schema("The bank ruled for the buyer: the money goes back (supervisors)")
class ChargebackLostApi(ChargebackActionApi):
    service = staticmethod(chargeback_lose)


@_action_schema("Do not contest: the money goes back (supervisors)")
class ChargebackAcceptApi(ChargebackActionApi):
    service = staticmethod(chargeback_accept)


class BuyerSuspendApi(SupportApi):
    """`POST /api/support/buyers/{user_id}/suspend/` (supervisors; L-8.2): `reason`,
    `suspected_fraud`, optional `chargeback`. 201 with the suspension."""

    @extend_schema(
        request=SuspendSerializer,
        responses={201: SuspensionSerializer},
        summary="Suspend a buyer (supervisors)",
        examples=examples.SUSPEND,
    )
    @idempotent
    def post(self, request, user_id: int):
        data = validated(SuspendSerializer, request.data)
        suspension = buyer_suspend(
            buyer_id=user_id,
            actor=request.user,
            reason=data["reason"],
            suspected_fraud=data["suspected_fraud"],
            chargeback_id=data["chargeback"],
        )
        return Response(SuspensionSerializer(suspension).data, status=status.HTTP_201_CREATED)


class BuyerReinstateApi(SupportApi):
    """`POST /api/support/buyers/{user_id}/reinstate/` (supervisors): lifts the suspension."""

    @extend_schema(
        request=NoteSerializer,
        responses={200: SuspensionSerializer},
        summary="Lift a buyer's suspension (supervisors)",
        examples=examples.NOTE,
    )
    @idempotent
    def post(self, request, user_id: int):
        data = validated(NoteSerializer, request.data)
        suspension = buyer_reinstate(buyer_id=user_id, actor=request.user, note=data["note"])
        return Response(SuspensionSerializer(suspension).data)


class RawBodyParser(BaseParser):
    """The webhook's body stays bytes: the signature is over the exact bytes sent."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read()


class GatewayWebhookApi(APIView):
    """`POST /api/gateway/webhooks/` (D-10): the processor's events, signed with HMAC-SHA256 in
    `Lojix-Signature: t=<unix>,v1=<hex>` over `<t>.<body>`. An unsigned, wrongly signed or
    stale call is a 400 and a replayed event id a 409 `event_replayed`; none changes anything.
    `chargeback.opened` opens a chargeback (L-8.2); `refund.settled` and `refund.failed` are
    recorded. 200 with the receipt."""

    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = [RawBodyParser]

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: WebhookReceiptSerializer, 400: ApiErrorSerializer, 409: ApiErrorSerializer},
        summary="Receive a signed processor event",
    )
    def post(self, request):
        event, handled = gateway_event_receive(
            body=request.body, signature=request.headers.get(SIGNATURE_HEADER, "")
        )
        return Response(
            {
                "event": event.event_id,
                "type": event.type,
                "handled": handled,
                "chargeback": event.chargeback_id,
            }
        )
