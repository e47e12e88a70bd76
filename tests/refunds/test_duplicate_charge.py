"""L-3.1 duplicate charge: the second charge is found in the processor's records and cancelled in
full; the order's own payment stands, and nothing is refunded from it."""

from decimal import Decimal as D

import pytest
from django.db import transaction

from orders.gateway import get_gateway
from refunds.models import Refund, RefundRequest
from refunds.services.duplicates import duplicate_charge_settle
from refunds.services.requests import refund_request_submit
from refunds.tasks import settle_duplicate_charge
from tests.conftest import advance, place_order, processor_charges

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 1}, checkout_key=key(buyer, "a"))
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def key(buyer, name):
    return f"checkout:{buyer.pk}:{name}"


def charged_twice(buyer, restaurant, menu):
    """A second checkout of the same cart charged the card and then failed to become an order
    (e.g. a double submission): the processor holds a charge lojix never recorded."""
    with pytest.raises(RuntimeError):
        _place_then_fail(buyer, restaurant, menu)


def _place_then_fail(buyer, restaurant, menu):
    with transaction.atomic():
        place_order(buyer, restaurant, {menu["Margherita"]: 1}, checkout_key=key(buyer, "b"))
        raise RuntimeError("the second placement failed after its charge")


def claim(order, buyer):
    return refund_request_submit(
        order_id=order.pk, actor=buyer, reason="duplicate_charge", description="Charged twice."
    )


def test_the_second_charge_is_cancelled_and_the_order_payment_stands(
    delivered, buyer, restaurant, menu
):
    charged_twice(buyer, restaurant, menu)
    request = claim(delivered, buyer)
    assert (request.status, request.suggested_code) == ("under_review", "duplicate_charge_check")

    assert settle_duplicate_charge(request.pk) == "cancelled"
    assert duplicate_charge_settle(request_id=request.pk) == "skipped"  # run twice: once

    request.refresh_from_db()
    assert (request.status, request.decided_amount, request.resolution) == (
        "refunded",
        D("15.49"),
        "charge_cancelled",
    )
    gateway = get_gateway()
    assert gateway.find(idempotency_key=key(buyer, "b")).status == "voided"
    assert gateway.find(idempotency_key=key(buyer, "a")).status == "succeeded"
    assert not Refund.objects.exists()  # the order's own payment is not refunded
    assert [e.name for e in request.events.all()][-2:] == ["approve", "mark_refunded"]


def test_no_second_charge_leaves_the_claim_with_support(delivered, buyer):
    request = claim(delivered, buyer)

    assert duplicate_charge_settle(request_id=request.pk) == "not_found"

    request.refresh_from_db()
    assert (request.status, request.suggested_code) == (
        "under_review",
        "duplicate_charge_not_found",
    )
    assert request.events.filter(name="duplicate_charge_not_found").count() == 1
    assert not Refund.objects.exists()
    assert [c.status for c in processor_charges()] == ["succeeded"]


def test_a_charge_reconciliation_already_voided_counts_as_cancelled(
    delivered, buyer, restaurant, menu
):
    charged_twice(buyer, restaurant, menu)
    orphan = get_gateway().find(idempotency_key=key(buyer, "b"))
    get_gateway().void(
        charge_reference=orphan.reference, idempotency_key=f"void:{orphan.reference}"
    )
    request = claim(delivered, buyer)

    assert duplicate_charge_settle(request_id=request.pk) == "cancelled"
    assert RefundRequest.objects.get(pk=request.pk).decided_amount == D("15.49")


def test_another_buyers_charge_is_not_taken_for_a_duplicate(
    delivered, buyer, other_buyer, restaurant, menu
):
    charged_twice(other_buyer, restaurant, menu)
    request = claim(delivered, buyer)

    assert duplicate_charge_settle(request_id=request.pk) == "not_found"
    assert get_gateway().find(idempotency_key=key(other_buyer, "b")).status == "succeeded"
