"""Order rules: pricing at placement (D-7, L-7.1, L-7.2) and cancellation by the buyer and the
restaurant (L-2.1, L-2.2, K-B1..3, K-S1..3). Pure: plain data in, a decision out."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from core.money import ZERO, percent_of, percent_text, to_cents
from credits.policy import (
    CreditFacts,
    CreditSpend,
    DiscountCodeFacts,
    discount_amount,
    plan_credit_spend,
    usable_credits,
)


@dataclass(frozen=True)
class LineFacts:
    unit_price: Decimal
    quantity: int


@dataclass(frozen=True)
class OrderPrice:
    subtotal: Decimal
    delivery_fee: Decimal
    discount_amount: Decimal
    total: Decimal
    promo_credit_applied: Decimal
    account_credit_applied: Decimal
    amount_charged: Decimal
    credit_spends: tuple[CreditSpend, ...]
    clauses: tuple[str, ...]

    @property
    def amount_paid(self) -> Decimal:
        return self.amount_charged + self.account_credit_applied


def price_order(
    *,
    lines: list[LineFacts],
    delivery_fee: Decimal,
    discount: DiscountCodeFacts | None,
    credits: list[CreditFacts],
    use_credit: bool,
    promo_credit_min_order: Decimal,
    now,
) -> OrderPrice:
    """The order's money (D-7): lines, delivery fee, the code's discount (L-7.2), then credit
    oldest-expiring first, promotional credit only when the order qualifies (L-7.1); the card
    pays the rest."""
    subtotal = to_cents(sum((line.unit_price * line.quantity for line in lines), ZERO))
    discount_off = discount_amount(discount, subtotal) if discount else ZERO
    total = subtotal + delivery_fee - discount_off
    promo_allowed = subtotal - discount_off >= promo_credit_min_order
    spends = (
        plan_credit_spend(usable_credits(credits, promo_allowed=promo_allowed, now=now), total)
        if use_credit
        else []
    )
    promo = sum((s.amount for s in spends if s.kind == "promo"), ZERO)
    account = sum((s.amount for s in spends if s.kind == "account"), ZERO)
    clauses = (("L-7.2",) if discount else ()) + (("L-7.1",) if spends else ())
    return OrderPrice(
        subtotal=subtotal,
        delivery_fee=delivery_fee,
        discount_amount=discount_off,
        total=total,
        promo_credit_applied=promo,
        account_credit_applied=account,
        amount_charged=total - promo - account,
        credit_spends=tuple(spends),
        clauses=clauses,
    )


# -- cancellation (L-2.1, L-2.2, K-B1..3, K-S1..3) -----------------------------------------


class CancelOutcome:
    CANCEL_NOW = "cancel_now"  # L-2.1 before acceptance: free, full refund at once
    REQUEST = "request"  # L-2.1 after acceptance: the restaurant approves, a fee applies
    REFUSED = "refused"


@dataclass(frozen=True)
class BuyerCancellationFacts:
    status: str
    accepted_at: dt.datetime | None
    window_minutes: int  # the restaurant's window (K-B1)
    fee_percent: Decimal  # the restaurant's fee
    fee_min_percent: Decimal  # the pinned version's bounds (L-2.1 "typically 10-20%")
    fee_max_percent: Decimal
    amount_paid: Decimal
    refundable: Decimal  # what is still refundable: paid less what went back already (L-7.2)
    previously_denied: bool = False  # the restaurant already said no to a request


@dataclass(frozen=True)
class CancellationDecision:
    outcome: str
    fee: Decimal
    refund: Decimal
    clauses: tuple[str, ...]
    code: str
    detail: str
    window_ends_at: dt.datetime | None = None
    fee_percent: Decimal = ZERO

    @property
    def allowed(self) -> bool:
        return self.outcome != CancelOutcome.REFUSED

    @property
    def requires_restaurant_approval(self) -> bool:
        return self.outcome == CancelOutcome.REQUEST


_AFTER_PREPARATION = {"preparing", "ready", "out_for_delivery", "delivered", "picked_up"}
_ENDED = {"served", "closed", "cancelled", "missing", "undeliverable"}


def cancellation_fee_percent(facts: BuyerCancellationFacts) -> Decimal:
    """The restaurant's percent, held inside the version's bounds (L-2.1 "typically 10-20%")."""
    return min(max(facts.fee_percent, facts.fee_min_percent), facts.fee_max_percent)


def cancellation_fee(amount_paid: Decimal, facts: BuyerCancellationFacts) -> Decimal:
    """The restaurant's percent of what was paid (L-2.1)."""
    return percent_of(amount_paid, cancellation_fee_percent(facts))


def cancellation_request_refund(refundable: Decimal, fee: Decimal) -> Decimal:
    """What an approved cancellation request gives back (L-2.1): what is still refundable less
    the fee, never below zero (earlier refunds already came off, L-7.2)."""
    return max(refundable - fee, ZERO)


def decide_buyer_cancellation(facts: BuyerCancellationFacts, *, now: dt.datetime):
    """What happens if the buyer cancels now (D-6 table): free before acceptance, with what is
    still refundable back; a request to the restaurant inside its window, the fee a percent of
    what was paid and coming off what is still refundable; refused after the window or once
    preparation has begun."""
    paid = facts.amount_paid
    if facts.status == "placed":
        return CancellationDecision(
            CancelOutcome.CANCEL_NOW,
            fee=ZERO,
            refund=facts.refundable,
            clauses=("L-2.1", "K-B3"),
            code="free_cancellation",
            detail="Free to cancel until the restaurant accepts: full refund of "
            f"{facts.refundable}.",
        )
    if facts.status == "accepted":
        window_ends_at = facts.accepted_at + dt.timedelta(minutes=facts.window_minutes)
        if now >= window_ends_at:
            return _refused(
                "window_passed",
                f"The restaurant's {facts.window_minutes}-minute cancellation window has passed.",
                ("K-B1",),
                window_ends_at=window_ends_at,
            )
        if facts.previously_denied:
            return _refused(
                "request_denied",
                "The restaurant already declined to cancel this order.",
                ("K-B1", "L-2.1"),
                window_ends_at=window_ends_at,
            )
        fee = cancellation_fee(paid, facts)
        refund = cancellation_request_refund(facts.refundable, fee)
        return CancellationDecision(
            CancelOutcome.REQUEST,
            fee=fee,
            refund=refund,
            clauses=("K-B1", "L-2.1"),
            code="cancellation_request",
            detail=f"The restaurant must approve; cancelling costs {fee}, you get {refund} back.",
            window_ends_at=window_ends_at,
            fee_percent=cancellation_fee_percent(facts),
        )
    if facts.status == "cancellation_requested":
        return _refused(
            "already_requested", "You have already asked to cancel this order.", ("L-2.1",)
        )
    if facts.status in _AFTER_PREPARATION:
        return _refused(
            "preparation_started",
            "The restaurant has started preparing this order, so it can no longer be cancelled "
            "and no refund is issued; it will be delivered or handed over as planned.",
            ("L-2.1",),
        )
    return _refused("order_closed", "This order can no longer be cancelled.", ("L-2.1",))


def _refused(code, detail, clauses, window_ends_at=None) -> CancellationDecision:
    return CancellationDecision(
        CancelOutcome.REFUSED, ZERO, ZERO, clauses, code, detail, window_ends_at=window_ends_at
    )


def support_decides_cancellation_at(requested_at: dt.datetime, response_minutes: int):
    """K-OV: a cancellation request the restaurant leaves unanswered this long after the buyer
    asked goes to support."""
    return requested_at + dt.timedelta(minutes=response_minutes)


class RestaurantCancelReason:
    """L-2.2: the reasons a restaurant may cancel for."""

    ITEM_UNAVAILABLE = "item_unavailable"
    TECHNICAL_ISSUE = "technical_issue"
    CANNOT_FULFILL = "cannot_fulfill"
    OPERATING_HOURS = "operating_hours"
    LABELS = {
        ITEM_UNAVAILABLE: "A menu item is unavailable",
        TECHNICAL_ISSUE: "Technical issues",
        CANNOT_FULFILL: "Unable to fulfil the order",
        OPERATING_HOURS: "Operating hours changed",
    }


RESTAURANT_CANCELLABLE = {"placed", "accepted", "preparing", "ready"}
MIN_EXPLANATION_LENGTH = 10
# One limit for every explanation a buyer reads (a restaurant's cancellation or denial, a
# support decision): it is quoted on a timeline line that holds 500 characters with its prefix.
MAX_EXPLANATION_LENGTH = 400


def explanation_error(text: str, *, minimum: int = MIN_EXPLANATION_LENGTH) -> tuple[str, str]:
    """Whether an explanation a buyer reads is acceptable (K-S2, L-4.1): at least `minimum`
    characters (after trimming) and at most MAX_EXPLANATION_LENGTH. Returns (code, detail) of
    the fault, or ("", "") when it is fine. Codes: explanation_required, explanation_too_long."""
    text = text.strip()
    if len(text) < max(minimum, 1):
        return "explanation_required", "Explain the decision to the buyer."
    if len(text) > MAX_EXPLANATION_LENGTH:
        return (
            "explanation_too_long",
            f"Keep the explanation under {MAX_EXPLANATION_LENGTH} characters.",
        )
    return "", ""


def denial_reason_error(reason: str) -> tuple[str, str]:
    """A restaurant (or support) that denies a buyer's cancellation request tells the buyer why
    (K-S2's spirit, L-2.1): a reason is required and at most MAX_EXPLANATION_LENGTH long.
    Returns (code, detail) of the fault, or ("", "") when it is fine. Codes: reason_required,
    reason_too_long."""
    code, _ = explanation_error(reason, minimum=1)
    if code == "explanation_required":
        return "reason_required", "Tell the buyer why the cancellation request is denied."
    if code:
        return "reason_too_long", f"Keep the reason under {MAX_EXPLANATION_LENGTH} characters."
    return "", ""


@dataclass(frozen=True)
class RestaurantCancellationDecision:
    allowed: bool
    refund: Decimal
    goodwill_credit: Decimal
    clauses: tuple[str, ...]
    code: str
    detail: str


def decide_restaurant_cancellation(
    *, status: str, reason: str, explanation: str, refundable: Decimal, goodwill: Decimal
) -> RestaurantCancellationDecision:
    """A restaurant may cancel until the order leaves it, for a reason of L-2.2 and with an
    explanation the buyer reads at once (K-S2); the buyer gets back everything still refundable
    (what was paid less earlier refunds; K-S3, L-2.2, L-7.2) and a goodwill promotional credit
    (L-2.2 "may also provide")."""
    clauses = ("L-2.2", "K-S1", "K-S2", "K-S3")

    def refused(code, detail):
        return RestaurantCancellationDecision(False, ZERO, ZERO, clauses, code, detail)

    if status not in RESTAURANT_CANCELLABLE:
        return refused(
            "not_cancellable", "This order can no longer be cancelled by the restaurant."
        )
    if reason not in RestaurantCancelReason.LABELS:
        return refused("invalid_reason", "Choose one of the reasons the policy allows (L-2.2).")
    code, detail = explanation_error(explanation)
    if code == "explanation_required":
        return refused(code, "Explain to the buyer why the order is cancelled.")
    if code:
        return refused(code, detail)
    return RestaurantCancellationDecision(
        True,
        refund=refundable,
        goodwill_credit=goodwill,
        clauses=clauses,
        code="restaurant_cancellation",
        detail=f"The buyer gets {refundable} back in full and a goodwill credit of {goodwill}.",
    )


@dataclass(frozen=True)
class TermsBounds:
    window_min_minutes: int
    window_max_minutes: int
    fee_min_percent: Decimal
    fee_max_percent: Decimal


def restaurant_terms_errors(
    *, window_minutes: int, fee_percent: Decimal, bounds: TermsBounds
) -> dict[str, str]:
    """A restaurant sets its own cancellation window (K-B1) and fee (L-2.1 "typically 10-20%")
    inside the policy version's bounds. Returns the errors by field (none: the terms are fine)."""
    errors = {}
    if not bounds.window_min_minutes <= window_minutes <= bounds.window_max_minutes:
        errors["cancellation_window_minutes"] = (
            f"The window must be between {bounds.window_min_minutes} and "
            f"{bounds.window_max_minutes} minutes (K-B1)."
        )
    if not bounds.fee_min_percent <= fee_percent <= bounds.fee_max_percent:
        errors["cancellation_fee_percent"] = (
            f"The fee must be between {percent_text(bounds.fee_min_percent)} % and "
            f"{percent_text(bounds.fee_max_percent)} % (L-2.1)."
        )
    return errors


# -- the delay cause (L-3.3) -----------------------------------------------------------------

DELAY_CAUSES = ("none", "weather", "traffic", "restaurant", "courier", "platform")
# A delivery still on its way: a cause set later could only change the outcome of a finished
# order's late refund after the fact.
DELAY_CAUSE_SETTABLE = {
    "placed",
    "accepted",
    "cancellation_requested",
    "preparing",
    "ready",
    "out_for_delivery",
}


def delay_cause_error(*, fulfillment: str, status: str, delay_cause: str) -> tuple[str, str, str]:
    """Whether a delay cause may be recorded on an order (L-3.3): a known cause, on an open
    delivery order. Returns (code, kind, detail) of the refusal, or empty strings when it may."""
    if delay_cause not in DELAY_CAUSES:
        return ("invalid_delay_cause", "invalid", f"Unknown delay cause {delay_cause!r}.")
    if fulfillment != "delivery":
        return ("not_a_delivery", "conflict", "Only a delivery order can be delayed (L-3.3).")
    if status not in DELAY_CAUSE_SETTABLE:
        return (
            "order_not_open",
            "conflict",
            "The delay cause can only be set while the delivery is on its way (L-3.3).",
        )
    return ("", "", "")


# -- non-delivery (L-6.2) ----------------------------------------------------------------


@dataclass(frozen=True)
class MissingReportFacts:
    """What the non-delivery rule looks at: the order's fulfilment and status (their codes),
    when it was marked delivered, and the pinned version's L-5.1 delivery window."""

    fulfillment: str
    status: str
    delivered_at: dt.datetime | None
    delivery_window_minutes: int


@dataclass(frozen=True)
class MissingReportDecision:
    allowed: bool
    code: str
    detail: str
    clauses: tuple[str, ...]


def decide_report_missing(facts: MissingReportFacts, *, now: dt.datetime) -> MissingReportDecision:
    """L-6.2: a delivery order out for delivery may be reported as never having come; so may one
    marked delivered, within the L-5.1 delivery window after that mark. Anything else is refused
    with the clause that says why."""
    if facts.fulfillment != "delivery":
        return _missing_refused("not_a_delivery", "Only a delivery can go missing.", ("L-6.2",))
    if facts.status == "out_for_delivery":
        return MissingReportDecision(True, "", "", ("L-6.2",))
    if facts.status == "delivered" and facts.delivered_at is not None:
        closes_at = facts.delivered_at + dt.timedelta(minutes=facts.delivery_window_minutes)
        if now < closes_at:
            return MissingReportDecision(True, "", "", ("L-6.2", "L-5.1"))
        return _missing_refused(
            "report_window_passed",
            f"A missing delivery must be reported within {facts.delivery_window_minutes} "
            "minutes of its delivery.",
            ("L-5.1", "L-6.2"),
        )
    return _missing_refused(
        "not_out_for_delivery",
        "An order can be reported missing once it is out for delivery.",
        ("L-6.2",),
    )


def _missing_refused(code: str, detail: str, clauses: tuple[str, ...]) -> MissingReportDecision:
    return MissingReportDecision(False, code, detail, clauses)


def missing_give_up_at(reported_at: dt.datetime, locate_minutes: int) -> dt.datetime:
    """L-6.2: a missing order not located this long after the report is undeliverable."""
    return reported_at + dt.timedelta(minutes=locate_minutes)


# -- policy updates (K-UP) --------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyChange:
    """One number of the policy that a new version changes (K-UP), as /policy/ shows it."""

    name: str
    label: str
    before: object
    after: object


def policy_changes(before: dict, after: dict, labels: dict[str, str]) -> list[PolicyChange]:
    """K-UP "what changed": the parameters (`labels` names them, in order) whose value differs
    between the previous version (`before`, empty for the first) and this one."""
    if not before:
        return []
    return [
        PolicyChange(name, label, before.get(name), after.get(name))
        for name, label in labels.items()
        if before.get(name) != after.get(name)
    ]


def policy_review_refusal(
    *, action: str, status: str, actor_id: int, drafted_by_id
) -> tuple | None:
    """K-UP's review: a draft is approved by a supervisor other than its drafter (four eyes) or
    rejected, and only an approved version is published. `action` is approve, reject or
    publish. None when allowed; otherwise (code, detail)."""
    expected = {"approve": "draft", "reject": "draft", "publish": "approved"}[action]
    if status != expected:
        return (
            "wrong_status",
            f"Only a version that is {expected} can be {action.removesuffix('e')}ed; "
            f"it is {status}.",
        )
    if action == "approve" and actor_id == drafted_by_id:
        return (
            "four_eyes",
            "A version is approved by a supervisor other than the one who drafted it.",
        )
    return None


def effective_date_refusal(
    *, effective_from: dt.datetime | None, now: dt.datetime, latest: dt.datetime | None
) -> tuple | None:
    """K-UP: a version applies to orders placed from its effective date, so the date is not in
    the past (orders already placed keep their version) and comes after the latest published
    version's. None when allowed; otherwise (code, detail)."""
    if effective_from is None:
        return "effective_date_required", "Choose the date from which the version applies."
    if effective_from < now:
        return (
            "effective_date_past",
            "The effective date cannot be in the past: orders already placed keep their version.",
        )
    if latest is not None and effective_from <= latest:
        return (
            "effective_date_too_early",
            "The effective date must come after the latest published version's "
            f"({latest:%d %b %Y %H:%M}).",
        )
    return None
