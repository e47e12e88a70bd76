"""Cancellation policy (D-6, L-2.1, L-2.2, K-B1..3, K-S1..3) as tables of exact figures and
properties. Pure functions: no database."""

import datetime as dt
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.models import Order
from orders.policy import (
    MIN_EXPLANATION_LENGTH,
    RESTAURANT_CANCELLABLE,
    BuyerCancellationFacts,
    CancellationDecision,
    CancelOutcome,
    RestaurantCancelReason,
    cancellation_fee,
    decide_buyer_cancellation,
    decide_restaurant_cancellation,
)

S = Order.Status
ACCEPTED_AT = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
WINDOW_MINUTES = 5
WINDOW_ENDS_AT = ACCEPTED_AT + dt.timedelta(minutes=WINDOW_MINUTES)
PAID = D("30.50")  # JOURNEYS "Cancel late": 15 % = 4.58 (4.575 half-up), 25.92 back
ZERO = D("0.00")


def facts(
    status,
    *,
    accepted_at=ACCEPTED_AT,
    window=WINDOW_MINUTES,
    fee="15",
    bounds=("10", "20"),
    paid=PAID,
    **extra,
):
    return BuyerCancellationFacts(
        status=str(status),
        accepted_at=accepted_at,
        window_minutes=window,
        fee_percent=D(fee),
        fee_min_percent=D(bounds[0]),
        fee_max_percent=D(bounds[1]),
        amount_paid=D(paid),
        **{"refundable": D(paid), **extra},
    )


# -- 1. the buyer table: every state x timing x fee -------------------------------------------

# timing: (accepted_at, now). "no acceptance yet" has no accepted_at at all.
TIMINGS = {
    "no acceptance yet": (None, ACCEPTED_AT - dt.timedelta(minutes=3)),
    "1 s before the window ends": (ACCEPTED_AT, WINDOW_ENDS_AT - dt.timedelta(seconds=1)),
    "exactly at the window's end": (ACCEPTED_AT, WINDOW_ENDS_AT),
    "after the window": (ACCEPTED_AT, WINDOW_ENDS_AT + dt.timedelta(minutes=1)),
}
INSIDE = {"1 s before the window ends"}

# the restaurant's fee -> (fee, refund) on 30.50 with the version's bounds 10-20 %
FEES = {
    "5": ("3.05", "27.45"),  # below the bounds: held to 10 %
    "10": ("3.05", "27.45"),
    "15": ("4.58", "25.92"),  # 4.575 rounds half-up
    "20": ("6.10", "24.40"),
    "25": ("6.10", "24.40"),  # above the bounds: held to 20 %
}

# every status -> what the buyer gets, whatever the time, outside `accepted`
REFUSED_BY_STATUS = {
    S.CANCELLATION_REQUESTED: ("already_requested", ("L-2.1",)),
    S.PREPARING: ("preparation_started", ("L-2.1",)),
    S.READY: ("preparation_started", ("L-2.1",)),
    S.OUT_FOR_DELIVERY: ("preparation_started", ("L-2.1",)),
    S.DELIVERED: ("order_delivered", ("L-2.1", "L-4.1")),
    S.PICKED_UP: ("order_delivered", ("L-2.1", "L-4.1")),
    S.SERVED: ("order_delivered", ("L-2.1", "L-4.1")),
    S.CLOSED: ("order_delivered", ("L-2.1", "L-4.1")),
    S.CANCELLED: ("order_closed", ("L-2.1",)),
    S.MISSING: ("order_closed", ("L-2.1",)),
    S.UNDELIVERABLE: ("order_closed", ("L-2.1",)),
}


def expected_buyer(status, timing, fee):
    """(outcome, fee, refund, clauses, code, window_ends_at) for one row of the D-6 table."""
    if status == S.PLACED:
        return (CancelOutcome.CANCEL_NOW, ZERO, PAID, ("L-2.1", "K-B3"), "free_cancellation", None)
    if status == S.ACCEPTED:
        if timing in INSIDE:
            fee_amount, refund = FEES[fee]
            return (
                CancelOutcome.REQUEST,
                D(fee_amount),
                D(refund),
                ("K-B1", "L-2.1"),
                "cancellation_request",
                WINDOW_ENDS_AT,
            )
        return (CancelOutcome.REFUSED, ZERO, ZERO, ("K-B1",), "window_passed", WINDOW_ENDS_AT)
    code, clauses = REFUSED_BY_STATUS[status]  # a new status must be added to this table
    return (CancelOutcome.REFUSED, ZERO, ZERO, clauses, code, None)


BUYER_ROWS = [
    pytest.param(status, timing, fee, id=f"{status.value} | {timing} | fee {fee} %")
    for status in S
    for timing in TIMINGS
    for fee in FEES
    # The state machine stamps accepted_at on `accept` (Order.accept): no accepted order
    # without an acceptance time exists, so that pairing is not a row of the table.
    if not (status == S.ACCEPTED and timing == "no acceptance yet")
]


def test_buyer_table_covers_every_status():
    assert {p.values[0] for p in BUYER_ROWS} == set(S)
    assert set(REFUSED_BY_STATUS) | {S.PLACED, S.ACCEPTED} == set(S)


@pytest.mark.parametrize(("status", "timing", "fee"), BUYER_ROWS)
def test_buyer_cancellation_table(status, timing, fee):
    accepted_at, now = TIMINGS[timing]
    decision = decide_buyer_cancellation(facts(status, accepted_at=accepted_at, fee=fee), now=now)

    outcome, fee_amount, refund, clauses, code, window_ends_at = expected_buyer(status, timing, fee)
    assert decision.outcome == outcome
    assert decision.fee == fee_amount
    assert decision.refund == refund
    assert decision.clauses == clauses
    assert decision.code == code
    assert decision.window_ends_at == window_ends_at
    assert decision.allowed is (outcome != CancelOutcome.REFUSED)
    assert decision.requires_restaurant_approval is (outcome == CancelOutcome.REQUEST)
    assert decision.fee + decision.refund == (PAID if decision.allowed else ZERO)


def test_journeys_example_is_what_the_buyer_reads():
    decision = decide_buyer_cancellation(
        facts(S.ACCEPTED), now=ACCEPTED_AT + dt.timedelta(minutes=2)
    )
    assert decision.detail == (
        "The restaurant must approve; cancelling costs 4.58, you get 25.92 back."
    )


def test_free_cancellation_says_the_full_refund():
    decision = decide_buyer_cancellation(facts(S.PLACED, accepted_at=None), now=ACCEPTED_AT)
    assert decision.detail == "Free to cancel until the restaurant accepts: full refund of 30.50."


def test_window_passed_names_the_restaurants_window():
    decision = decide_buyer_cancellation(
        facts(S.ACCEPTED, window=12), now=ACCEPTED_AT + dt.timedelta(minutes=12)
    )
    assert decision.code == "window_passed"
    assert decision.detail == "The restaurant's 12-minute cancellation window has passed."


@pytest.mark.parametrize(
    ("fee", "bounds", "expected"),
    [
        pytest.param("15", ("10", "20"), "4.58", id="inside the bounds"),
        pytest.param("5", ("10", "20"), "3.05", id="below: held to the minimum"),
        pytest.param("25", ("10", "20"), "6.10", id="above: held to the maximum"),
        pytest.param("12.5", ("10", "20"), "3.81", id="fractional percent 3.8125"),
        pytest.param("15", ("15", "15"), "4.58", id="single-point bounds"),
        pytest.param("0", ("0", "0"), "0.00", id="a version without a fee"),
        pytest.param("100", ("0", "100"), "30.50", id="the whole amount"),
    ],
)
def test_cancellation_fee(fee, bounds, expected):
    assert cancellation_fee(PAID, facts(S.ACCEPTED, fee=fee, bounds=bounds)) == D(expected)


@pytest.mark.parametrize(
    ("paid", "expected"),
    [
        pytest.param("0.10", "0.02", id="0.015 rounds up"),
        pytest.param("0.30", "0.05", id="0.045 rounds up"),
        pytest.param("0.03", "0.00", id="0.0045 rounds down"),
        pytest.param("0.00", "0.00", id="nothing paid"),
    ],
)
def test_cancellation_fee_rounds_half_up_to_the_cent(paid, expected):
    assert cancellation_fee(D(paid), facts(S.ACCEPTED, paid=paid)) == D(expected)


def test_a_request_the_restaurant_denied_cannot_be_made_again():
    decision = decide_buyer_cancellation(
        facts(S.ACCEPTED, previously_denied=True), now=ACCEPTED_AT + dt.timedelta(minutes=1)
    )
    assert (decision.outcome, decision.code, decision.clauses) == (
        CancelOutcome.REFUSED,
        "request_denied",
        ("K-B1", "L-2.1"),
    )
    assert (decision.fee, decision.refund, decision.window_ends_at) == (ZERO, ZERO, WINDOW_ENDS_AT)


# -- 2. properties of the money ---------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=10000, places=2)
percents = st.decimals(min_value=0, max_value=100, places=2)
bounds_pairs = st.tuples(percents, percents).map(sorted)
windows = st.integers(min_value=1, max_value=120)


def has_cents(amount):
    return amount.as_tuple().exponent == -2


@given(paid=amounts, fee=percents, bounds=bounds_pairs, window=windows, data=st.data())
def test_request_inside_the_window_splits_what_was_paid(paid, fee, bounds, window, data):
    seconds_in = data.draw(st.integers(min_value=0, max_value=window * 60 - 1))
    decision = decide_buyer_cancellation(
        facts(S.ACCEPTED, window=window, fee=fee, bounds=bounds, paid=paid),
        now=ACCEPTED_AT + dt.timedelta(seconds=seconds_in),
    )
    assert decision.outcome == CancelOutcome.REQUEST
    assert ZERO <= decision.refund <= paid
    assert decision.fee + decision.refund == paid
    assert has_cents(decision.fee)
    assert has_cents(decision.refund)
    held = min(max(fee, bounds[0]), bounds[1])
    assert decision.fee == (paid * held / 100).quantize(D("0.01"), rounding=ROUND_HALF_UP)


@given(paid=amounts, fee=percents, bounds=bounds_pairs)
def test_placed_is_always_a_full_refund(paid, fee, bounds):
    decision = decide_buyer_cancellation(
        facts(S.PLACED, accepted_at=None, fee=fee, bounds=bounds, paid=paid), now=ACCEPTED_AT
    )
    assert decision.outcome == CancelOutcome.CANCEL_NOW
    assert decision.refund == paid
    assert decision.fee == ZERO
    assert has_cents(decision.fee)


refused_cases = st.one_of(
    st.tuples(st.sampled_from(sorted(REFUSED_BY_STATUS)), st.integers(0, 10_000)),
    st.tuples(st.just(S.ACCEPTED), st.integers(WINDOW_MINUTES * 60, 10_000)),
)


@given(paid=amounts, fee=percents, bounds=bounds_pairs, case=refused_cases)
def test_a_refused_cancellation_moves_no_money(paid, fee, bounds, case):
    status, seconds_after_acceptance = case
    decision = decide_buyer_cancellation(
        facts(status, fee=fee, bounds=bounds, paid=paid),
        now=ACCEPTED_AT + dt.timedelta(seconds=seconds_after_acceptance),
    )
    assert decision.outcome == CancelOutcome.REFUSED
    assert decision.refund == ZERO
    assert decision.fee == ZERO


@given(window=windows, seconds=st.integers(min_value=-60, max_value=200 * 60))
def test_the_window_is_half_open(window, seconds):
    decision = decide_buyer_cancellation(
        facts(S.ACCEPTED, window=window), now=ACCEPTED_AT + dt.timedelta(seconds=seconds)
    )
    assert decision.allowed is (seconds < window * 60)
    assert decision.window_ends_at == ACCEPTED_AT + dt.timedelta(minutes=window)


# -- 3. the restaurant table: every state x reason x explanation -------------------------------

GOODWILL = D("5.00")
REASONS = [
    RestaurantCancelReason.ITEM_UNAVAILABLE,
    RestaurantCancelReason.TECHNICAL_ISSUE,
    RestaurantCancelReason.CANNOT_FULFILL,
    RestaurantCancelReason.OPERATING_HOURS,
    "change_of_mind",  # not a reason of L-2.2
    "",
]
EXPLANATIONS = {
    "empty": "",
    "only whitespace": " \n\t          ",
    "9 chars after strip": "   Sold out! \n",
    "10 chars": "Oven broke",
    "10 chars padded": "\t Oven broke  \n",
}
LONG_ENOUGH = {"10 chars", "10 chars padded"}
RESTAURANT_CLAUSES = ("L-2.2", "K-S1", "K-S2", "K-S3")


def expected_restaurant(status, reason, explanation):
    if status not in {S.PLACED, S.ACCEPTED, S.PREPARING, S.READY}:
        return "not_cancellable"
    if reason not in RestaurantCancelReason.LABELS:
        return "invalid_reason"
    if explanation in LONG_ENOUGH:
        return "restaurant_cancellation"
    return "explanation_required"


RESTAURANT_ROWS = [
    pytest.param(status, reason, name, id=f"{status.value} | {reason or 'no reason'} | {name}")
    for status in S
    for reason in REASONS
    for name in EXPLANATIONS
]


def test_restaurant_constants_match_the_design():
    assert {"placed", "accepted", "preparing", "ready"} == RESTAURANT_CANCELLABLE
    assert set(RestaurantCancelReason.LABELS) == {
        "item_unavailable",
        "technical_issue",
        "cannot_fulfill",
        "operating_hours",
    }
    assert MIN_EXPLANATION_LENGTH == 10
    assert len(EXPLANATIONS["9 chars after strip"].strip()) == MIN_EXPLANATION_LENGTH - 1
    assert len(EXPLANATIONS["10 chars padded"].strip()) == MIN_EXPLANATION_LENGTH


@pytest.mark.parametrize(("status", "reason", "explanation"), RESTAURANT_ROWS)
def test_restaurant_cancellation_table(status, reason, explanation):
    decision = decide_restaurant_cancellation(
        status=str(status),
        reason=reason,
        explanation=EXPLANATIONS[explanation],
        refundable=PAID,
        goodwill=GOODWILL,
    )
    code = expected_restaurant(status, reason, explanation)
    allowed = code == "restaurant_cancellation"
    assert decision.code == code
    assert decision.allowed is allowed
    assert decision.refund == (PAID if allowed else ZERO)
    assert decision.goodwill_credit == (GOODWILL if allowed else ZERO)
    assert decision.clauses == RESTAURANT_CLAUSES


def test_restaurant_cancellation_tells_the_buyer_the_money():
    decision = decide_restaurant_cancellation(
        status="accepted",
        reason=RestaurantCancelReason.TECHNICAL_ISSUE,
        explanation="Our card terminal is down.",
        refundable=D("0.00"),
        goodwill=D("0.00"),
    )
    assert (decision.allowed, decision.refund, decision.goodwill_credit) == (True, ZERO, ZERO)
    assert decision.detail == "The buyer gets 0.00 back in full and a goodwill credit of 0.00."


@given(paid=amounts, goodwill=amounts, status=st.sampled_from(sorted(RESTAURANT_CANCELLABLE)))
def test_restaurant_cancellation_refunds_everything_paid(paid, goodwill, status):
    decision = decide_restaurant_cancellation(
        status=status,
        reason=RestaurantCancelReason.ITEM_UNAVAILABLE,
        explanation="The last sea bass went to table 4.",
        refundable=paid,
        goodwill=goodwill,
    )
    assert (decision.allowed, decision.refund, decision.goodwill_credit) == (True, paid, goodwill)


# -- 4. decision properties ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "allowed", "requires_approval"),
    [
        pytest.param(CancelOutcome.CANCEL_NOW, True, False, id="cancel now"),
        pytest.param(CancelOutcome.REQUEST, True, True, id="request"),
        pytest.param(CancelOutcome.REFUSED, False, False, id="refused"),
    ],
)
def test_decision_flags_per_outcome(outcome, allowed, requires_approval):
    decision = CancellationDecision(outcome, ZERO, ZERO, ("L-2.1",), "code", "detail")
    assert decision.allowed is allowed
    assert decision.requires_restaurant_approval is requires_approval


@pytest.mark.parametrize("window", [1, 5, 30, 90])
@pytest.mark.parametrize(
    "accepted_at",
    [
        pytest.param(ACCEPTED_AT, id="on the minute"),
        pytest.param(dt.datetime(2026, 12, 31, 23, 58, 7, 123456, tzinfo=dt.UTC), id="year end"),
    ],
)
def test_window_ends_at_is_acceptance_plus_the_window(window, accepted_at):
    inside = decide_buyer_cancellation(
        facts(S.ACCEPTED, accepted_at=accepted_at, window=window), now=accepted_at
    )
    passed = decide_buyer_cancellation(
        facts(S.ACCEPTED, accepted_at=accepted_at, window=window),
        now=accepted_at + dt.timedelta(days=1),
    )
    ends = accepted_at + dt.timedelta(minutes=window)
    assert (inside.outcome, inside.window_ends_at) == (CancelOutcome.REQUEST, ends)
    assert (passed.outcome, passed.window_ends_at) == (CancelOutcome.REFUSED, ends)
