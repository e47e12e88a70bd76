"""The refund request API (D-10): thin views over `refunds.services` and `refunds.selectors`.

A buyer sees and writes on their own requests only (another buyer's is a 404, like one that
does not exist); a partner verifies the requests of their restaurants (a user who is no partner
gets a 403, another restaurant's request is a 404); support agents and supervisors decide (any
other user gets a 403). Refusals are the services' own: 409 for the state or the policy, 400 for
bad input.
"""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import (
    FILE_PARSERS,
    UPLOAD_PARSERS,
    ApiErrorSerializer,
    json_or_multipart,
    validated,
)
from core.errors import DomainError, InvalidInput
from core.idempotency import idempotent
from orders.api.views import IsRestaurantPartner
from orders.models import is_support
from refunds.api import examples
from refunds.api.serializers import (
    FIELD_CODES,
    ApproveSerializer,
    DeductionDisputeCreateSerializer,
    DenySerializer,
    EvidenceUploadSerializer,
    LedgerEntrySerializer,
    LedgerPeriodSerializer,
    OfferCreditSerializer,
    PartialApproveSerializer,
    QuestionSerializer,
    RefundRequestCreateSerializer,
    RefundRequestDetailSerializer,
    RefundRequestListSerializer,
    ReplySerializer,
    SellerLedgerSerializer,
    SellerRefundRequestSerializer,
    VerifySerializer,
)
from refunds.models import RefundRequest, RestaurantLedgerEntry
from refunds.selectors import (
    refund_request_detail_queryset,
    refund_request_list_for_buyer,
    refund_request_list_for_partner,
    restaurant_ledger_balance,
    restaurant_ledger_entries,
    restaurant_ledger_periods,
)
from refunds.services.decisions import (
    refund_request_approve,
    refund_request_deny,
    refund_request_offer_credit,
    refund_request_offer_replacement,
    refund_request_partially_approve,
    refund_request_second_approve,
)
from refunds.services.deductions import deduction_dispute_open
from refunds.services.evidence import refund_request_add_evidence
from refunds.services.requests import (
    refund_request_ask_restaurant,
    refund_request_reply,
    refund_request_request_info,
    refund_request_restaurant_verify,
    refund_request_submit,
)


def _no_request(request_id: int) -> DomainError:
    return DomainError("not_found", f"You have no refund request {request_id}.", kind="not_found")


def _buyer_detail(user, request_id: int) -> dict:
    try:
        refund_request = refund_request_detail_queryset().filter(buyer=user).get(pk=request_id)
    except RefundRequest.DoesNotExist as error:
        raise _no_request(request_id) from error
    return RefundRequestDetailSerializer(refund_request).data


def _detail(request_id: int) -> dict:
    return RefundRequestDetailSerializer(refund_request_detail_queryset().get(pk=request_id)).data


# -- buyer -----------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        responses={200: RefundRequestListSerializer(many=True)},
        summary="The buyer's refund requests, newest first",
    )
)
class RefundRequestListCreateApi(generics.ListAPIView):
    """`GET` the buyer's own refund requests, newest first; `POST` asks for a refund (L-4.1).

    The policy answers at once: a reason it does not cover is denied with its clause, a food
    safety claim is refunded, the rest waits for support (`review_due_at`). An incomplete claim
    (a quality issue without its photo, L-5.2; a partial claim without its lines) is a 400 that
    stores nothing.
    """

    serializer_class = RefundRequestListSerializer
    parser_classes = UPLOAD_PARSERS

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return RefundRequest.objects.none()
        return refund_request_list_for_buyer(self.request.user)

    @extend_schema(
        request=json_or_multipart(RefundRequestCreateSerializer),
        # 403: a suspended buyer (`account_suspended`, L-8.2); 404: the body's order is not theirs.
        responses={201: RefundRequestDetailSerializer, 404: ApiErrorSerializer},
        summary="Ask for a refund",
        examples=examples.SUBMIT,
    )
    @idempotent
    def post(self, request):
        data = validated(RefundRequestCreateSerializer, request.data, FIELD_CODES)
        refund_request = refund_request_submit(
            order_id=data["order"],
            actor=request.user,
            reason=data["reason"],
            items=[(line["order_item"], line["quantity"]) for line in data["items"]],
            description=data["description"],
            preferred_method=data["preferred_method"],
            discovered_at=data["discovered_at"],
            photos=data["photos"],
        )
        return Response(_buyer_detail(request.user, refund_request.pk), status=201)


class RefundRequestDetailApi(APIView):
    """One of the buyer's own requests: status, suggestion, decision, timeline, messages,
    photos and refunds with their expected dates."""

    @extend_schema(
        responses={200: RefundRequestDetailSerializer},
        summary="One of the buyer's refund requests, with its timeline",
    )
    def get(self, request, pk: int):
        return Response(_buyer_detail(request.user, pk))


class RefundRequestEvidenceApi(APIView):
    """`POST /api/refund-requests/{id}/evidence/` (multipart `file`): a photo for an undecided
    request. A file that is not an image (`not_an_image`), too large (`file_too_large`) or one
    too many (`too_many_photos`) is a 400 and nothing is stored."""

    parser_classes = FILE_PARSERS

    @extend_schema(
        request={"multipart/form-data": EvidenceUploadSerializer},
        responses={201: RefundRequestDetailSerializer},
        summary="Add a photo to a refund request",
    )
    @idempotent
    def post(self, request, pk: int):
        data = validated(EvidenceUploadSerializer, request.data, FIELD_CODES)
        refund_request_add_evidence(request_id=pk, actor=request.user, photos=[data["file"]])
        return Response(_buyer_detail(request.user, pk), status=status.HTTP_201_CREATED)


class RefundRequestReplyApi(APIView):
    """`POST /api/refund-requests/{id}/reply/`: the buyer writes to support (`body`, optional
    `photos`); answering a question resumes the review clock (L-4.1)."""

    parser_classes = UPLOAD_PARSERS

    @extend_schema(
        request=json_or_multipart(ReplySerializer),
        responses={201: RefundRequestDetailSerializer},
        summary="Reply on a refund request",
        examples=examples.REPLY,
    )
    @idempotent
    def post(self, request, pk: int):
        data = validated(ReplySerializer, request.data, FIELD_CODES)
        refund_request_reply(
            request_id=pk, actor=request.user, body=data["body"], photos=data["photos"]
        )
        return Response(_buyer_detail(request.user, pk), status=status.HTTP_201_CREATED)


# -- seller ----------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        responses={200: SellerRefundRequestSerializer(many=True)},
        summary="Refund requests support asked the restaurants to verify",
    )
)
class SellerRefundRequestListApi(generics.ListAPIView):
    """Requests support asked the partner's restaurants to verify, the oldest first."""

    permission_classes = [IsAuthenticated, IsRestaurantPartner]
    serializer_class = SellerRefundRequestSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RefundRequest.objects.none()
        return refund_request_list_for_partner(self.request.user).filter(
            status=RefundRequest.Status.AWAITING_RESTAURANT
        )


class SellerRefundRequestVerifyApi(APIView):
    """`POST /api/seller/refund-requests/{id}/verify/`: the restaurant answers support's
    question with a `note`; support then decides. A request support is not asking about is a
    409 `no_verification_due`."""

    permission_classes = [IsAuthenticated, IsRestaurantPartner]

    @extend_schema(
        request=VerifySerializer,
        responses={200: SellerRefundRequestSerializer},
        summary="Answer support's verification request",
        examples=examples.VERIFY,
    )
    @idempotent
    def post(self, request, pk: int):
        data = validated(VerifySerializer, request.data, FIELD_CODES)
        refund_request_restaurant_verify(request_id=pk, actor=request.user, note=data["note"])
        refund_request = refund_request_list_for_partner(request.user).get(pk=pk)
        return Response(SellerRefundRequestSerializer(refund_request).data)


class SellerDeductionDisputeApi(APIView):
    """`POST /api/seller/ledger/{id}/dispute/` (L-9, K-DR): the partner disputes one refund
    deduction of its restaurants with a `note`, once; answers 201 with the entry and its
    dispute. Another restaurant's entry is a 404; an entry that is no deduction, or one already
    disputed, a 409 (`not_a_deduction`, `already_disputed`)."""

    permission_classes = [IsAuthenticated, IsRestaurantPartner]

    @extend_schema(
        request=DeductionDisputeCreateSerializer,
        responses={201: LedgerEntrySerializer},
        summary="Dispute a refund deduction, once",
        examples=examples.DEDUCTION_DISPUTE,
    )
    @idempotent
    def post(self, request, pk: int):
        data = validated(DeductionDisputeCreateSerializer, request.data, FIELD_CODES)
        deduction_dispute_open(
            entry_id=pk, actor=request.user, note=data["note"], now=timezone.now()
        )
        entry = restaurant_ledger_entries(request.user.restaurants.all()).get(pk=pk)
        return Response(LedgerEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class SellerLedgerApi(generics.ListAPIView):
    """`GET /api/seller/ledger/` (D-10, L-9): the ledger of the partner's restaurants (or of one,
    `?restaurant=<id>`), newest first and paginated, with the total of every weekly payout
    period and the balance; money as strings with two decimals. Another restaurant's id is a
    404 `not_found`, one that is not a number a 400 `wrong_type`."""

    permission_classes = [IsAuthenticated, IsRestaurantPartner]
    serializer_class = LedgerEntrySerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RestaurantLedgerEntry.objects.none()
        return restaurant_ledger_entries(self._restaurant_ids())

    @extend_schema(
        parameters=[OpenApiParameter("restaurant", int, required=False)],
        responses={200: SellerLedgerSerializer, 400: ApiErrorSerializer},
        summary="The restaurants' ledger with its weekly payout periods",
    )
    def get(self, request, *args, **kwargs):
        ids = self._restaurant_ids()
        page = self.paginate_queryset(restaurant_ledger_entries(ids))
        periods = restaurant_ledger_periods(ids, tz=timezone.get_current_timezone())
        response = self.get_paginated_response(self.get_serializer(page, many=True).data)
        response.data["periods"] = LedgerPeriodSerializer(periods, many=True).data
        response.data["balance"] = (
            LedgerPeriodSerializer()
            .fields["total"]
            .to_representation(restaurant_ledger_balance(periods))
        )
        return response

    def _restaurant_ids(self) -> list[int]:
        mine = list(self.request.user.restaurants.values_list("pk", flat=True))
        raw = self.request.query_params.get("restaurant")
        if raw is None:
            return mine
        if not raw.isdigit():
            raise InvalidInput("wrong_type", "restaurant: A valid integer is required.")
        if int(raw) not in mine:
            raise DomainError("not_found", f"You have no restaurant {raw}.", kind="not_found")
        return [int(raw)]


# -- support ---------------------------------------------------------------------------------


class IsSupport(BasePermission):
    message = "Only support agents and supervisors decide refund requests."
    code = "not_support"

    def has_permission(self, request, view):
        return is_support(request.user)


class SupportActionApi(APIView):
    """A support decision on a request, through the same service as the admin. 200 with the
    request; 409 if its state does not allow it; 400 for bad input."""

    permission_classes = [IsAuthenticated, IsSupport]
    input_serializer = None
    # The refunds.services decision, called with the request id, the acting user and the input.
    service = None

    @idempotent
    def post(self, request, pk: int):
        data = (
            validated(self.input_serializer, request.data, FIELD_CODES)
            if self.input_serializer
            else {}
        )
        self.service(request_id=pk, actor=request.user, **data)
        return Response(_detail(pk))


def _support_schema(summary: str, serializer=None, request_examples=()):
    return extend_schema(
        request=serializer,
        responses={200: RefundRequestDetailSerializer},
        summary=summary,
        examples=list(request_examples),
    )


@_support_schema("Approve the suggested refund", ApproveSerializer, examples.APPROVE)
class SupportApproveApi(SupportActionApi):
    """Approve what the policy suggested, bounded by what can still be refunded; above the
    version's threshold a supervisor approves too. Nothing left to refund is a 409
    `nothing_to_refund`."""

    input_serializer = ApproveSerializer

    service = staticmethod(refund_request_approve)


@_support_schema("Approve part of the claim", PartialApproveSerializer, examples.PARTIALLY_APPROVE)
class SupportPartiallyApproveApi(SupportActionApi):
    input_serializer = PartialApproveSerializer

    service = staticmethod(refund_request_partially_approve)


@_support_schema("Deny with an explanation", DenySerializer, examples.DENY)
class SupportDenyApi(SupportActionApi):
    input_serializer = DenySerializer

    service = staticmethod(refund_request_deny)


@_support_schema("Ask the buyer for more information", QuestionSerializer, examples.QUESTION)
class SupportRequestInfoApi(SupportActionApi):
    """The review clock pauses until the buyer replies (L-4.1)."""

    input_serializer = QuestionSerializer

    service = staticmethod(refund_request_request_info)


@_support_schema("Ask the restaurant to verify", QuestionSerializer, examples.QUESTION)
class SupportAskRestaurantApi(SupportActionApi):
    input_serializer = QuestionSerializer

    service = staticmethod(refund_request_ask_restaurant)


@_support_schema("Offer promotional credit instead", OfferCreditSerializer, examples.OFFER_CREDIT)
class SupportOfferCreditApi(SupportActionApi):
    """L-4.3: promotional credit instead of money for a minor issue."""

    input_serializer = OfferCreditSerializer

    service = staticmethod(refund_request_offer_credit)


@_support_schema("Send a replacement order instead", DenySerializer, examples.REPLACEMENT)
class SupportOfferReplacementApi(SupportActionApi):
    """L-4.1 step 4: the claimed items (or the whole order) again, free of charge."""

    input_serializer = DenySerializer

    service = staticmethod(refund_request_offer_replacement)


@_support_schema("Give the second approval")
class SupportSecondApprovalApi(SupportActionApi):
    """A supervisor other than the one who decided confirms a large refund; then money moves.
    Anyone else is a 409 (`supervisor_required`, `four_eyes`)."""

    service = staticmethod(refund_request_second_approve)
