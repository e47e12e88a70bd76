"""The review clock (L-4.1, K-OV), four eyes (D-6) and the denial reason (L-2.1): pure rules,
no database."""

import datetime as dt
from decimal import Decimal as D

import pytest

from orders import policy as order_policy
from refunds import policy

DUE = dt.datetime(2025, 3, 12, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("case", "status", "now", "flagged", "expected"),
    [
        ("fresh", "under_review", DUE - dt.timedelta(hours=30), False, (True, False, False)),
        (
            "due soon at 24 h",
            "under_review",
            DUE - dt.timedelta(hours=24),
            False,
            (True, False, True),
        ),
        ("flagged", "awaiting_restaurant", DUE - dt.timedelta(hours=30), True, (True, False, True)),
        ("overdue", "awaiting_restaurant", DUE, False, (True, True, False)),
        ("paused", "info_requested", DUE + dt.timedelta(hours=1), False, (False, False, False)),
        ("decided", "denied", DUE + dt.timedelta(hours=1), True, (False, False, False)),
    ],
)
def test_review_clock(case, status, now, flagged, expected):
    clock = policy.review_clock(
        status=status,
        review_due_at=DUE,
        due_soon_flagged=flagged,
        sla_hours=48,
        due_soon_hours=24,
        now=now,
    )
    assert (clock.running, clock.overdue, clock.due_soon) == expected


def test_due_soon_from_is_the_due_time_less_the_last_stretch():
    assert policy.review_due_soon_from(DUE, sla_hours=48, due_soon_hours=24) == DUE - dt.timedelta(
        hours=24
    )


@pytest.mark.parametrize(
    ("case", "resolution", "amount", "by_person", "expected"),
    [
        ("refund above", "refund", D("50.01"), True, True),
        ("refund at the threshold", "refund", D("50.00"), True, False),
        ("promotional credit above", "promo_credit", D("70.00"), True, True),
        ("replacement above", "replacement", D("56.00"), True, True),
        ("replacement below", "replacement", D("12.50"), True, False),
        ("automatic refund above", "refund", D("80.00"), False, False),
        ("denial", "", None, True, False),
    ],
)
def test_needs_second_approval(case, resolution, amount, by_person, expected):
    assert (
        policy.needs_second_approval(
            resolution=resolution, amount=amount, threshold=D("50.00"), by_person=by_person
        )
        is expected
    )


@pytest.mark.parametrize(
    ("case", "status", "needs", "approved", "expected"),
    [
        ("waiting", "approved", True, False, True),
        ("confirmed", "approved", True, True, False),
        ("small", "partially_approved", False, False, False),
        ("refunded", "refunded", True, True, False),
    ],
)
def test_waits_for_second_approval(case, status, needs, approved, expected):
    assert (
        policy.waits_for_second_approval(
            status=status, needs_second_approval=needs, second_approved=approved
        )
        is expected
    )


def test_approve_amount_never_exceeds_what_is_left():
    assert policy.approve_amount(D("30.00"), D("12.40")) == D("12.40")
    assert policy.approve_amount(D("30.00"), D("45.00")) == D("30.00")


@pytest.mark.parametrize(
    ("case", "reason", "code"),
    [
        ("blank", "   ", "reason_required"),
        ("too long", "x" * 401, "reason_too_long"),
        ("at the limit", "x" * 400, ""),
        ("short is fine", "No.", ""),
    ],
)
def test_denial_reason(case, reason, code):
    assert order_policy.denial_reason_error(reason)[0] == code
