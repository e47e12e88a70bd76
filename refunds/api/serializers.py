"""What the refund request API reads and writes (D-10). Money fields are strings with two
decimals; the services judge everything beyond the shape of the input."""

import datetime as dt

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from core.api import BoundedDateTimeField, StrictIntegerField
from core.safe_json import UnsafeJson, safe_json_loads
from core.serializers import ModelSerializer
from orders.api.serializers import MAX_ID, MONEY, RefundSerializer, RestaurantRefSerializer
from refunds.models import (
    DeductionDispute,
    RefundEvidence,
    RefundMessage,
    RefundRequest,
    RefundRequestEvent,
    RefundRequestItem,
    RestaurantLedgerEntry,
)
from refunds.policy import Reason, deduction_clauses

MAX_CLAIM_QUANTITY = 99
MAX_CLAIM_LINES = 50
MAX_TEXT = 4000
# A phone whose clock runs a little fast still reports "just now".
DISCOVERY_CLOCK_SKEW = dt.timedelta(minutes=5)
REASON_CHOICES = list(Reason.LABELS.items())  # named RefundReasonEnum in the schema


def evidence_url(evidence_id: int) -> str:
    """The protected view that serves a photo to those allowed to see it."""
    return f"/refunds/evidence/{evidence_id}/"


# -- input -----------------------------------------------------------------------------------


# (field, DRF error code) -> the API's stable code; the same codes the services raise.
FIELD_CODES = {
    ("reason", "invalid_choice"): "invalid_reason",
    ("preferred_method", "invalid_choice"): "invalid_method",
    ("method", "invalid_choice"): "invalid_method",
    ("discovered_at", "invalid"): "invalid_discovered_at",
    ("discovered_at", "out_of_range"): "invalid_discovered_at",
    ("order", "min_value"): "not_found",
    ("order", "max_value"): "not_found",
    ("order_item", "min_value"): "unknown_item",
    ("order_item", "max_value"): "unknown_item",
    ("quantity", "min_value"): "invalid_quantity",
    ("quantity", "max_value"): "invalid_quantity",
    ("items", "max_length"): "too_many_lines",
} | {
    ("amount", code): "invalid_amount"
    for code in ("invalid", "max_digits", "max_decimal_places", "max_whole_digits")
}


class ClaimLineInSerializer(serializers.Serializer):
    order_item = StrictIntegerField(min_value=1, max_value=MAX_ID)
    quantity = StrictIntegerField(min_value=1, max_value=MAX_CLAIM_QUANTITY)


class ClaimLinesField(serializers.ListField):
    """`items`: a JSON list, or in a multipart form a JSON string holding that list (or one
    JSON object per `items` value)."""

    child = ClaimLineInSerializer()

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [data]
        if isinstance(data, list) and data and all(isinstance(v, str) for v in data):
            data = self._from_json(data)
        return super().to_internal_value(data)

    def _from_json(self, values: list[str]) -> list:
        lines = []
        for value in values:
            try:
                parsed = safe_json_loads(value)
            except UnsafeJson as error:
                raise serializers.ValidationError(error.detail, code=error.code) from error
            except ValueError:
                self.fail("not_a_list", input_type="text that is not JSON")
            lines.extend(parsed if isinstance(parsed, list) else [parsed])
        return lines


@extend_schema_field(OpenApiTypes.BINARY)
class PhotoField(serializers.FileField):
    """An uploaded photo; the service decodes and re-encodes it (`refunds.photos.photo_prepare`)."""


def _photos(**kwargs):
    return serializers.ListField(child=PhotoField(), required=False, default=list, **kwargs)


class RefundRequestCreateSerializer(serializers.Serializer):
    """The body of `POST /api/refund-requests/` (JSON, or multipart with `photos`)."""

    order = StrictIntegerField(min_value=1, max_value=MAX_ID)
    reason = serializers.ChoiceField(choices=REASON_CHOICES)
    items = ClaimLinesField(
        required=False,
        default=list,
        max_length=MAX_CLAIM_LINES,
        help_text="The lines concerned, for a partial claim. In multipart, a JSON string.",
    )
    description = serializers.CharField(
        max_length=MAX_TEXT, required=False, allow_blank=True, default=""
    )
    preferred_method = serializers.ChoiceField(
        choices=RefundRequest.Method.choices, required=False, default=RefundRequest.Method.ORIGINAL
    )
    discovered_at = BoundedDateTimeField(
        max_future=DISCOVERY_CLOCK_SKEW,
        required=False,
        allow_null=True,
        default=None,
        help_text="Default: now.",
    )
    photos = _photos(help_text="Multipart only: JPEG, PNG, WebP or GIF, at most 5 of 8 MB each.")


class EvidenceUploadSerializer(serializers.Serializer):
    file = PhotoField(help_text="A photo: JPEG, PNG, WebP or GIF, up to 8 MB.")


class ReplySerializer(serializers.Serializer):
    body = serializers.CharField(max_length=MAX_TEXT, allow_blank=True)
    photos = _photos(help_text="Multipart only, like the request's photos.")


class VerifySerializer(serializers.Serializer):
    note = serializers.CharField(max_length=MAX_TEXT, allow_blank=True)


class QuestionSerializer(serializers.Serializer):
    question = serializers.CharField(max_length=MAX_TEXT, allow_blank=True)


def _amount(**kwargs):
    return serializers.DecimalField(max_digits=12, decimal_places=2, **kwargs)


def _method():
    return serializers.ChoiceField(
        choices=RefundRequest.Method.choices,
        required=False,
        allow_null=True,
        default=None,
        help_text="Default: the buyer's preferred method.",
    )


class ApproveSerializer(serializers.Serializer):
    method = _method()


class PartialApproveSerializer(serializers.Serializer):
    amount = _amount(help_text="Up to what can still be refunded, e.g. `6.00`.")
    method = _method()
    explanation = serializers.CharField(max_length=MAX_TEXT, allow_blank=True)


class DenySerializer(serializers.Serializer):
    explanation = serializers.CharField(max_length=MAX_TEXT, allow_blank=True)


class OfferCreditSerializer(serializers.Serializer):
    amount = _amount(help_text="The promotional credit, e.g. `5.00`.")
    explanation = serializers.CharField(max_length=MAX_TEXT, allow_blank=True)


# -- output ----------------------------------------------------------------------------------


class ClaimLineSerializer(ModelSerializer):
    order_item = serializers.IntegerField(source="order_item_id", read_only=True)
    name = serializers.CharField(source="order_item.name", read_only=True)
    unit_price = serializers.DecimalField(source="order_item.unit_price", **MONEY)

    class Meta:
        model = RefundRequestItem
        fields = ["order_item", "name", "unit_price", "quantity"]
        read_only_fields = fields


class RequestEventSerializer(ModelSerializer):
    at = serializers.DateTimeField(source="created_at", read_only=True)
    clauses = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = RefundRequestEvent
        fields = ["at", "name", "from_status", "to_status", "actor_role", "message", "clauses"]
        read_only_fields = fields


class MessageSerializer(ModelSerializer):
    at = serializers.DateTimeField(source="created_at", read_only=True)
    author = serializers.SerializerMethodField()

    class Meta:
        model = RefundMessage
        fields = ["at", "role", "author", "body"]
        read_only_fields = fields

    def get_author(self, message: RefundMessage) -> str:
        return message.author.first_name or message.author.get_username()


class EvidenceSerializer(ModelSerializer):
    """A stored photo (re-encoded, capped): `url` the photo, `thumbnail_url` its thumbnail (null
    for an old photo that could not be re-encoded); type, bytes and pixels of what is stored."""

    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = RefundEvidence
        fields = [
            "id",
            "url",
            "thumbnail_url",
            "content_type",
            "size",
            "width",
            "height",
            "created_at",
        ]
        read_only_fields = fields

    def get_url(self, evidence: RefundEvidence) -> str:
        return evidence_url(evidence.pk)

    def get_thumbnail_url(self, evidence: RefundEvidence) -> str | None:
        return f"{evidence_url(evidence.pk)}?size=thumb" if evidence.thumbnail else None


class DecisionSerializer(serializers.Serializer):
    """Who decided what, why, and whether a supervisor must still approve it (D-5)."""

    amount = serializers.DecimalField(source="decided_amount", allow_null=True, **MONEY)
    method = serializers.CharField(source="decided_method", read_only=True)
    resolution = serializers.CharField(read_only=True)
    explanation = serializers.CharField(read_only=True)
    clauses = serializers.ListField(
        source="decision_clauses", child=serializers.CharField(), read_only=True
    )
    decided_by = serializers.CharField(
        source="decided_by_label", read_only=True, help_text='"policy" or the person.'
    )
    decided_at = serializers.DateTimeField(read_only=True)
    needs_second_approval = serializers.BooleanField(read_only=True)
    second_approved_at = serializers.DateTimeField(read_only=True, allow_null=True)


class RefundRequestListSerializer(ModelSerializer):
    restaurant = serializers.CharField(source="order.restaurant.name", read_only=True)
    suggested_amount = serializers.DecimalField(**MONEY)
    decided_amount = serializers.DecimalField(allow_null=True, **MONEY)

    class Meta:
        model = RefundRequest
        fields = [
            "id",
            "order",
            "restaurant",
            "status",
            "reason",
            "submitted_at",
            "review_due_at",
            "suggested_amount",
            "decided_amount",
        ]
        read_only_fields = fields


class RefundRequestDetailSerializer(ModelSerializer):
    """Everything the request page shows: the claim, what the policy suggested, the decision,
    the review deadline, the timeline, the conversation, the photos and the money that moved
    with its expected dates (L-4.2). Expects `refund_request_detail_queryset`."""

    restaurant = serializers.CharField(source="order.restaurant.name", read_only=True)
    reason_label = serializers.CharField(source="get_reason_display", read_only=True)
    items = ClaimLineSerializer(many=True, read_only=True)
    suggested_amount = serializers.DecimalField(**MONEY)
    suggested_clauses = serializers.ListField(child=serializers.CharField(), read_only=True)
    decision = serializers.SerializerMethodField()
    timeline = RequestEventSerializer(source="events", many=True, read_only=True)
    messages = MessageSerializer(many=True, read_only=True)
    evidence = EvidenceSerializer(many=True, read_only=True)
    refunds = RefundSerializer(many=True, read_only=True)

    class Meta:
        model = RefundRequest
        fields = [
            "id",
            "order",
            "restaurant",
            "status",
            "reason",
            "reason_label",
            "description",
            "preferred_method",
            "discovered_at",
            "submitted_at",
            "review_due_at",
            "items",
            "suggested_outcome",
            "suggested_amount",
            "suggested_code",
            "suggested_clauses",
            "decision",
            "refunded_at",
            "timeline",
            "messages",
            "evidence",
            "refunds",
        ]
        read_only_fields = fields

    @extend_schema_field(DecisionSerializer(allow_null=True))
    def get_decision(self, request: RefundRequest) -> dict | None:
        """`null` until someone (or the policy) decides."""
        return DecisionSerializer(request).data if request.decided_at else None


class SellerRefundRequestSerializer(ModelSerializer):
    """A request as the restaurant sees it when support asks it to verify: the claim, the
    lines, the photos and what support and the restaurant wrote; never the buyer's payment
    (D-4). Expects `refund_request_list_for_partner`."""

    reason_label = serializers.CharField(source="get_reason_display", read_only=True)
    restaurant = serializers.CharField(source="order.restaurant.name", read_only=True)
    items = ClaimLineSerializer(many=True, read_only=True)
    evidence = EvidenceSerializer(many=True, read_only=True)
    messages = MessageSerializer(many=True, read_only=True)

    class Meta:
        model = RefundRequest
        fields = [
            "id",
            "order",
            "restaurant",
            "status",
            "reason",
            "reason_label",
            "description",
            "submitted_at",
            "items",
            "evidence",
            "messages",
        ]
        read_only_fields = fields


# -- the seller's ledger (D-10, L-9) ---------------------------------------------------------


class DeductionDisputeSerializer(ModelSerializer):
    """A restaurant's dispute of a deduction (L-9, K-DR): `open`, then `upheld` (the deduction
    reversed by an entry of its own) or `rejected`, with support's explanation."""

    class Meta:
        model = DeductionDispute
        fields = ["id", "status", "note", "opened_at", "decided_at", "explanation"]
        read_only_fields = fields


class DeductionDisputeCreateSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, trim_whitespace=False)


class LedgerEntrySerializer(ModelSerializer):
    """One line of a restaurant's ledger: a sale, a cancellation fee kept, a refund deducted
    (L-9) with its reason, clauses and dispute, a deduction reversed, or the payout closing a
    period; money as a string with two decimals (negative: taken off the payout). Expects
    `refunds.selectors.restaurant_ledger_entries`."""

    restaurant = RestaurantRefSerializer(read_only=True)
    amount = serializers.DecimalField(**MONEY)
    reason = serializers.SerializerMethodField()
    clauses = serializers.SerializerMethodField()
    disputable = serializers.SerializerMethodField()
    dispute = serializers.SerializerMethodField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_reason(self, entry) -> str | None:
        return entry.refund.reason if entry.refund_id else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_clauses(self, entry) -> list[str]:
        if entry.kind != RestaurantLedgerEntry.Kind.REFUND_DEDUCTION:
            return []
        return deduction_clauses(entry.refund.clauses if entry.refund_id else ())

    def get_disputable(self, entry) -> bool:
        return entry.kind == RestaurantLedgerEntry.Kind.REFUND_DEDUCTION and not _dispute(entry)

    @extend_schema_field(DeductionDisputeSerializer(allow_null=True))
    def get_dispute(self, entry) -> dict | None:
        dispute = _dispute(entry)
        return DeductionDisputeSerializer(dispute).data if dispute else None

    class Meta:
        model = RestaurantLedgerEntry
        fields = [
            "id",
            "created_at",
            "restaurant",
            "kind",
            "amount",
            "order",
            "refund",
            "description",
            "reason",
            "clauses",
            "disputable",
            "dispute",
            "period_starts_on",
        ]
        read_only_fields = fields


def _dispute(entry):
    return getattr(entry, "dispute", None)


class LedgerPeriodSerializer(serializers.Serializer):
    """One weekly payout period (Monday to Sunday in the site's time zone), its total, and
    whether its payout closed it (`paid_out`: what was paid, null while open) (L-9)."""

    starts_on = serializers.DateField(read_only=True)
    ends_on = serializers.DateField(read_only=True)
    total = serializers.DecimalField(**MONEY)
    entries = serializers.IntegerField(read_only=True)
    closed = serializers.BooleanField(read_only=True)
    paid_out = serializers.DecimalField(allow_null=True, **MONEY)


# The view pages its entries itself into this body: not a list of these (drf-spectacular
# would otherwise wrap it in a page, as for any list view).
@extend_schema_serializer(many=False)
class SellerLedgerSerializer(serializers.Serializer):
    """The body of `GET /api/seller/ledger/`: a page of entries, every period and the balance."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = LedgerEntrySerializer(many=True)
    periods = LedgerPeriodSerializer(many=True)
    balance = serializers.DecimalField(**MONEY)
