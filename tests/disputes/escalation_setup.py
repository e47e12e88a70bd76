"""Decisions to escalate, set up through the services (L-8.1, K-DR)."""

import io
from decimal import Decimal as D

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from orders.models import Order
from orders.services.cancellation import (
    order_cancel_by_buyer,
    order_cancellation_approve,
    order_cancellation_deny,
)
from refunds.models import RefundRequest
from refunds.services.decisions import (
    refund_request_approve,
    refund_request_deny,
    refund_request_partially_approve,
)
from refunds.services.requests import refund_request_submit
from tests.conftest import advance, place_order


def photo(name="cold.png", colour="blue") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def delivered_order(buyer, restaurant, menu) -> Order:
    """2 Margherita + 1 Tiramisu + 2.99 delivery = 33.99, all by card."""
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 1})
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def tiramisu_claim(buyer, restaurant, menu) -> RefundRequest:
    """The tiramisu (6.00 of the 33.99) was missing: under review."""
    order = delivered_order(buyer, restaurant, menu)
    return refund_request_submit(
        order_id=order.pk,
        actor=buyer,
        reason="missing_items",
        items=[(order.items.get(name="Tiramisu").pk, 1)],
        description="No tiramisu in the bag",
    )


def denied_request(buyer, restaurant, menu, agent) -> RefundRequest:
    request = tiramisu_claim(buyer, restaurant, menu)
    return refund_request_deny(
        request_id=request.pk, actor=agent, explanation="The restaurant photo shows it packed."
    )


def approved_request(buyer, restaurant, menu, agent) -> RefundRequest:
    request = tiramisu_claim(buyer, restaurant, menu)
    return refund_request_approve(request_id=request.pk, actor=agent)


def partially_approved_request(buyer, restaurant, menu, agent, amount=D("4.00")):
    request = tiramisu_claim(buyer, restaurant, menu)
    return refund_request_partially_approve(
        request_id=request.pk, actor=agent, amount=amount, explanation="Half a tiramisu was there."
    )


def cancellation_denied_order(buyer, restaurant, partner) -> Order:
    """Accepted, the buyer asked to cancel, the restaurant said no; then delivered."""
    order = advance(place_order(buyer, restaurant), "accept")
    order_cancel_by_buyer(order_id=order.pk, actor=buyer)
    order_cancellation_deny(order_id=order.pk, actor=partner, reason="Already in the oven.")
    return advance(order, "start_preparation", "mark_ready", "dispatch", "deliver")


def cancellation_fee_order(buyer, restaurant, partner) -> Order:
    """Accepted, the buyer asked to cancel, the restaurant approved and kept its fee."""
    order = advance(place_order(buyer, restaurant), "accept")
    order_cancel_by_buyer(order_id=order.pk, actor=buyer)
    return order_cancellation_approve(order_id=order.pk, actor=partner)
