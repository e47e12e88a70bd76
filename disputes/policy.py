"""Dispute rules (L-8.1, K-DR, L-10): who may escalate which decision, when a supervisor must
decide, what an overturn may give, and which incidents may be entered. Pure: plain data in, a
decision with its clauses out."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from core.money import ZERO, amount_text

# -- escalations (L-8.1, K-DR) ----------------------------------------------------------------

REFUND_DECISION = "refund_decision"
CANCELLATION_DENIED = "cancellation_denied"
CANCELLATION_FEE = "cancellation_fee"

# L-8.1 "If you disagree with our refund decision": a decision that refused all or part.
ESCALATABLE_DECISIONS = frozenset({"denied", "partially_approved"})


@dataclass(frozen=True)
class EscalationFacts:
    """What decides whether a buyer may escalate: the subject, how the contested decision
    came out (`denied`, `partially_approved`, `approved`, or `undecided`), whether a supervisor
    must still confirm it (four eyes), whether it was escalated already, and whether the
    buyer's order still had something paid to give back."""

    subject: str
    decided_as: str
    awaits_second_approval: bool = False
    already_escalated: bool = False


@dataclass(frozen=True)
class EscalationEligibility:
    allowed: bool
    code: str
    detail: str
    clauses: tuple[str, ...]


def _refused(code: str, detail: str, *clauses: str) -> EscalationEligibility:
    return EscalationEligibility(False, code, detail, clauses or ("L-8.1",))


def escalation_eligibility(facts: EscalationFacts) -> EscalationEligibility:
    """May the buyer ask a supervisor to review this decision? (L-8.1, K-DR)

    A refund request that was denied or partially approved, once its decision is final (not
    waiting for a supervisor's second approval); a restaurant's denial of a cancellation
    request, or the fee it kept on approving one (K-DR). Once: the supervisor's decision is
    final, so a second escalation is refused."""
    clauses = ("L-8.1",) if facts.subject == REFUND_DECISION else ("K-DR", "L-8.1")
    if facts.already_escalated:
        return _refused(
            "already_escalated",
            "This decision was already escalated; the supervisor's decision is final.",
            *clauses,
        )
    if facts.subject == REFUND_DECISION:
        if facts.decided_as not in ESCALATABLE_DECISIONS:
            return _refused(
                "not_escalatable",
                "Only a denied or partially approved request can be escalated to a supervisor.",
                *clauses,
            )
        if facts.awaits_second_approval:
            return _refused(
                "decision_pending",
                "A supervisor is still confirming this decision; you can escalate once it is "
                "final.",
                *clauses,
            )
        return EscalationEligibility(True, "", "", clauses)
    if facts.subject == CANCELLATION_DENIED and facts.decided_as == "denied":
        return EscalationEligibility(True, "", "", clauses)
    if facts.subject == CANCELLATION_FEE and facts.decided_as == "fee_kept":
        return EscalationEligibility(True, "", "", clauses)
    return _refused(
        "not_escalatable",
        "Only a denied cancellation request, or a cancellation fee the restaurant kept, can be "
        "contested.",
        *clauses,
    )


@dataclass(frozen=True)
class EscalationDeadlines:
    due_soon_at: dt.datetime
    due_at: dt.datetime


def escalation_deadlines(
    *,
    opened_at: dt.datetime,
    min_days: int,
    max_days: int,
    add_business_days: Callable[[dt.date, int], dt.date],
) -> EscalationDeadlines:
    """L-8.1 "Allow 3-5 business days": due `max_days` business days after opening, flagged due
    soon after `min_days`, at the same time of day (`opened_at` in local time; weekends and
    public holidays are skipped by `add_business_days`)."""

    def after(days: int) -> dt.datetime:
        return dt.datetime.combine(
            add_business_days(opened_at.date(), days), opened_at.timetz()
        ).replace(tzinfo=opened_at.tzinfo)

    return EscalationDeadlines(due_soon_at=after(min_days), due_at=after(max_days))


@dataclass(frozen=True)
class EscalationClock:
    due_soon: bool
    overdue: bool


def escalation_clock(
    *, status: str, due_soon_at: dt.datetime, due_at: dt.datetime, now: dt.datetime
) -> EscalationClock:
    """Where an undecided escalation stands against L-8.1's 3-5 business days."""
    if status not in ("open", "under_review"):
        return EscalationClock(False, False)
    return EscalationClock(due_soon=now >= due_soon_at, overdue=now >= due_at)


def overturn_amount_error(
    *, amount: Decimal, previous_amount: Decimal, refundable: Decimal, currency: str = ""
) -> str | None:
    """An overturn's `amount` is the new total refund of what was contested: more than the
    contested decision gave (`previous_amount`) and at most that plus what is still refundable
    of the order (L-7.2). Returns why not, or None."""
    most = previous_amount + refundable
    if refundable <= ZERO:
        return "Nothing more can be refunded for this order (L-7.2); uphold the decision."
    if not previous_amount < amount <= most:
        return (
            f"The new total must be more than {amount_text(previous_amount, currency)} and at "
            f"most {amount_text(most, currency)}."
        )
    return None


def overturn_default_amount(*, previous_amount: Decimal, refundable: Decimal) -> Decimal:
    """Without an amount an overturn gives back everything still refundable (D-10)."""
    return previous_amount + refundable


# -- incidents (L-10) ------------------------------------------------------------------------

OUTAGE = "outage"
FORCE_MAJEURE = "force_majeure"
ALLERGEN = "allergen"
CLAUSES = ("L-10",)


@dataclass(frozen=True)
class IncidentEntry:
    """Whether a supervisor may enter an incident of `kind` over this window now, and if not
    why (`code`, `detail`)."""

    allowed: bool
    code: str = ""
    detail: str = ""
    clauses: tuple[str, ...] = CLAUSES


def incident_entry(
    *, kind: str, starts_at: dt.datetime | None, ends_at: dt.datetime | None, now: dt.datetime
) -> IncidentEntry:
    """L-10: an outage is entered once it is over (its window, start and end, in the past), so
    its affected orders (placed in the window) are all known when they are refunded; force
    majeure needs a start and may be ongoing (no end). An allergen investigation is opened by an
    allergic-reaction refund request, never entered by hand."""
    if kind not in (OUTAGE, FORCE_MAJEURE):
        return IncidentEntry(
            False,
            "incident_kind_not_entered",
            "An allergen investigation is opened by an allergic-reaction refund request.",
        )
    if starts_at is None:
        return IncidentEntry(False, "window_required", "Say when the incident started.")
    if kind == OUTAGE and ends_at is None:
        return IncidentEntry(False, "window_required", "Say when the outage ended.")
    if ends_at is not None and ends_at <= starts_at:
        return IncidentEntry(False, "window_invalid", "The window must end after it starts.")
    if kind == OUTAGE and ends_at > now:
        return IncidentEntry(
            False,
            "outage_not_over",
            "An outage is refunded once it is over: its end must not be in the future.",
        )
    return IncidentEntry(True)
