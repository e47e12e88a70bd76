"""L-8.1 and K-DR as a table: which decisions a buyer may escalate, once; the 3-5 business day
deadlines; what an overturn may give. No database."""

import datetime as dt
from decimal import Decimal as D

import pytest

from core.business_days import add_business_days
from disputes.policy import (
    CANCELLATION_DENIED,
    CANCELLATION_FEE,
    REFUND_DECISION,
    EscalationFacts,
    escalation_clock,
    escalation_deadlines,
    escalation_eligibility,
    overturn_amount_error,
    overturn_default_amount,
)


@pytest.mark.parametrize(
    ("case", "facts", "allowed", "code", "clauses"),
    [
        ("denied request", EscalationFacts(REFUND_DECISION, "denied"), True, "", ("L-8.1",)),
        (
            "partially approved request",
            EscalationFacts(REFUND_DECISION, "partially_approved"),
            True,
            "",
            ("L-8.1",),
        ),
        (
            "approved request",
            EscalationFacts(REFUND_DECISION, "approved"),
            False,
            "not_escalatable",
            ("L-8.1",),
        ),
        (
            "undecided request",
            EscalationFacts(REFUND_DECISION, "undecided"),
            False,
            "not_escalatable",
            ("L-8.1",),
        ),
        (
            "partial approval waiting for the second approval",
            EscalationFacts(REFUND_DECISION, "partially_approved", awaits_second_approval=True),
            False,
            "decision_pending",
            ("L-8.1",),
        ),
        (
            "second escalation of a denial",
            EscalationFacts(REFUND_DECISION, "denied", already_escalated=True),
            False,
            "already_escalated",
            ("L-8.1",),
        ),
        (
            "denied cancellation request",
            EscalationFacts(CANCELLATION_DENIED, "denied"),
            True,
            "",
            ("K-DR", "L-8.1"),
        ),
        (
            "cancellation never denied",
            EscalationFacts(CANCELLATION_DENIED, "none"),
            False,
            "not_escalatable",
            ("K-DR", "L-8.1"),
        ),
        (
            "fee kept on an approved cancellation",
            EscalationFacts(CANCELLATION_FEE, "fee_kept"),
            True,
            "",
            ("K-DR", "L-8.1"),
        ),
        (
            "no fee kept",
            EscalationFacts(CANCELLATION_FEE, "none"),
            False,
            "not_escalatable",
            ("K-DR", "L-8.1"),
        ),
        (
            "second contest of a fee",
            EscalationFacts(CANCELLATION_FEE, "fee_kept", already_escalated=True),
            False,
            "already_escalated",
            ("K-DR", "L-8.1"),
        ),
    ],
)
def test_escalation_eligibility(case, facts, allowed, code, clauses):
    answer = escalation_eligibility(facts)
    assert (answer.allowed, answer.code, answer.clauses) == (allowed, code, clauses)
    assert bool(answer.detail) is not allowed


def us_business_days(day: dt.date, n: int) -> dt.date:
    return add_business_days(day, n, country="US")


@pytest.mark.parametrize(
    ("case", "opened", "due_soon", "due"),
    [
        # Thanksgiving (Thu 26 Nov 2026) is skipped, and the weekend.
        (
            "over Thanksgiving",
            dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC),
        ),
        (
            "an ordinary week",
            dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC),
            dt.datetime(2026, 12, 10, 9, 30, tzinfo=dt.UTC),
            dt.datetime(2026, 12, 14, 9, 30, tzinfo=dt.UTC),
        ),
        (
            "opened on a Saturday",
            dt.datetime(2026, 12, 12, 18, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 12, 16, 18, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 12, 18, 18, 0, tzinfo=dt.UTC),
        ),
    ],
)
def test_escalation_deadlines_skip_weekends_and_holidays(case, opened, due_soon, due):
    deadlines = escalation_deadlines(
        opened_at=opened, min_days=3, max_days=5, add_business_days=us_business_days
    )
    assert (deadlines.due_soon_at, deadlines.due_at) == (due_soon, due)


SOON = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
DUE = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("case", "status", "now", "due_soon", "overdue"),
    [
        ("fresh", "open", SOON - dt.timedelta(seconds=1), False, False),
        ("three business days in", "open", SOON, True, False),
        ("in review, due", "under_review", DUE, True, True),
        ("decided", "upheld", DUE + dt.timedelta(days=3), False, False),
    ],
)
def test_escalation_clock(case, status, now, due_soon, overdue):
    clock = escalation_clock(status=status, due_soon_at=SOON, due_at=DUE, now=now)
    assert (clock.due_soon, clock.overdue) == (due_soon, overdue)


@pytest.mark.parametrize(
    ("case", "amount", "previous", "refundable", "refused"),
    [
        ("full after a denial", D("33.99"), D("0.00"), D("33.99"), False),
        ("a cent after a denial", D("0.01"), D("0.00"), D("33.99"), False),
        ("nothing more", D("0.00"), D("0.00"), D("33.99"), True),
        ("over what was paid", D("34.00"), D("0.00"), D("33.99"), True),
        ("more than the partial approval", D("12.00"), D("6.00"), D("27.99"), False),
        ("the partial approval again", D("6.00"), D("6.00"), D("27.99"), True),
        ("up to everything paid", D("33.99"), D("6.00"), D("27.99"), False),
        ("nothing left to refund", D("10.00"), D("6.00"), D("0.00"), True),
    ],
)
def test_overturn_amount(case, amount, previous, refundable, refused):
    error = overturn_amount_error(amount=amount, previous_amount=previous, refundable=refundable)
    assert (error is not None) is refused


def test_overturn_defaults_to_everything_refundable():
    assert overturn_default_amount(previous_amount=D("6.00"), refundable=D("27.99")) == D("33.99")
