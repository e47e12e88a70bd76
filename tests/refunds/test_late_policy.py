"""The late sweep's decision (L-6.1, L-3.1, L-10, D-6), table-driven, no database: a delivery
whose estimate was T0, judged at `now`."""

import dataclasses
from decimal import Decimal as D

import pytest

from refunds.policy import (
    LATE_SWEPT_STATUSES,
    LateAction,
    LateOrderFacts,
    late_auto_refund_decision,
    problem_reporting_open,
)
from tests.refunds.policy_terms import T0, TERMS, minutes


def order(**overrides) -> LateOrderFacts:
    facts = dict(
        fulfillment="delivery",
        status="out_for_delivery",
        estimated_delivery_at=T0,
        delivered_at=None,
        delay_cause="none",
        refundable=D("33.99"),
        auto_late_refunded=False,
        under_force_majeure=False,
    )
    facts.update(overrides)
    return LateOrderFacts(**facts)


REFUND = (LateAction.REFUND, "late_auto_refund", "33.99", ("L-6.1", "L-3.1"))
TABLE = [
    pytest.param(order(), minutes(121), REFUND, id="out-121min-refunded"),
    pytest.param(
        order(), minutes(120), (LateAction.SKIP, "not_late_enough", "0", ("L-6.1",)), id="120min"
    ),
    pytest.param(
        order(), minutes(119), (LateAction.SKIP, "not_late_enough", "0", ("L-6.1",)), id="119min"
    ),
    pytest.param(order(), minutes(120, 1), REFUND, id="out-120min-1s-refunded"),
    pytest.param(order(status="preparing"), minutes(150), REFUND, id="kitchen-150min-refunded"),
    pytest.param(order(status="placed"), minutes(150), REFUND, id="placed-150min-refunded"),
    pytest.param(order(status="missing"), minutes(150), REFUND, id="missing-150min-refunded"),
    pytest.param(
        order(status="delivered", delivered_at=T0 + minutes(125)),
        minutes(600),
        REFUND,
        id="delivered-125min-late-refunded",
    ),
    pytest.param(
        order(status="delivered", delivered_at=T0 + minutes(100)),
        minutes(600),
        (LateAction.SKIP, "not_late_enough", "0", ("L-6.1",)),
        id="delivered-100min-late-judged-by-delivery-not-now",
    ),
    pytest.param(
        order(fulfillment="pickup", estimated_delivery_at=None),
        minutes(600),
        (LateAction.SKIP, "not_swept", "0", ("L-6.1",)),
        id="pickup-never",
    ),
    pytest.param(
        order(fulfillment="dine_in", estimated_delivery_at=None),
        minutes(600),
        (LateAction.SKIP, "not_swept", "0", ("L-6.1",)),
        id="dine_in-never",
    ),
    pytest.param(
        order(status="cancelled"),
        minutes(600),
        (LateAction.SKIP, "not_swept", "0", ("L-6.1",)),
        id="cancelled-never",
    ),
    pytest.param(
        order(status="undeliverable"),
        minutes(600),
        (LateAction.SKIP, "not_swept", "0", ("L-6.1",)),
        id="undeliverable-by-its-own-rule",
    ),
    pytest.param(
        order(estimated_delivery_at=None, status="placed"),
        minutes(600),
        (LateAction.SKIP, "not_swept", "0", ("L-6.1",)),
        id="no-estimate-yet",
    ),
    pytest.param(
        order(auto_late_refunded=True),
        minutes(300),
        (LateAction.SKIP, "already_refunded", "0", ("L-6.1",)),
        id="once-per-order",
    ),
    pytest.param(
        order(refundable=D("0.00")),
        minutes(300),
        (LateAction.SKIP, "nothing_to_refund", "0", ("L-7.2",)),
        id="already-refunded-in-full",
    ),
    pytest.param(
        order(refundable=D("12.40")),
        minutes(300),
        (LateAction.REFUND, "late_auto_refund", "12.40", ("L-6.1", "L-3.1")),
        id="what-is-still-refundable",
    ),
    pytest.param(order(delay_cause="weather"), minutes(121), REFUND, id="weather-still-automatic"),
    pytest.param(order(delay_cause="traffic"), minutes(121), REFUND, id="traffic-still-automatic"),
    pytest.param(
        order(under_force_majeure=True),
        minutes(300),
        (LateAction.HOLD, "force_majeure", "0", ("L-10",)),
        id="force-majeure-held-for-agents",
    ),
    pytest.param(
        order(under_force_majeure=True, refundable=D("0.00")),
        minutes(300),
        (LateAction.SKIP, "nothing_to_refund", "0", ("L-7.2",)),
        id="force-majeure-but-refunded-in-full-not-held",
    ),
]


@pytest.mark.parametrize(("facts", "late", "expected"), TABLE)
def test_late_sweep_table(facts, late, expected):
    decision = late_auto_refund_decision(facts, TERMS, now=T0 + late)
    action, code, amount, clauses = expected
    assert (decision.action, decision.code, decision.amount, decision.clauses) == (
        action,
        code,
        D(amount),
        clauses,
    )


@pytest.mark.parametrize("cause", ["weather", "traffic"])
def test_the_version_may_keep_weather_and_traffic_delays_out_of_the_automatic_refund(cause):
    blocking = dataclasses.replace(TERMS, weather_blocks_automatic=True)
    decision = late_auto_refund_decision(order(delay_cause=cause), blocking, now=T0 + minutes(300))
    assert (decision.action, decision.code, decision.clauses) == (
        LateAction.SKIP,
        "weather_blocks_automatic",
        ("L-3.3", "L-6.1"),
    )
    other = late_auto_refund_decision(order(delay_cause="courier"), blocking, now=T0 + minutes(121))
    assert other.action == LateAction.REFUND


def test_the_threshold_comes_from_the_pinned_version():
    version = dataclasses.replace(TERMS, late_auto_refund_minutes=90)
    assert late_auto_refund_decision(order(), version, now=T0 + minutes(91)).action == "refund"
    assert late_auto_refund_decision(order(), version, now=T0 + minutes(90)).action == "skip"


def test_the_buyer_is_told_why_with_the_minutes_and_clauses():
    decision = late_auto_refund_decision(order(), TERMS, now=T0 + minutes(121, 30))
    assert decision.minutes_late == 121
    assert decision.detail == (
        "Your order is 121 minutes late, over 120 minutes: a full refund of what you paid, "
        "automatically (L-6.1, L-3.1)."
    )


def test_the_swept_states_are_every_unfinished_delivery_state_but_cancelled_plus_delivered():
    assert {
        "placed",
        "accepted",
        "cancellation_requested",
        "preparing",
        "ready",
        "out_for_delivery",
        "missing",
        "delivered",
    } == LATE_SWEPT_STATUSES


@pytest.mark.parametrize(
    ("status", "fulfillment", "late", "expected"),
    [
        ("placed", "delivery", minutes(-1), False),
        ("preparing", "delivery", minutes(0), False),
        ("preparing", "delivery", minutes(1), True),
        ("accepted", "delivery", minutes(150), True),
        ("cancellation_requested", "delivery", minutes(5), True),
        ("preparing", "pickup", minutes(150), False),
        ("ready", "pickup", minutes(0), True),
        ("out_for_delivery", "delivery", minutes(-30), True),
        ("delivered", "delivery", minutes(-30), True),
        ("cancelled", "delivery", minutes(150), False),
    ],
)
def test_the_order_page_offers_report_a_problem(status, fulfillment, late, expected):
    assert (
        problem_reporting_open(
            status=status,
            fulfillment=fulfillment,
            estimated_delivery_at=T0 if fulfillment == "delivery" else None,
            now=T0 + late,
        )
        is expected
    )


@pytest.mark.parametrize(
    ("facts", "late", "final"),
    [
        pytest.param(order(), minutes(121), True, id="refunded"),
        pytest.param(order(), minutes(100), False, id="on-its-way-not-yet"),
        pytest.param(
            order(status="delivered", delivered_at=T0 + minutes(100)),
            minutes(300),
            True,
            id="delivered-under-two-hours",
        ),
        pytest.param(order(refundable=D("0.00")), minutes(300), True, id="nothing-left"),
        pytest.param(order(auto_late_refunded=True), minutes(300), True, id="claim-refunded-it"),
        pytest.param(order(under_force_majeure=True), minutes(300), False, id="held"),
        pytest.param(
            order(status="delivered", delivered_at=T0 + minutes(200), under_force_majeure=True),
            minutes(300),
            False,
            id="delivered-but-held",
        ),
    ],
)
def test_the_sweep_is_done_with_an_order_once_its_decision_cannot_change(facts, late, final):
    assert late_auto_refund_decision(facts, TERMS, now=T0 + late).final is final
