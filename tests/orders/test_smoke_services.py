from decimal import Decimal

import pytest

from refunds.services.execution import refund_order
from tests.conftest import advance, place_order, refunds_processed


@pytest.mark.django_db
def test_place_and_deliver_and_refund(buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2})
    assert order.total == Decimal("27.99")
    order = advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    assert order.status == "delivered"
    refunds = refund_order(
        order_id=order.pk,
        amount=Decimal("27.99"),
        method="original",
        idempotency_key="t1",
        actor=None,
        role="policy",
        reason="test",
    )
    assert [r.status for r in refunds] == ["pending"]
    assert refunds_processed() == {"succeeded": 1}
