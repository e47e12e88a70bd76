"""Refund eligibility policy (D-6, D-7; L-3, L-5, L-6, L-7.2, L-10) as tables of exact figures
and properties. Pure functions: no database.

The base case is one delivery order, delivered on time at T0 and judged ten minutes later:
2 x Margherita 12.50 and 1 x Garlic bread 6.00 (subtotal 31.00), delivery 2.99, paid 33.99.
"""

import dataclasses
import datetime as dt
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refunds.policy import (
    FULL_REASONS,
    NO_REFUND_REASONS,
    PARTIAL_REASONS,
    QUALITY_REASONS,
    REASON_CLAUSE,
    REASON_GROUPS,
    RESTAURANT_CAUSED,
    SAFETY_REASONS,
    Claim,
    ClaimLine,
    Eligibility,
    OrderRefundFacts,
    Reason,
    RefundTerms,
    Route,
    allocate_to_lines,
    claim_eligibility,
    duplicate_charge_found,
    lateness,
    partial_amount,
    quality_window_closes_at,
)
from tests.refunds.policy_terms import T0, TERMS, minutes

R = Reason
ZERO = D("0.00")
NOW = T0 + dt.timedelta(minutes=10)
MARGHERITA, GARLIC = 1, 2


LINES = (
    ClaimLine(MARGHERITA, D("12.50"), 2, is_promotional=False),
    ClaimLine(GARLIC, D("6.00"), 1, is_promotional=False),
)


def terms(**overrides) -> RefundTerms:
    return dataclasses.replace(TERMS, **overrides)


def delivery(**overrides) -> OrderRefundFacts:
    """A delivery order, delivered on time at T0."""
    facts = dict(
        status="delivered",
        fulfillment="delivery",
        delivered_at=T0,
        picked_up_at=None,
        closed_at=None,
        ready_at=T0 - minutes(25),
        estimated_delivery_at=T0,
        estimated_ready_at=T0 - minutes(25),
        delay_cause="none",
        subtotal=D("31.00"),
        delivery_fee=D("2.99"),
        discount_amount=ZERO,
        amount_paid=D("33.99"),
        refundable=D("33.99"),
        lines=LINES,
    )
    facts.update(overrides)
    return OrderRefundFacts(**facts)


def pickup(**overrides) -> OrderRefundFacts:
    """A pickup order, ready on time and picked up at T0; no delivery fee, paid 31.00."""
    facts = dict(
        status="picked_up",
        fulfillment="pickup",
        delivered_at=None,
        picked_up_at=T0,
        ready_at=T0 - minutes(5),
        estimated_ready_at=T0 - minutes(5),
        estimated_delivery_at=None,
        delivery_fee=ZERO,
        amount_paid=D("31.00"),
        refundable=D("31.00"),
    )
    facts.update(overrides)
    return delivery(**facts)


def dine_in(**overrides) -> OrderRefundFacts:
    """A dine-in order, served at T0 and not closed yet (the guest is still there)."""
    facts = dict(status="served", fulfillment="dine_in", picked_up_at=None, closed_at=None)
    facts.update(overrides)
    return pickup(**facts)


def claim(reason, **overrides) -> Claim:
    """A complete claim: one Margherita named, a photo and a description."""
    facts = dict(
        reason=reason,
        items=((MARGHERITA, 1),),
        description="The base was burnt black.",
        photo_count=1,
    )
    facts.update(overrides)
    return Claim(**facts)


def decide(reason_or_claim, order=None, *, now=NOW, policy=TERMS) -> Eligibility:
    if isinstance(reason_or_claim, str):
        reason_or_claim = claim(reason_or_claim)
    return claim_eligibility(
        reason_or_claim, order if order is not None else delivery(), policy, now=now
    )


def refused(result: Eligibility, code: str, clauses: tuple[str, ...], route=Route.REFUSED):
    assert (result.outcome, result.route, result.amount, result.code, result.clauses) == (
        "none",
        route,
        ZERO,
        code,
        clauses,
    )
    assert result.detail
    assert result.opens_allergen_incident is False


ALL_REASONS = tuple(sorted(Reason.LABELS))
RECEIVED_ONLY = tuple(
    sorted(
        set(ALL_REASONS)
        - NO_REFUND_REASONS
        - {R.DUPLICATE_CHARGE, R.NOT_DELIVERED, R.LATE_DELIVERY, R.SIGNIFICANT_DELAY}
    )
)


# -- 0. the reason sets are the D-6 table --------------------------------------------------------


def test_reason_sets_are_the_design_table():
    assert {
        "not_delivered",
        "wrong_order",
        "unsafe_food",
        "severe_quality",
        "duplicate_charge",
        "significant_delay",
    } == FULL_REASONS
    assert {
        "missing_items",
        "incorrect_items",
        "item_quality",
        "temperature",
        "preparation_error",
        "packaging_spillage",
    } == PARTIAL_REASONS
    assert {
        "change_of_mind",
        "wrong_address",
        "customer_unavailable",
        "taste_preference",
        "appearance_variation",
        "spice_preference",
        "weather_traffic_delay",
    } == NO_REFUND_REASONS
    assert {"allergic_reaction", "health_concern"} == SAFETY_REASONS
    assert {
        "severe_quality",
        "unsafe_food",
        "item_quality",
        "temperature",
        "preparation_error",
        "packaging_spillage",
    } == QUALITY_REASONS
    assert len(ALL_REASONS) == 22


def test_every_reason_is_in_exactly_one_group_with_its_clause():
    grouped = [reason for _, _, reasons in REASON_GROUPS for reason in reasons]
    assert sorted(grouped) == sorted(Reason.LABELS)
    assert len(grouped) == len(set(grouped))
    assert [(title, clause) for title, clause, _ in REASON_GROUPS] == [
        ("Full refund", "L-3.1"),
        ("Part of the order", "L-3.2"),
        ("Late delivery", "L-6.1"),
        ("Health and safety", "L-10"),
        ("Not covered", "L-3.3"),
    ]
    expected = {
        **dict.fromkeys(FULL_REASONS, "L-3.1"),
        **dict.fromkeys(PARTIAL_REASONS, "L-3.2"),
        **dict.fromkeys(NO_REFUND_REASONS, "L-3.3"),
        **dict.fromkeys(SAFETY_REASONS, "L-10"),
        R.LATE_DELIVERY: "L-6.1",
    }
    assert expected == REASON_CLAUSE


def test_restaurant_caused_reasons_are_its_quality_order_and_safety_failures():
    # L-9: restaurant error is deducted; lateness, non-delivery and duplicate charges are not.
    assert QUALITY_REASONS | SAFETY_REASONS <= RESTAURANT_CAUSED
    assert {R.WRONG_ORDER, R.MISSING_ITEMS, R.INCORRECT_ITEMS} <= RESTAURANT_CAUSED
    assert not RESTAURANT_CAUSED & (
        NO_REFUND_REASONS
        | {R.DUPLICATE_CHARGE, R.NOT_DELIVERED, R.LATE_DELIVERY, R.SIGNIFICANT_DELAY}
    )


# -- 1. the reason table: a received, undiscounted order inside its windows, with evidence -----

FULL_REVIEW = ("full", Route.REVIEW, "33.99", ("L-3.1",), "full_refund")
PARTIAL_ONE_MARGHERITA = ("partial", Route.REVIEW, "12.50", ("L-3.2",), "partial_refund")
SAFETY = ("full", Route.AUTOMATIC, "33.99", ("L-10",), "safety_full_refund")
LATE_AUTO = ("full", Route.AUTOMATIC, "33.99", ("L-6.1", "L-3.1"), "late_auto_refund")
ON_TIME = {}
LATE_121 = {"delivered_at": T0 + minutes(121)}

REASON_TABLE = [
    pytest.param(R.NOT_DELIVERED, ON_TIME, FULL_REVIEW, id="not_delivered-full-review"),
    pytest.param(R.WRONG_ORDER, ON_TIME, FULL_REVIEW, id="wrong_order-full-review"),
    pytest.param(R.UNSAFE_FOOD, ON_TIME, FULL_REVIEW, id="unsafe_food-full-review"),
    pytest.param(R.SEVERE_QUALITY, ON_TIME, FULL_REVIEW, id="severe_quality-full-review"),
    pytest.param(
        R.DUPLICATE_CHARGE,
        ON_TIME,
        ("partial", Route.REVIEW, "0.00", ("L-3.1",), "duplicate_charge_check"),
        id="duplicate_charge-check-the-processor",
    ),
    pytest.param(
        R.SIGNIFICANT_DELAY,
        ON_TIME,
        ("none", Route.REFUSED, "0.00", ("L-3.1", "L-6.1"), "not_late_enough"),
        id="significant_delay-on_time-refused",
    ),
    pytest.param(
        R.SIGNIFICANT_DELAY, LATE_121, LATE_AUTO, id="significant_delay-121min-full-automatic"
    ),
    *[
        pytest.param(reason, ON_TIME, PARTIAL_ONE_MARGHERITA, id=f"{reason}-partial-review")
        for reason in sorted(PARTIAL_REASONS)
    ],
    pytest.param(
        R.LATE_DELIVERY,
        ON_TIME,
        ("none", Route.REVIEW, "0.00", ("L-6.1",), "late_small"),
        id="late_delivery-on_time-small",
    ),
    pytest.param(
        R.LATE_DELIVERY,
        {"delivered_at": T0 + minutes(45)},
        ("partial", Route.REVIEW, "17.00", ("L-6.1",), "late_partial"),
        id="late_delivery-45min-partial",
    ),
    pytest.param(R.LATE_DELIVERY, LATE_121, LATE_AUTO, id="late_delivery-121min-full-automatic"),
    pytest.param(R.ALLERGIC_REACTION, ON_TIME, SAFETY, id="allergic_reaction-full-automatic"),
    pytest.param(R.HEALTH_CONCERN, ON_TIME, SAFETY, id="health_concern-full-automatic"),
    *[
        pytest.param(
            reason,
            ON_TIME,
            ("none", Route.REFUSED, "0.00", ("L-3.3",), "not_covered"),
            id=f"{reason}-refused",
        )
        for reason in sorted(NO_REFUND_REASONS)
    ],
]


@pytest.mark.parametrize(("reason", "order_overrides", "expected"), REASON_TABLE)
def test_reason_table(reason, order_overrides, expected):
    result = decide(reason, delivery(**order_overrides))
    outcome, route, amount, clauses, code = expected
    assert (result.outcome, result.route, result.amount, result.clauses, result.code) == (
        outcome,
        route,
        D(amount),
        clauses,
        code,
    )
    assert result.detail
    assert result.opens_allergen_incident is (reason == R.ALLERGIC_REACTION)


def test_reason_table_covers_every_reason():
    assert {param.values[0] for param in REASON_TABLE} == set(Reason.LABELS)


@pytest.mark.parametrize("reason", sorted(NO_REFUND_REASONS))
@pytest.mark.parametrize("order", [delivery(), pickup(), dine_in()], ids=lambda o: o.fulfillment)
def test_no_refund_reasons_are_refused_at_once_without_evidence(reason, order):
    result = decide(claim(reason, items=(), description="", photo_count=0), order)
    refused(result, "not_covered", ("L-3.3",))


def test_no_refund_texts_say_why_and_spice_points_to_preparation_error():
    details = {reason: decide(reason).detail for reason in NO_REFUND_REASONS}
    assert len(set(details.values())) == len(NO_REFUND_REASONS)  # each says its own why
    assert details[R.SPICE_PREFERENCE] == (
        "Spice and seasoning preferences are not refunded; a dish prepared wrongly is "
        "(choose 'Prepared incorrectly')."
    )
    assert Reason.LABELS[R.PREPARATION_ERROR] == "Prepared incorrectly"
    # ... and that reason is the one that refunds the dish.
    assert decide(R.PREPARATION_ERROR).amount == D("12.50")


def test_an_unknown_reason_is_invalid_input():
    refused(decide("bad_vibes"), "invalid_reason", (), route=Route.INVALID)


# -- 2. the L-5.1 windows, per fulfilment type, for every quality reason ------------------------

QUALITY = sorted(QUALITY_REASONS)
FULL_QUALITY = {R.SEVERE_QUALITY, R.UNSAFE_FOOD}


def assert_open(result, reason, paid):
    if reason in FULL_QUALITY:
        assert (result.outcome, result.route, result.amount, result.code) == (
            "full",
            Route.REVIEW,
            D(paid),
            "full_refund",
        )
    else:
        assert (result.outcome, result.route, result.amount, result.code) == (
            "partial",
            Route.REVIEW,
            D("12.50"),
            "partial_refund",
        )


def assert_window_closed(result, closes_text):
    refused(result, "report_window_closed", ("L-5.1",))
    assert closes_text in result.detail


@pytest.mark.parametrize("reason", QUALITY)
def test_delivery_window_one_hour_after_delivery(reason):
    order = delivery(delivered_at=T0)
    assert quality_window_closes_at(order, TERMS) == T0 + minutes(60)
    assert_open(decide(reason, order, now=T0), reason, "33.99")
    assert_open(decide(reason, order, now=T0 + minutes(59, 59)), reason, "33.99")
    closed = decide(reason, order, now=T0 + minutes(60))
    assert_window_closed(
        closed, "within 60 minutes of delivery; this window closed at 20:00 on 20 Nov"
    )
    assert_window_closed(decide(reason, order, now=T0 + dt.timedelta(days=2)), "20:00 on 20 Nov")


@pytest.mark.parametrize("reason", QUALITY)
def test_pickup_window_thirty_minutes_after_pickup(reason):
    order = pickup(picked_up_at=T0)
    assert quality_window_closes_at(order, TERMS) == T0 + minutes(30)
    assert_open(decide(reason, order, now=T0 + minutes(29, 59)), reason, "31.00")
    closed = decide(reason, order, now=T0 + minutes(30))
    assert_window_closed(
        closed, "within 30 minutes of pickup; this window closed at 19:30 on 20 Nov"
    )


@pytest.mark.parametrize("reason", QUALITY)
def test_dine_in_window_open_until_the_order_is_closed(reason):
    served = dine_in(status="served", closed_at=None)
    assert quality_window_closes_at(served, TERMS) is None
    assert_open(decide(reason, served, now=T0 + minutes(5)), reason, "31.00")
    assert_open(decide(reason, served, now=T0 + dt.timedelta(hours=5)), reason, "31.00")

    closed_at = T0 + minutes(40)
    closed = dine_in(status="closed", closed_at=closed_at)
    assert quality_window_closes_at(closed, TERMS) == closed_at
    assert_open(decide(reason, closed, now=closed_at - dt.timedelta(seconds=1)), reason, "31.00")
    assert_window_closed(
        decide(reason, closed, now=closed_at),
        "before leaving the restaurant; this window closed at 19:40 on 20 Nov",
    )
    assert_window_closed(decide(reason, closed, now=closed_at + minutes(1)), "19:40 on 20 Nov")


@pytest.mark.parametrize(
    ("order", "window", "closes"),
    [
        pytest.param(delivery(), {"quality_window_delivery_minutes": 90}, 90, id="delivery-90"),
        pytest.param(pickup(), {"quality_window_pickup_minutes": 45}, 45, id="pickup-45"),
    ],
)
def test_windows_come_from_the_pinned_policy_version(order, window, closes):
    policy = terms(**window)
    assert quality_window_closes_at(order, policy) == T0 + minutes(closes)
    just_inside = decide(R.ITEM_QUALITY, order, now=T0 + minutes(closes - 1, 59), policy=policy)
    assert just_inside.code == "partial_refund"
    refused(
        decide(R.ITEM_QUALITY, order, now=T0 + minutes(closes), policy=policy),
        "report_window_closed",
        ("L-5.1",),
    )


def test_window_not_running_before_handover():
    assert (
        quality_window_closes_at(delivery(status="out_for_delivery", delivered_at=None), TERMS)
        is None
    )
    assert quality_window_closes_at(pickup(status="ready", picked_up_at=None), TERMS) is None


@pytest.mark.parametrize(
    "reason", [R.WRONG_ORDER, R.NOT_DELIVERED, R.MISSING_ITEMS, R.INCORRECT_ITEMS, R.HEALTH_CONCERN]
)
def test_only_quality_reasons_have_a_reporting_window(reason):
    result = decide(reason, delivery(), now=T0 + dt.timedelta(days=3))
    assert result.code != "report_window_closed"
    assert result.amount > ZERO


def test_a_closed_window_is_reported_before_missing_evidence():
    late_and_bare = claim(R.TEMPERATURE, photo_count=0, description="")
    refused(decide(late_and_bare, now=T0 + minutes(61)), "report_window_closed", ("L-5.1",))


# -- 3. L-5.2 evidence and L-3.2 items ----------------------------------------------------------


@pytest.mark.parametrize("reason", QUALITY)
@pytest.mark.parametrize(
    ("photos", "description"),
    [
        pytest.param(0, "The base was burnt black.", id="no_photo"),
        pytest.param(1, "", id="no_description"),
        pytest.param(2, "   \n\t", id="blank_description"),
        pytest.param(0, "", id="nothing"),
    ],
)
def test_quality_reasons_need_a_photo_and_a_description(reason, photos, description):
    result = decide(claim(reason, photo_count=photos, description=description))
    refused(result, "evidence_required", ("L-5.2",), route=Route.INVALID)


@pytest.mark.parametrize(
    "reason", [R.MISSING_ITEMS, R.INCORRECT_ITEMS, R.WRONG_ORDER, R.NOT_DELIVERED]
)
def test_other_reasons_need_no_photo(reason):
    result = decide(claim(reason, photo_count=0, description=""))
    assert result.route == Route.REVIEW
    assert result.amount in (D("12.50"), D("33.99"))


@pytest.mark.parametrize("reason", sorted(PARTIAL_REASONS))
def test_partial_reasons_need_items(reason):
    refused(decide(claim(reason, items=())), "items_required", ("L-3.2",), route=Route.INVALID)


@pytest.mark.parametrize(
    ("items", "code"),
    [
        pytest.param(((99, 1),), "unknown_item", id="item_not_in_order"),
        pytest.param(((MARGHERITA, 0),), "invalid_quantity", id="zero"),
        pytest.param(((MARGHERITA, -1),), "invalid_quantity", id="negative"),
        pytest.param(((MARGHERITA, 3),), "invalid_quantity", id="more_than_ordered"),
        pytest.param(((MARGHERITA, 1), (GARLIC, 2)), "invalid_quantity", id="second_line_too_many"),
    ],
)
def test_named_items_must_be_in_the_order_in_ordered_quantities(items, code):
    refused(decide(claim(R.MISSING_ITEMS, items=items)), code, ("L-3.2",), route=Route.INVALID)


def test_the_whole_ordered_quantity_may_be_named():
    result = decide(claim(R.MISSING_ITEMS, items=((MARGHERITA, 2), (GARLIC, 1))))
    assert result.amount == D("31.00")  # the lines, not the delivery fee (D-7)
    assert result.detail == "The paid share of the items named (L-3.2)."


# -- 4. late tiers at their edges (L-6.1, D-6) ----------------------------------------------------


def late_by(delta, **overrides):
    return delivery(delivered_at=T0 + delta, **overrides)


def judge_late(reason, order, *, policy=TERMS):
    return decide(
        claim(reason, items=(), photo_count=0), order, now=T0 + minutes(200), policy=policy
    )


@pytest.mark.parametrize(
    "late", [dt.timedelta(0), minutes(-10), minutes(10), minutes(29, 59)], ids=str
)
def test_under_thirty_minutes_late_no_refund_but_a_small_credit(late):
    result = judge_late(R.LATE_DELIVERY, late_by(late))
    assert (result.outcome, result.route, result.amount, result.clauses, result.code) == (
        "none",
        Route.REVIEW,
        ZERO,
        ("L-6.1",),
        "late_small",
    )
    assert result.promo_credit == D("2.00")
    assert result.account_credit_alternative is False


@pytest.mark.parametrize("late", [minutes(30), minutes(45), minutes(60)], ids=str)
def test_thirty_to_sixty_minutes_late_half_back_or_account_credit(late):
    result = judge_late(R.LATE_DELIVERY, late_by(late))
    # 50 % of 33.99 = 16.995, half-up
    assert (result.outcome, result.route, result.amount, result.clauses, result.code) == (
        "partial",
        Route.REVIEW,
        D("17.00"),
        ("L-6.1",),
        "late_partial",
    )
    assert result.account_credit_alternative is True
    assert result.promo_credit == ZERO
    assert "50 % back, or the same as account credit" in result.detail


@pytest.mark.parametrize("late", [minutes(60, 1), minutes(90), minutes(120)], ids=str)
def test_over_sixty_minutes_late_full_refund_on_request(late):
    result = judge_late(R.LATE_DELIVERY, late_by(late))
    assert (result.outcome, result.route, result.amount, result.clauses, result.code) == (
        "full",
        Route.REVIEW,
        D("33.99"),
        ("L-6.1", "L-3.1"),
        "late_full",
    )


@pytest.mark.parametrize("late", [dt.timedelta(0), minutes(61), minutes(90), minutes(120)], ids=str)
def test_significant_delay_is_only_over_two_hours(late):
    result = judge_late(R.SIGNIFICANT_DELAY, late_by(late))
    refused(result, "not_late_enough", ("L-3.1", "L-6.1"))
    assert "choose 'The delivery was late' instead" in result.detail


@pytest.mark.parametrize("late", [minutes(120, 1), minutes(180)], ids=str)
@pytest.mark.parametrize("reason", [R.SIGNIFICANT_DELAY, R.LATE_DELIVERY])
def test_over_two_hours_late_a_claim_is_refunded_at_once_as_the_sweep_would(reason, late):
    result = judge_late(reason, late_by(late))
    assert (result.outcome, result.route, result.amount, result.code, result.clauses) == (
        "full",
        Route.AUTOMATIC,
        D("33.99"),
        "late_auto_refund",
        ("L-6.1", "L-3.1"),
    )
    assert "without review" in result.detail


@pytest.mark.parametrize("cause", ["weather", "traffic"])
@pytest.mark.parametrize(
    ("blocks", "expected"), [(False, "late_auto_refund"), (True, "weather_traffic_delay")]
)
def test_weather_over_two_hours_is_automatic_unless_the_version_blocks_it(cause, blocks, expected):
    policy = terms(weather_blocks_automatic=blocks)
    result = judge_late(
        R.SIGNIFICANT_DELAY, late_by(minutes(121), delay_cause=cause), policy=policy
    )
    assert result.code == expected


def test_under_force_majeure_a_late_claim_waits_for_an_agent():
    result = judge_late(R.SIGNIFICANT_DELAY, late_by(minutes(121), under_force_majeure=True))
    assert (result.route, result.code, result.amount) == (Route.REVIEW, "late_full", D("33.99"))


@pytest.mark.parametrize("cause", ["weather", "traffic"])
@pytest.mark.parametrize("reason", [R.LATE_DELIVERY, R.SIGNIFICANT_DELAY])
@pytest.mark.parametrize(
    "late", [minutes(10), minutes(30), minutes(45), minutes(61), minutes(120)], ids=str
)
def test_weather_and_traffic_remove_the_request_tiers(cause, reason, late):
    result = judge_late(reason, late_by(late, delay_cause=cause))
    refused(result, "weather_traffic_delay", ("L-3.3", "L-6.1"))
    assert result.promo_credit == ZERO


@pytest.mark.parametrize("cause", ["none", "restaurant", "courier", "platform"])
def test_other_delay_causes_keep_the_tiers(cause):
    assert judge_late(R.LATE_DELIVERY, late_by(minutes(45), delay_cause=cause)).amount == D("17.00")
    assert judge_late(R.LATE_DELIVERY, late_by(minutes(61), delay_cause=cause)).code == "late_full"


def test_late_figures_come_from_the_pinned_policy_version():
    policy = terms(
        late_partial_minutes=20,
        late_full_minutes=40,
        late_partial_percent=D("25"),
        late_small_credit=D("3.00"),
    )
    small = judge_late(R.LATE_DELIVERY, late_by(minutes(19, 59)), policy=policy)
    assert (small.code, small.promo_credit) == ("late_small", D("3.00"))
    partial = judge_late(R.LATE_DELIVERY, late_by(minutes(20)), policy=policy)
    assert (partial.code, partial.amount) == ("late_partial", D("8.50"))  # 8.4975 half-up
    assert judge_late(R.LATE_DELIVERY, late_by(minutes(40)), policy=policy).code == "late_partial"
    assert judge_late(R.LATE_DELIVERY, late_by(minutes(40, 1)), policy=policy).code == "late_full"


def test_late_amounts_are_bounded_by_what_is_still_refundable():
    partial = judge_late(R.LATE_DELIVERY, late_by(minutes(45), refundable=D("10.00")))
    assert (partial.code, partial.amount) == ("late_partial", D("10.00"))
    half = judge_late(R.LATE_DELIVERY, late_by(minutes(45), refundable=D("20.00")))
    assert half.amount == D("17.00")
    full = judge_late(R.LATE_DELIVERY, late_by(minutes(61), refundable=D("20.00")))
    assert (full.code, full.amount) == ("late_full", D("20.00"))


@pytest.mark.parametrize("status", ["out_for_delivery", "missing", "undeliverable"])
def test_lateness_runs_on_now_while_not_delivered(status):
    order = delivery(status=status, delivered_at=None)
    assert lateness(order, T0 + minutes(45)) == minutes(45)
    assert lateness(order, T0 - minutes(5)) == dt.timedelta(0)
    at = {
        minutes(29, 59): "late_small",
        minutes(30): "late_partial",
        minutes(60): "late_partial",
        minutes(60, 1): "late_full",
    }
    for now_late, code in at.items():
        assert decide(R.LATE_DELIVERY, order, now=T0 + now_late).code == code
    assert decide(R.SIGNIFICANT_DELAY, order, now=T0 + minutes(120)).code == "not_late_enough"
    assert decide(R.SIGNIFICANT_DELAY, order, now=T0 + minutes(120, 1)).code == "late_auto_refund"


def test_lateness_of_a_delivered_order_ignores_now():
    order = late_by(minutes(45))
    assert lateness(order, T0 + dt.timedelta(days=1)) == minutes(45)
    assert lateness(late_by(minutes(-3)), T0) == dt.timedelta(0)


@pytest.mark.parametrize("make", [pickup, dine_in], ids=["pickup", "dine_in"])
@pytest.mark.parametrize("reason", [R.LATE_DELIVERY, R.SIGNIFICANT_DELAY])
def test_pickup_and_dine_in_ready_over_two_hours_late_full_on_request(make, reason):
    estimate = T0 - minutes(150)

    def ready_late(delta, **overrides):
        return make(estimated_ready_at=estimate, ready_at=estimate + delta, **overrides)

    for late in (dt.timedelta(0), minutes(29, 59), minutes(45), minutes(61), minutes(120)):
        result = decide(claim(reason, items=()), ready_late(late))
        refused(result, "not_late_enough", ("L-6.1",))
        assert f"ready {late.seconds // 60} minutes late" in result.detail
    result = decide(claim(reason, items=()), ready_late(minutes(120, 1)))
    assert (result.outcome, result.route, result.amount, result.clauses, result.code) == (
        "full",
        Route.REVIEW,
        D("31.00"),
        ("L-6.1", "L-3.1"),
        "ready_very_late",
    )


@pytest.mark.parametrize("make", [pickup, dine_in], ids=["pickup", "dine_in"])
def test_a_ready_order_not_yet_collected_counts_lateness_to_now(make):
    estimate = T0 - minutes(150)
    order = make(status="ready", estimated_ready_at=estimate, ready_at=None, picked_up_at=None)
    assert decide(R.LATE_DELIVERY, order, now=estimate + minutes(120)).code == "not_late_enough"
    assert decide(R.LATE_DELIVERY, order, now=estimate + minutes(120, 1)).code == "ready_very_late"


def test_ready_late_threshold_comes_from_the_policy_version():
    estimate = T0 - minutes(150)
    order = pickup(estimated_ready_at=estimate, ready_at=estimate + minutes(90, 1))
    policy = terms(ready_late_full_minutes=90)
    assert decide(R.LATE_DELIVERY, order, policy=policy).code == "ready_very_late"
    assert decide(R.LATE_DELIVERY, order).code == "not_late_enough"


# -- 5. discounted orders and promotional items (L-3.3 last line) -------------------------------

DISCOUNTED = dict(discount_amount=D("5.00"), amount_paid=D("28.99"), refundable=D("28.99"))
PROMO_GARLIC = (
    ClaimLine(MARGHERITA, D("12.50"), 2, is_promotional=False),
    ClaimLine(GARLIC, D("6.00"), 1, is_promotional=True),
)


@pytest.mark.parametrize(
    ("reason", "overrides"),
    [
        pytest.param(R.NOT_DELIVERED, {}, id="not_delivered"),
        pytest.param(R.WRONG_ORDER, {}, id="wrong_order"),
        pytest.param(R.SIGNIFICANT_DELAY, LATE_121, id="significant_delay"),
        pytest.param(R.LATE_DELIVERY, {"delivered_at": T0 + minutes(45)}, id="late_delivery_45"),
        pytest.param(R.LATE_DELIVERY, LATE_121, id="late_delivery_121"),
        pytest.param(R.MISSING_ITEMS, {}, id="missing_items"),
        pytest.param(R.INCORRECT_ITEMS, {}, id="incorrect_items"),
    ],
)
def test_a_discounted_order_is_refunded_only_for_quality_or_safety(reason, overrides):
    result = decide(reason, delivery(**DISCOUNTED, **overrides), now=T0 + minutes(150))
    refused(result, "discounted_order", ("L-3.3",))
    assert result.detail == "Discounted orders are refunded only for quality or safety issues."


@pytest.mark.parametrize(
    ("reason", "amount", "route"),
    [
        # 12.50 x 28.99 / 33.99 = 10.6612... -> 10.66
        *[
            pytest.param(r, "10.66", Route.REVIEW, id=r)
            for r in sorted(QUALITY_REASONS - FULL_QUALITY)
        ],
        pytest.param(R.SEVERE_QUALITY, "28.99", Route.REVIEW, id=R.SEVERE_QUALITY),
        pytest.param(R.UNSAFE_FOOD, "28.99", Route.REVIEW, id=R.UNSAFE_FOOD),
        pytest.param(R.ALLERGIC_REACTION, "28.99", Route.AUTOMATIC, id=R.ALLERGIC_REACTION),
        pytest.param(R.HEALTH_CONCERN, "28.99", Route.AUTOMATIC, id=R.HEALTH_CONCERN),
    ],
)
def test_quality_and_safety_reasons_still_refund_a_discounted_order(reason, amount, route):
    result = decide(reason, delivery(**DISCOUNTED))
    assert (result.route, result.amount) == (route, D(amount))


def test_a_duplicate_charge_is_not_blocked_by_a_discount():
    result = decide(R.DUPLICATE_CHARGE, delivery(**DISCOUNTED))
    assert (result.route, result.code, result.checks_processor_for_duplicate) == (
        Route.REVIEW,
        "duplicate_charge_check",
        True,
    )


@pytest.mark.parametrize("reason", [R.MISSING_ITEMS, R.INCORRECT_ITEMS])
def test_promotional_items_alone_are_not_refunded_for_non_quality_reasons(reason):
    result = decide(claim(reason, items=((GARLIC, 1),)), delivery(lines=PROMO_GARLIC))
    refused(result, "promotional_items", ("L-3.3",))
    assert result.detail == "Promotional items are refunded only for quality or safety issues."


@pytest.mark.parametrize("reason", [R.MISSING_ITEMS, R.INCORRECT_ITEMS])
def test_mixed_claims_refund_only_the_regular_items_for_non_quality_reasons(reason):
    items = ((MARGHERITA, 1), (GARLIC, 1))
    result = decide(claim(reason, items=items), delivery(lines=PROMO_GARLIC))
    assert (result.outcome, result.amount, result.code) == ("partial", D("12.50"), "partial_refund")
    # the same claim without the promotion: both lines
    assert decide(claim(reason, items=items)).amount == D("18.50")


@pytest.mark.parametrize("reason", sorted(QUALITY_REASONS - FULL_QUALITY))
def test_quality_reasons_refund_promotional_items_too(reason):
    order = delivery(lines=PROMO_GARLIC)
    assert decide(claim(reason, items=((GARLIC, 1),)), order).amount == D("6.00")
    both = decide(claim(reason, items=((MARGHERITA, 1), (GARLIC, 1))), order)
    assert both.amount == D("18.50")


def test_a_discounted_order_with_promotional_items_for_a_quality_reason():
    order = delivery(lines=PROMO_GARLIC, **DISCOUNTED)
    result = decide(claim(R.TEMPERATURE, items=((MARGHERITA, 1), (GARLIC, 1))), order)
    assert result.amount == D("15.78")  # 10.66 + 6.00 x 28.99 / 33.99 = 5.1173... -> 5.12


# -- 6. partial amounts with exact Decimal figures (D-7) ----------------------------------------

# Paid 28.99 through 5.00 of promotional credit: not a discounted order.
PROMO_CREDIT_PAID = dict(amount_paid=D("28.99"), refundable=D("28.99"))


@pytest.mark.parametrize(
    ("items", "paid", "amount"),
    [
        pytest.param(((MARGHERITA, 1),), "33.99", "12.50", id="one_margherita-paid_in_full"),
        pytest.param(((MARGHERITA, 2),), "33.99", "25.00", id="two_margheritas-paid_in_full"),
        pytest.param(((GARLIC, 1),), "33.99", "6.00", id="garlic-paid_in_full"),
        pytest.param(((MARGHERITA, 2), (GARLIC, 1)), "33.99", "31.00", id="all-no_delivery_fee"),
        # 12.50 x 28.99 / 33.99 = 10.66122...
        pytest.param(((MARGHERITA, 1),), "28.99", "10.66", id="one_margherita-promo_credit"),
        # 25.00 x 28.99 / 33.99 = 21.32244...
        pytest.param(((MARGHERITA, 2),), "28.99", "21.32", id="two_margheritas-promo_credit"),
        # 6.00 x 28.99 / 33.99 = 5.11738...
        pytest.param(((GARLIC, 1),), "28.99", "5.12", id="garlic-promo_credit"),
        pytest.param(((MARGHERITA, 2), (GARLIC, 1)), "28.99", "26.44", id="all-promo_credit"),
    ],
)
def test_partial_amount_is_each_lines_share_of_what_was_paid(items, paid, amount):
    order = delivery(amount_paid=D(paid), refundable=D(paid))
    assert partial_amount(order, items) == D(amount)
    result = decide(claim(R.MISSING_ITEMS, items=items), order)
    assert (result.outcome, result.route, result.amount, result.clauses) == (
        "partial",
        Route.REVIEW,
        D(amount),
        ("L-3.2",),
    )
    assert result.detail == "The paid share of the items named (L-3.2)."


# Pickup, subtotal 20.00, no fee, 10.00 paid after 10.00 of promotional credit: a share of half.
HALVES = pickup(
    lines=(
        ClaimLine(1, D("10.25"), 1, is_promotional=False),
        ClaimLine(2, D("0.25"), 1, is_promotional=False),
        ClaimLine(3, D("9.50"), 1, is_promotional=False),
    ),
    subtotal=D("20.00"),
    amount_paid=D("10.00"),
    refundable=D("10.00"),
)


def test_rounding_is_half_up_per_line():
    assert partial_amount(HALVES, ((1, 1),)) == D("5.13")  # 5.125; half-even would give 5.12
    assert partial_amount(HALVES, ((2, 1),)) == D("0.13")  # 0.125
    assert partial_amount(HALVES, ((3, 1),)) == D("4.75")
    assert partial_amount(HALVES, ((1, 1), (2, 1))) == D("5.26")  # per line, not 5.25 on the sum


def test_partial_amount_is_capped_at_what_is_still_refundable():
    # per line 5.13 + 0.13 + 4.75 = 10.01: never more than the 10.00 paid
    assert partial_amount(HALVES, ((1, 1), (2, 1), (3, 1))) == D("10.00")
    already_refunded = delivery(refundable=D("5.00"))
    assert partial_amount(already_refunded, ((MARGHERITA, 1),)) == D("5.00")
    assert decide(R.MISSING_ITEMS, already_refunded).amount == D("5.00")


def test_partial_amount_of_nothing_is_zero():
    assert partial_amount(delivery(), ()) == ZERO
    free = delivery(subtotal=ZERO, delivery_fee=ZERO, lines=())
    assert partial_amount(free, ()) == ZERO


cents = st.integers(min_value=1, max_value=99_99).map(lambda c: D(c) / 100)


@st.composite
def paid_orders(draw):
    prices = draw(st.lists(cents, min_size=1, max_size=6))
    lines = tuple(
        ClaimLine(i, price, draw(st.integers(1, 5)), is_promotional=False)
        for i, price in enumerate(prices, start=1)
    )
    subtotal = sum((line.unit_price * line.quantity for line in lines), ZERO)
    fee = draw(st.integers(0, 9_99).map(lambda c: D(c) / 100))
    base = subtotal + fee
    paid = draw(st.integers(1, int(base * 100)).map(lambda c: D(c) / 100))
    refundable = draw(st.integers(1, int(paid * 100)).map(lambda c: D(c) / 100))
    return delivery(
        lines=lines, subtotal=subtotal, delivery_fee=fee, amount_paid=paid, refundable=refundable
    )


@given(order=paid_orders(), data=st.data())
@settings(max_examples=300)
def test_a_partial_amount_never_exceeds_what_is_refundable_or_paid(order, data):
    chosen = data.draw(st.lists(st.sampled_from(order.lines), min_size=1, unique=True))
    items = tuple((line.order_item_id, data.draw(st.integers(1, line.quantity))) for line in chosen)
    amount = partial_amount(order, items)
    assert ZERO <= amount <= order.refundable <= order.amount_paid
    assert amount == amount.quantize(D("0.01"))
    assert decide(claim(R.MISSING_ITEMS, items=items), order).amount == amount


@given(order=paid_orders())
@settings(max_examples=300)
def test_all_lines_in_full_are_the_lines_share_of_the_amount_paid(order):
    order = dataclasses.replace(order, refundable=order.amount_paid)
    items = tuple((line.order_item_id, line.quantity) for line in order.lines)
    exact = order.amount_paid * order.subtotal / (order.subtotal + order.delivery_fee)
    amount = partial_amount(order, items)
    assert abs(amount - exact) <= D("0.01") * len(items)
    assert amount <= order.amount_paid


# -- 7. automatic routes, nothing to refund, state -----------------------------------------------


@pytest.mark.parametrize("reason", sorted(SAFETY_REASONS))
@pytest.mark.parametrize("order", [delivery(), pickup(), dine_in()], ids=lambda o: o.fulfillment)
def test_safety_reasons_are_a_full_refund_at_once(reason, order):
    # no photo, no description, days later: food safety comes first (L-10)
    bare = claim(reason, items=(), photo_count=0, description="")
    result = decide(bare, order, now=T0 + dt.timedelta(days=2))
    assert (result.outcome, result.route, result.amount, result.clauses, result.code) == (
        "full",
        Route.AUTOMATIC,
        order.refundable,
        ("L-10",),
        "safety_full_refund",
    )
    assert result.opens_allergen_incident is (reason == R.ALLERGIC_REACTION)


def test_a_safety_refund_returns_what_is_left():
    result = decide(R.HEALTH_CONCERN, delivery(refundable=D("21.49")))
    assert result.amount == D("21.49")


@pytest.mark.parametrize(
    ("extra", "route", "amount", "code"),
    [
        ("0.00", Route.REVIEW, "0.00", "duplicate_charge_not_found"),
        ("0.01", Route.AUTOMATIC, "0.01", "duplicate_charge_cancelled"),
        ("33.99", Route.AUTOMATIC, "33.99", "duplicate_charge_cancelled"),
        ("67.98", Route.AUTOMATIC, "67.98", "duplicate_charge_cancelled"),
    ],
)
def test_a_duplicate_charge_found_at_the_processor_is_cancelled_in_full(extra, route, amount, code):
    result = duplicate_charge_found(D(extra))
    assert (result.outcome, result.route, result.amount, result.clauses, result.code) == (
        "partial",
        route,
        D(amount),
        ("L-3.1",),
        code,
    )


@pytest.mark.parametrize("status", ["placed", "accepted", "preparing", "ready", "out_for_delivery"])
def test_a_duplicate_charge_needs_no_received_order(status):
    result = decide(R.DUPLICATE_CHARGE, delivery(status=status, delivered_at=None))
    assert (result.route, result.code) == (Route.REVIEW, "duplicate_charge_check")


@pytest.mark.parametrize("reason", sorted(set(ALL_REASONS) - {R.ALLERGIC_REACTION}))
def test_nothing_to_refund_once_everything_went_back(reason):
    result = decide(reason, delivery(refundable=ZERO))
    assert (result.outcome, result.route, result.amount, result.code, result.clauses) == (
        "none",
        Route.REFUSED,
        ZERO,
        "nothing_to_refund",
        ("L-7.2",),
    )


@pytest.mark.parametrize("reason", sorted(set(ALL_REASONS) - NO_REFUND_REASONS))
def test_a_cancelled_order_is_refunded_by_its_cancellation(reason):
    # a fee was kept (refundable > 0), yet a request cannot reopen the cancellation
    order = delivery(status="cancelled", delivered_at=None, refundable=D("5.10"))
    refused(decide(reason, order), "order_cancelled", ("L-2.1", "L-2.2"))


NOT_RECEIVED = {
    "delivery": ["placed", "accepted", "cancellation_requested", "preparing", "ready",
                 "out_for_delivery", "missing", "undeliverable"],
    "pickup": ["placed", "accepted", "cancellation_requested", "preparing", "ready"],
    "dine_in": ["placed", "accepted", "cancellation_requested", "preparing", "ready"],
}  # fmt: skip
MAKERS = {"delivery": delivery, "pickup": pickup, "dine_in": dine_in}


def unreceived(fulfillment, status):
    return MAKERS[fulfillment](
        status=status, delivered_at=None, picked_up_at=None, closed_at=None, ready_at=None
    )


@pytest.mark.parametrize("reason", RECEIVED_ONLY)
@pytest.mark.parametrize(
    ("fulfillment", "status"),
    [(f, s) for f, statuses in NOT_RECEIVED.items() for s in statuses],
    ids=lambda v: v,
)
def test_reasons_about_the_food_need_a_received_order(reason, fulfillment, status):
    result = decide(reason, unreceived(fulfillment, status))
    refused(result, "order_not_received", (REASON_CLAUSE[reason],))
    assert result.detail == "This reason applies once you have received the order."


@pytest.mark.parametrize("reason", [R.NOT_DELIVERED, R.LATE_DELIVERY, R.SIGNIFICANT_DELAY])
@pytest.mark.parametrize("status", ["placed", "accepted", "cancellation_requested", "preparing"])
def test_delivery_reasons_need_the_order_on_its_way_or_its_estimate_passed(reason, status):
    result = decide(reason, unreceived("delivery", status), now=T0)
    refused(result, "order_not_received", (REASON_CLAUSE[reason],))
    after_estimate = decide(reason, unreceived("delivery", status), now=T0 + minutes(1))
    assert after_estimate.code != "order_not_received"


@pytest.mark.parametrize("status", ["placed", "accepted", "preparing", "ready"])
def test_a_delivery_still_in_the_kitchen_long_past_its_estimate_is_open_to_claims(status):
    order = unreceived("delivery", status)
    assert decide(R.NOT_DELIVERED, order, now=T0 + minutes(150)).code == "full_refund"
    for reason in (R.LATE_DELIVERY, R.SIGNIFICANT_DELAY):
        result = decide(reason, order, now=T0 + minutes(150))
        assert (result.route, result.code) == (Route.AUTOMATIC, "late_auto_refund")
    assert decide(R.LATE_DELIVERY, order, now=T0 + minutes(45)).code == "late_partial"


def test_a_delivery_without_an_estimate_is_not_yet_late():
    order = unreceived("delivery", "placed")
    order = dataclasses.replace(order, estimated_delivery_at=None)
    assert decide(R.LATE_DELIVERY, order, now=T0 + minutes(150)).code == "order_not_received"


@pytest.mark.parametrize("status", ["out_for_delivery", "missing", "undeliverable"])
def test_not_delivered_and_late_apply_to_an_order_still_out(status):
    order = unreceived("delivery", status)
    result = decide(R.NOT_DELIVERED, order)
    assert (result.outcome, result.route, result.amount, result.code) == (
        "full",
        Route.REVIEW,
        D("33.99"),
        "full_refund",
    )
    assert decide(R.LATE_DELIVERY, order, now=T0 + minutes(45)).amount == D("17.00")
    assert decide(R.SIGNIFICANT_DELAY, order, now=T0 + minutes(121)).code == "late_auto_refund"


@pytest.mark.parametrize("fulfillment", ["pickup", "dine_in"])
def test_not_delivered_applies_to_a_ready_pickup_or_dine_in_order(fulfillment):
    result = decide(R.NOT_DELIVERED, unreceived(fulfillment, "ready"))
    assert (result.outcome, result.amount, result.code) == ("full", D("31.00"), "full_refund")


@pytest.mark.parametrize(
    "order",
    [delivery(), pickup(), dine_in(), dine_in(status="closed", closed_at=T0 + minutes(20))],
    ids=["delivered", "picked_up", "served", "closed"],
)
def test_every_fulfilled_status_admits_the_food_reasons(order):
    # (quality reasons: their windows are tested above)
    for reason in sorted(set(RECEIVED_ONLY) - QUALITY_REASONS):
        result = decide(reason, order, now=T0 + dt.timedelta(hours=3))
        assert (result.route, result.amount > ZERO) == (
            Route.AUTOMATIC if reason in SAFETY_REASONS else Route.REVIEW,
            True,
        ), reason


# -- 8. every outcome is coherent and carries its clauses ---------------------------------------

STATUSES = {
    "delivery": NOT_RECEIVED["delivery"] + ["delivered", "cancelled"],
    "pickup": NOT_RECEIVED["pickup"] + ["picked_up", "cancelled"],
    "dine_in": NOT_RECEIVED["dine_in"] + ["served", "closed", "cancelled"],
}
offsets = st.integers(min_value=-3 * 3600, max_value=6 * 3600).map(
    lambda s: dt.timedelta(seconds=s)
)


@st.composite
def any_order(draw):
    fulfillment = draw(st.sampled_from(sorted(STATUSES)))
    status = draw(st.sampled_from(STATUSES[fulfillment]))
    accepted = status not in ("placed", "cancelled") or draw(st.booleans())
    done = status in ("delivered", "picked_up", "served", "closed")
    ready = done or status in ("ready", "out_for_delivery", "missing", "undeliverable")
    base = draw(paid_orders())
    promotional = draw(st.sets(st.sampled_from([line.order_item_id for line in base.lines])))
    lines = tuple(
        dataclasses.replace(line, is_promotional=line.order_item_id in promotional)
        for line in base.lines
    )
    discount = draw(st.sampled_from([ZERO, D("5.00")]))
    return dataclasses.replace(
        base,
        status=status,
        fulfillment=fulfillment,
        estimated_ready_at=T0 - minutes(25) if accepted else None,
        estimated_delivery_at=T0 if accepted and fulfillment == "delivery" else None,
        ready_at=T0 - minutes(25) + draw(offsets) if ready else None,
        delivered_at=T0 + draw(offsets) if status == "delivered" else None,
        picked_up_at=T0 + draw(offsets) if status == "picked_up" else None,
        closed_at=T0 + draw(offsets) if status == "closed" else None,
        delivery_fee=base.delivery_fee if fulfillment == "delivery" else ZERO,
        delay_cause=draw(st.sampled_from(["none", "weather", "traffic", "restaurant"])),
        discount_amount=discount,
        refundable=draw(st.sampled_from([base.refundable, ZERO])),
        lines=lines,
    )


@given(order=any_order(), data=st.data())
@settings(max_examples=500)
def test_every_outcome_is_coherent_and_cites_its_clauses(order, data):
    reason = data.draw(st.sampled_from(ALL_REASONS))
    chosen = data.draw(st.lists(st.sampled_from(order.lines), unique=True))
    items = tuple(
        (line.order_item_id, data.draw(st.integers(0, line.quantity + 1))) for line in chosen
    )
    bare = claim(
        reason,
        items=items,
        photo_count=data.draw(st.integers(0, 2)),
        description=data.draw(st.sampled_from(["", " ", "Cold and soggy."])),
    )
    now = T0 + data.draw(offsets) + dt.timedelta(hours=3)
    result = claim_eligibility(bare, order, TERMS, now=now)

    assert result.route in (Route.AUTOMATIC, Route.REVIEW, Route.REFUSED, Route.INVALID)
    assert result.outcome in ("full", "partial", "none")
    assert result.clauses
    assert all(clause.startswith("L-") for clause in result.clauses)
    assert result.detail
    assert result.code
    assert ZERO <= result.amount <= order.refundable
    if result.outcome == "full":
        assert result.amount == order.refundable
    if result.outcome == "none" or result.route in (Route.REFUSED, Route.INVALID):
        assert (result.outcome, result.amount) == ("none", ZERO)
    if result.route == Route.AUTOMATIC and result.code == "late_auto_refund":
        # L-6.1: a delivery over 2 hours late is refunded in full at once, as the sweep would.
        assert reason in (R.LATE_DELIVERY, R.SIGNIFICANT_DELAY)
        assert order.fulfillment == "delivery"
        assert lateness(order, now) > dt.timedelta(minutes=TERMS.late_auto_refund_minutes)
        assert (result.outcome, result.amount) == ("full", order.refundable)
    elif result.route == Route.AUTOMATIC:
        assert reason in SAFETY_REASONS | {R.DUPLICATE_CHARGE}
    if result.opens_allergen_incident:
        assert reason == R.ALLERGIC_REACTION
    if any(not 1 <= q <= line.claimable for line, (_, q) in zip(chosen, items, strict=True)):
        # Lines are checked first, for every reason: a bad line stores nothing (400).
        assert (result.route, result.code) == (Route.INVALID, "invalid_quantity")
        return
    if reason in NO_REFUND_REASONS:
        assert result.route == Route.REFUSED
    if order.refundable == ZERO:
        expected = (
            "allergen_investigation" if reason == R.ALLERGIC_REACTION else "nothing_to_refund"
        )
        assert result.code == expected


# -- 9. found by these tests and fixed in refunds/policy.py -------------------------------------


def test_the_same_item_named_twice_cannot_claim_more_than_was_ordered():
    # Garlic bread x 1 named twice passes the per-entry 1..quantity check: 12.00 for a 6.00 line.
    result = decide(claim(R.MISSING_ITEMS, items=((GARLIC, 1), (GARLIC, 1))))
    assert (result.outcome, result.route, result.amount, result.clauses) == (
        "none",
        Route.INVALID,
        ZERO,
        ("L-3.2",),
    )


@pytest.mark.parametrize("reason", [R.SIGNIFICANT_DELAY, R.LATE_DELIVERY])
@pytest.mark.parametrize("cause", ["weather", "traffic"])
def test_weather_does_not_remove_the_refund_over_two_hours(reason, cause):
    # D-6: weather/traffic "removes the request tiers (L-3.3) but not the automatic refund over
    # 120 min"; weather_blocks_automatic (default False) is never read by the policy.
    order = late_by(minutes(120, 1), delay_cause=cause)
    result = judge_late(reason, order)
    assert (result.outcome, result.amount) == ("full", D("33.99"))
    blocked = judge_late(reason, order, policy=terms(weather_blocks_automatic=True))
    refused(blocked, "weather_traffic_delay", ("L-3.3", "L-6.1"))


def test_an_allergic_reaction_opens_the_investigation_with_nothing_left_to_refund():
    # L-10 "full refund + investigation": the money is gone, the mislabelled allergen is not.
    result = decide(R.ALLERGIC_REACTION, delivery(refundable=ZERO))
    assert result.amount == ZERO
    assert result.opens_allergen_incident is True


# -- 10. claims that add up: lines already refunded (issue 7) -----------------------------------


def taken(margherita=(0, ZERO), garlic=(0, ZERO)) -> tuple[ClaimLine, ...]:
    """LINES with what decided claims already took: (units named, money given back)."""
    return (
        dataclasses.replace(
            LINES[0], refunded_quantity=margherita[0], refunded_amount=margherita[1]
        ),
        dataclasses.replace(LINES[1], refunded_quantity=garlic[0], refunded_amount=garlic[1]),
    )


@pytest.mark.parametrize(
    ("reason", "lines", "items", "code", "amount"),
    [
        pytest.param(
            R.MISSING_ITEMS,
            taken(),
            ((MARGHERITA, 1),),
            "partial_refund",
            D("12.50"),
            id="nothing_taken_yet",
        ),
        pytest.param(
            R.MISSING_ITEMS,
            taken((1, D("12.50"))),
            ((MARGHERITA, 1),),
            "partial_refund",
            D("12.50"),
            id="second_pizza_after_first",
        ),
        pytest.param(
            R.MISSING_ITEMS,
            taken((1, D("20.00"))),
            ((MARGHERITA, 1),),
            "partial_refund",
            D("5.00"),
            id="line_share_less_what_went_back",
        ),
        pytest.param(
            R.MISSING_ITEMS,
            taken((2, D("25.00"))),
            ((MARGHERITA, 1),),
            "item_already_refunded",
            ZERO,
            id="line_used_up",
        ),
        pytest.param(
            R.MISSING_ITEMS,
            taken((1, D("5.00"))),
            ((MARGHERITA, 2),),
            "invalid_quantity",
            ZERO,
            id="more_than_left",
        ),
        pytest.param(
            R.NOT_DELIVERED,
            taken(),
            ((MARGHERITA, 99),),
            "invalid_quantity",
            ZERO,
            id="full_reason_99",
        ),
        pytest.param(
            R.NOT_DELIVERED,
            taken(),
            ((404, 1),),
            "unknown_item",
            ZERO,
            id="full_reason_other_orders_line",
        ),
        pytest.param(
            R.CHANGE_OF_MIND,
            taken(),
            ((MARGHERITA, 0),),
            "invalid_quantity",
            ZERO,
            id="refused_reason_bad_line_still_400",
        ),
        pytest.param(
            R.WRONG_ORDER,
            taken((1, D("12.50"))),
            (),
            "full_refund",
            D("21.49"),
            id="full_claim_after_partial_is_what_is_left",
        ),
    ],
)
def test_claims_count_what_each_line_already_had_back(reason, lines, items, code, amount):
    refundable = D("21.49") if reason == R.WRONG_ORDER else D("33.99")
    result = decide(claim(reason, items=items), delivery(lines=lines, refundable=refundable))
    assert (result.code, result.amount) == (code, amount)
    if amount == ZERO:
        assert result.route == Route.INVALID


@pytest.mark.parametrize(
    ("amount", "caps", "expected"),
    [
        pytest.param(
            D("30.00"),
            ((1, D("12.50")), (2, D("6.00"))),
            ((1, D("12.50")), (2, D("6.00"))),
            id="full_refund_beyond_the_lines",
        ),
        pytest.param(
            D("9.25"),
            ((1, D("12.50")), (2, D("6.00"))),
            ((1, D("6.25")), (2, D("3.00"))),
            id="half",
        ),
        pytest.param(
            D("0.01"), ((1, D("0.01")), (2, D("0.01"))), ((1, D("0.01")), (2, ZERO)), id="one_cent"
        ),
        pytest.param(
            D("10.00"),
            ((1, D("3.33")), (2, D("3.33")), (3, D("3.34"))),
            ((1, D("3.33")), (2, D("3.33")), (3, D("3.34"))),
            id="exactly_the_caps",
        ),
        pytest.param(
            D("1.00"),
            ((1, D("1.00")), (2, D("1.00")), (3, D("1.00"))),
            ((1, D("0.34")), (2, D("0.33")), (3, D("0.33"))),
            id="thirds",
        ),
    ],
)
def test_a_decided_refund_is_spread_over_its_lines_within_their_shares(amount, caps, expected):
    result = allocate_to_lines(amount, caps)
    assert result == expected
    assert sum((share for _, share in result), ZERO) == min(amount, sum(c for _, c in caps))
