"""What the pure refund-policy tests share: policy version 1's refund terms (the defaults of
orders.models.PolicyVersion), the moment orders are estimated at, and a minutes helper."""

import datetime as dt
from decimal import Decimal as D

from refunds.policy import RefundTerms

T0 = dt.datetime(2026, 11, 20, 19, 0, tzinfo=dt.UTC)  # estimated delivery (and delivery)

TERMS = RefundTerms(
    quality_window_pickup_minutes=30,
    quality_window_delivery_minutes=60,
    late_partial_minutes=30,
    late_full_minutes=60,
    late_auto_refund_minutes=120,
    late_partial_percent=D("50"),
    late_small_credit=D("2.00"),
    weather_blocks_automatic=False,
    ready_late_full_minutes=120,
)


def minutes(m, s=0) -> dt.timedelta:
    return dt.timedelta(minutes=m, seconds=s)
