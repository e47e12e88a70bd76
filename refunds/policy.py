"""Refund rules: where money goes back (D-7, L-4.3) and when it arrives (L-4.2). Pure."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from core.money import CENT, ZERO, amount_text, percent_of, percent_text, to_cents


@dataclass(frozen=True)
class PaidFacts:
    """What the buyer paid for an order and what has gone back already."""

    amount_charged: Decimal
    account_credit_applied: Decimal
    refunded_to_card: Decimal
    refunded_total: Decimal
    # What chargebacks not won by the platform take (or may take) of the card payment (L-8.2):
    # a chargeback plus the refunds never take back more than was paid (L-7.2).
    charged_back: Decimal = ZERO

    @property
    def amount_paid(self) -> Decimal:
        return self.amount_charged + self.account_credit_applied

    @property
    def refundable(self) -> Decimal:
        return max(self.amount_paid - self.refunded_total - self.charged_back, ZERO)

    @property
    def card_refundable(self) -> Decimal:
        return max(self.amount_charged - self.refunded_to_card - self.charged_back, ZERO)


@dataclass(frozen=True)
class RefundPart:
    destination: str  # "card" | "account_credit"
    amount: Decimal


def split_refund(amount: Decimal, paid: PaidFacts, *, method: str) -> list[RefundPart]:
    """Split a refund between card and account credit (D-7, L-4.3).

    `original` sends money back where it came from, in proportion to how the order was paid
    (the card part never more than the card can still take back); `account_credit` sends it
    all as account credit, available at once.
    """
    if method == "account_credit":
        return [RefundPart("account_credit", amount)]
    card_share = (
        to_cents(amount * paid.amount_charged / paid.amount_paid) if paid.amount_paid else ZERO
    )
    card = min(card_share, paid.card_refundable, amount)
    parts = [RefundPart("card", card), RefundPart("account_credit", amount - card)]
    return [part for part in parts if part.amount > ZERO]


@dataclass(frozen=True)
class RefundDates:
    processed_by: dt.date
    in_bank_from: dt.date | None
    in_bank_by: dt.date | None


def refund_dates(
    *,
    destination: str,
    on: dt.date,
    processing_min_days: int,
    processing_max_days: int,
    bank_min_days: int,
    bank_max_days: int,
    add_business_days: Callable[[dt.date, int], dt.date],
) -> RefundDates:
    """Expected dates (L-4.2): processed within the processing days, then at the bank within
    the bank days for a card; credit is available at once (L-4.3)."""
    if destination != "card":
        return RefundDates(processed_by=on, in_bank_from=None, in_bank_by=None)
    processed_by = add_business_days(on, processing_max_days)
    return RefundDates(
        processed_by=processed_by,
        in_bank_from=add_business_days(add_business_days(on, processing_min_days), bank_min_days),
        in_bank_by=add_business_days(processed_by, bank_max_days),
    )


# -- refund requests: the reason table of D-6 (L-3, L-5, L-6, L-10) -------------------------


class Reason:
    """Refund request reasons and the clause that decides each (D-6)."""

    NOT_DELIVERED = "not_delivered"
    WRONG_ORDER = "wrong_order"
    UNSAFE_FOOD = "unsafe_food"
    SEVERE_QUALITY = "severe_quality"
    DUPLICATE_CHARGE = "duplicate_charge"
    SIGNIFICANT_DELAY = "significant_delay"
    MISSING_ITEMS = "missing_items"
    INCORRECT_ITEMS = "incorrect_items"
    ITEM_QUALITY = "item_quality"
    TEMPERATURE = "temperature"
    PREPARATION_ERROR = "preparation_error"
    PACKAGING_SPILLAGE = "packaging_spillage"
    CHANGE_OF_MIND = "change_of_mind"
    WRONG_ADDRESS = "wrong_address"
    CUSTOMER_UNAVAILABLE = "customer_unavailable"
    TASTE_PREFERENCE = "taste_preference"
    APPEARANCE_VARIATION = "appearance_variation"
    SPICE_PREFERENCE = "spice_preference"
    WEATHER_TRAFFIC_DELAY = "weather_traffic_delay"
    LATE_DELIVERY = "late_delivery"
    ALLERGIC_REACTION = "allergic_reaction"
    HEALTH_CONCERN = "health_concern"

    LABELS = {
        NOT_DELIVERED: "The order was not delivered or prepared",
        WRONG_ORDER: "I received a completely wrong order",
        UNSAFE_FOOD: "The food is unsafe or contaminated",
        SEVERE_QUALITY: "Severe quality issue (spoiled, inedible)",
        DUPLICATE_CHARGE: "I was charged twice",
        SIGNIFICANT_DELAY: "Over 2 hours late",
        MISSING_ITEMS: "Items are missing",
        INCORRECT_ITEMS: "Some items are wrong",
        ITEM_QUALITY: "Quality issue with some items",
        TEMPERATURE: "Food temperature",
        PREPARATION_ERROR: "Prepared incorrectly",
        PACKAGING_SPILLAGE: "Packaging spilled",
        CHANGE_OF_MIND: "I changed my mind",
        WRONG_ADDRESS: "I gave a wrong address",
        CUSTOMER_UNAVAILABLE: "I was not available",
        TASTE_PREFERENCE: "I did not like the taste",
        APPEARANCE_VARIATION: "It looked different",
        SPICE_PREFERENCE: "Too spicy or not spicy enough",
        WEATHER_TRAFFIC_DELAY: "Delayed by weather or traffic",
        LATE_DELIVERY: "The delivery was late",
        ALLERGIC_REACTION: "Allergic reaction (mislabelled allergens)",
        HEALTH_CONCERN: "Food safety or health concern",
    }


FULL_REASONS = frozenset(
    {
        Reason.NOT_DELIVERED,
        Reason.WRONG_ORDER,
        Reason.UNSAFE_FOOD,
        Reason.SEVERE_QUALITY,
        Reason.DUPLICATE_CHARGE,
        Reason.SIGNIFICANT_DELAY,
    }
)
PARTIAL_REASONS = frozenset(
    {
        Reason.MISSING_ITEMS,
        Reason.INCORRECT_ITEMS,
        Reason.ITEM_QUALITY,
        Reason.TEMPERATURE,
        Reason.PREPARATION_ERROR,
        Reason.PACKAGING_SPILLAGE,
    }
)
NO_REFUND_REASONS = frozenset(
    {
        Reason.CHANGE_OF_MIND,
        Reason.WRONG_ADDRESS,
        Reason.CUSTOMER_UNAVAILABLE,
        Reason.TASTE_PREFERENCE,
        Reason.APPEARANCE_VARIATION,
        Reason.SPICE_PREFERENCE,
        Reason.WEATHER_TRAFFIC_DELAY,
    }
)
SAFETY_REASONS = frozenset({Reason.ALLERGIC_REACTION, Reason.HEALTH_CONCERN})
# L-5.1 windows and L-5.2 evidence apply to these.
QUALITY_REASONS = frozenset(
    {
        Reason.SEVERE_QUALITY,
        Reason.UNSAFE_FOOD,
        Reason.ITEM_QUALITY,
        Reason.TEMPERATURE,
        Reason.PREPARATION_ERROR,
        Reason.PACKAGING_SPILLAGE,
    }
)
# Caused by the restaurant: deducted from its payouts (L-9). The others are the platform's.
RESTAURANT_CAUSED = frozenset(
    {
        Reason.WRONG_ORDER,
        Reason.UNSAFE_FOOD,
        Reason.SEVERE_QUALITY,
        Reason.MISSING_ITEMS,
        Reason.INCORRECT_ITEMS,
        Reason.ITEM_QUALITY,
        Reason.TEMPERATURE,
        Reason.PREPARATION_ERROR,
        Reason.PACKAGING_SPILLAGE,
        Reason.ALLERGIC_REACTION,
        Reason.HEALTH_CONCERN,
    }
)

# How the request form groups the reasons, as the policy groups them.
REASON_GROUPS = (
    ("Full refund", "L-3.1", tuple(sorted(FULL_REASONS))),
    ("Part of the order", "L-3.2", tuple(sorted(PARTIAL_REASONS))),
    ("Late delivery", "L-6.1", (Reason.LATE_DELIVERY,)),
    ("Health and safety", "L-10", (Reason.ALLERGIC_REACTION, Reason.HEALTH_CONCERN)),
    ("Not covered", "L-3.3", tuple(sorted(NO_REFUND_REASONS))),
)
REASON_CLAUSE = {reason: clause for _, clause, reasons in REASON_GROUPS for reason in reasons}

_FULFILLED = frozenset({"delivered", "picked_up", "served", "closed"})
# A delivery order the late sweep looks at (L-6.1): every state not finished except by
# cancellation or non-delivery, and delivered (late).
LATE_SWEPT_STATUSES = frozenset(
    {
        "placed",
        "accepted",
        "cancellation_requested",
        "preparing",
        "ready",
        "out_for_delivery",
        "missing",
        "delivered",
    }
)
LATE_AUTO_REFUND = "late_auto_refund"  # the eligibility code of the automatic L-6.1 refund
_UNDELIVERED = frozenset({"out_for_delivery", "missing", "undeliverable"})


class Route:
    AUTOMATIC = "automatic"  # decided and paid by the policy, no person (L-10, L-3.1 duplicate)
    REVIEW = "review"  # a support agent decides within the SLA (L-4.1)
    REFUSED = "refused"  # refused at once, with the clause
    INVALID = "invalid"  # the request is incomplete (e.g. evidence, L-5.2)


@dataclass(frozen=True)
class ClaimLine:
    """An order line as a claim sees it, with what earlier decided claims took of it."""

    order_item_id: int
    unit_price: Decimal
    quantity: int
    is_promotional: bool
    refunded_quantity: int = 0  # units named by claims already decided (approved or paid)
    refunded_amount: Decimal = ZERO  # money those claims gave back for this line

    @property
    def claimable(self) -> int:
        """Units no decided claim has named yet: what a new claim may still name."""
        return max(self.quantity - self.refunded_quantity, 0)


@dataclass(frozen=True)
class OrderRefundFacts:
    status: str
    fulfillment: str
    delivered_at: dt.datetime | None
    picked_up_at: dt.datetime | None
    closed_at: dt.datetime | None
    ready_at: dt.datetime | None
    estimated_delivery_at: dt.datetime | None
    estimated_ready_at: dt.datetime | None
    delay_cause: str
    subtotal: Decimal
    delivery_fee: Decimal
    discount_amount: Decimal
    amount_paid: Decimal
    refundable: Decimal  # what can still go back (amount paid less money refunds so far)
    lines: tuple[ClaimLine, ...]
    under_force_majeure: bool = False  # an open force-majeure incident covers it (L-10)


@dataclass(frozen=True)
class RefundTerms:
    """The pinned policy version's numbers for refunds."""

    quality_window_pickup_minutes: int
    quality_window_delivery_minutes: int
    late_partial_minutes: int
    late_full_minutes: int
    late_auto_refund_minutes: int
    late_partial_percent: Decimal
    late_small_credit: Decimal
    weather_blocks_automatic: bool
    ready_late_full_minutes: int


@dataclass(frozen=True)
class Claim:
    reason: str
    items: tuple[tuple[int, int], ...] = ()  # (order item id, quantity)
    description: str = ""
    photo_count: int = 0


@dataclass(frozen=True)
class Eligibility:
    outcome: str  # "full" | "partial" | "none"
    route: str
    amount: Decimal
    clauses: tuple[str, ...]
    code: str
    detail: str
    promo_credit: Decimal = ZERO  # a credit the agent may offer instead (L-6.1, L-4.3)
    account_credit_alternative: bool = False  # L-6.1 30-60 min: "partial refund or credit"
    opens_allergen_incident: bool = False  # L-10
    checks_processor_for_duplicate: bool = False  # L-3.1: look for the second charge


def _refused(code, detail, clauses, route=Route.REFUSED, **kwargs) -> Eligibility:
    return Eligibility("none", route, ZERO, tuple(clauses), code, detail, **kwargs)


def quality_window_closes_at(order: OrderRefundFacts, terms: RefundTerms) -> dt.datetime | None:
    """L-5.1: dine-in before leaving (until the order is closed), pickup within 30 minutes of
    pickup, delivery within an hour of delivery. None while the window has not started to run
    (or, for dine-in, while the guest is still there)."""
    if order.fulfillment == "dine_in":
        return order.closed_at
    if order.fulfillment == "pickup" and order.picked_up_at:
        return order.picked_up_at + dt.timedelta(minutes=terms.quality_window_pickup_minutes)
    if order.fulfillment == "delivery" and order.delivered_at:
        return order.delivered_at + dt.timedelta(minutes=terms.quality_window_delivery_minutes)
    return None


def lateness(order: OrderRefundFacts, now: dt.datetime) -> dt.timedelta:
    """How late a delivery is (or was) against its estimate; for pickup and dine-in, how late the
    order was ready (D-6)."""
    if order.fulfillment == "delivery":
        arrived = order.delivered_at or now
        return max(arrived - order.estimated_delivery_at, dt.timedelta(0))
    ready = order.ready_at or now
    return max(ready - order.estimated_ready_at, dt.timedelta(0))


def line_share(order: OrderRefundFacts, unit_price: Decimal, quantity: int) -> Decimal:
    """`quantity` units' share of what was paid (D-7): unit price x quantity x amount paid /
    (subtotal + delivery fee), rounded to the cent half-up; 0 when nothing was priced."""
    base = order.subtotal + order.delivery_fee
    if base <= ZERO:
        return ZERO
    return to_cents(unit_price * quantity * order.amount_paid / base)


def line_remaining_share(order: OrderRefundFacts, line: ClaimLine) -> Decimal:
    """What the whole line's paid share (D-7) can still give back after earlier claims."""
    return max(line_share(order, line.unit_price, line.quantity) - line.refunded_amount, ZERO)


def claim_line_caps(
    order: OrderRefundFacts, items: tuple[tuple[int, int], ...]
) -> tuple[tuple[int, Decimal], ...]:
    """For each named (line id, quantity): the most that may go back for it, the named units'
    paid share (D-7) less what earlier claims already gave back for the line (L-7.2)."""
    lines = {line.order_item_id: line for line in order.lines}
    return tuple(
        (
            item_id,
            min(
                line_share(order, lines[item_id].unit_price, quantity),
                line_remaining_share(order, lines[item_id]),
            ),
        )
        for item_id, quantity in items
        if item_id in lines
    )


def partial_amount(order: OrderRefundFacts, items: tuple[tuple[int, int], ...]) -> Decimal:
    """Each named line's share of what was paid (D-7): line total x amount paid / (subtotal +
    delivery fee), rounded half-up per line, less what earlier claims gave back for the same
    line; never more than can still be refunded (L-7.2)."""
    total = sum((cap for _, cap in claim_line_caps(order, items)), ZERO)
    return min(total, order.refundable)


def allocate_to_lines(
    amount: Decimal, caps: tuple[tuple[int, Decimal], ...]
) -> tuple[tuple[int, Decimal], ...]:
    """Spread a decided refund `amount` over the claim's lines in proportion to their caps
    (from `claim_line_caps`), in cents, each at most its cap. What is above the caps' sum (a full
    refund, the delivery fee) belongs to no line and is left out."""
    total = sum((cap for _, cap in caps), ZERO)
    if amount >= total:
        return caps
    if amount <= ZERO:
        return tuple((item_id, ZERO) for item_id, _ in caps)
    shares = [
        [item_id, (amount * cap / total).quantize(CENT, rounding=ROUND_DOWN), cap]
        for item_id, cap in caps
    ]
    left = amount - sum((share for _, share, _ in shares), ZERO)
    for share in shares:
        extra = min(left, share[2] - share[1])
        share[1] += extra
        left -= extra
    return tuple((item_id, share) for item_id, share, _ in shares)


def claim_items_refusal(claim: Claim, order: OrderRefundFacts) -> Eligibility | None:
    """Every line a claim names, for every reason, is a line of this order, named with 1 to
    what is still claimable of it (units no decided claim has named yet, L-3.2, L-7.2).
    Returns the refusal (route INVALID: nothing is stored), or None when the lines are fine."""
    lines = {line.order_item_id: line for line in order.lines}
    clauses = (REASON_CLAUSE.get(claim.reason, "L-3.2"),)
    claimed: dict[int, int] = {}
    for item_id, quantity in claim.items:
        if item_id not in lines:
            return _refused(
                "unknown_item", "That item is not part of this order.", clauses, Route.INVALID
            )
        if quantity < 1:
            return _refused(
                "invalid_quantity", "Name at least 1 of each item.", clauses, Route.INVALID
            )
        claimed[item_id] = claimed.get(item_id, 0) + quantity
    for item_id, quantity in claimed.items():
        line = lines[item_id]
        if line.claimable == 0:
            return _refused(
                "item_already_refunded",
                "That item has already been refunded by an earlier request.",
                (*clauses, "L-7.2"),
                Route.INVALID,
            )
        if quantity > line.claimable:
            return _refused(
                "invalid_quantity",
                f"Choose between 1 and {line.claimable} of that item.",
                clauses,
                Route.INVALID,
            )
    return None


def claim_eligibility(
    claim: Claim, order: OrderRefundFacts, terms: RefundTerms, *, now: dt.datetime
) -> Eligibility:
    """What the policy allows for this claim, with the clauses, and whether a person decides."""
    reason = claim.reason
    if reason not in Reason.LABELS:
        return _refused("invalid_reason", "Choose one of the listed reasons.", (), Route.INVALID)
    items_refusal = claim_items_refusal(claim, order)
    if items_refusal:
        return items_refusal
    if order.refundable <= ZERO:
        if reason == Reason.ALLERGIC_REACTION:
            return _refused(
                "allergen_investigation",
                "Everything paid has already been refunded; the mislabelled allergen is "
                "investigated all the same (L-10).",
                ("L-10",),
                Route.AUTOMATIC,
                opens_allergen_incident=True,
            )
        return _refused(
            "nothing_to_refund", "Everything paid for this order has been refunded.", ("L-7.2",)
        )
    if reason in NO_REFUND_REASONS:
        return _refused("not_covered", _NOT_COVERED[reason], ("L-3.3",))
    refusal = _state_refusal(reason, order, now) or _window_refusal(reason, order, terms, now)
    refusal = refusal or _evidence_refusal(claim) or _discount_refusal(claim, order)
    if refusal:
        return refusal
    if reason in SAFETY_REASONS:
        return Eligibility(
            "full",
            Route.AUTOMATIC,
            order.refundable,
            ("L-10",),
            "safety_full_refund",
            "Food safety comes first: a full refund, at once (L-10).",
            opens_allergen_incident=reason == Reason.ALLERGIC_REACTION,
        )
    if reason == Reason.DUPLICATE_CHARGE:
        return _duplicate_charge(order)
    if reason in (Reason.LATE_DELIVERY, Reason.SIGNIFICANT_DELAY):
        return _late(reason, order, terms, now)
    if reason in PARTIAL_REASONS:
        return _partial(claim, order)
    return Eligibility(
        "full",
        Route.REVIEW,
        order.refundable,
        ("L-3.1",),
        "full_refund",
        "A full refund, once support has checked the request (L-3.1, L-4.1).",
    )


_NOT_COVERED = {
    Reason.CHANGE_OF_MIND: "A change of mind after the restaurant accepted is not refunded.",
    Reason.WRONG_ADDRESS: "An incorrect address given at checkout is not refunded.",
    Reason.CUSTOMER_UNAVAILABLE: "An order the courier could not hand over is not refunded.",
    Reason.TASTE_PREFERENCE: "Taste is subjective and not refunded.",
    Reason.APPEARANCE_VARIATION: "Normal variations in appearance are not refunded.",
    Reason.SPICE_PREFERENCE: "Spice and seasoning preferences are not refunded; a dish prepared "
    "wrongly is (choose 'Prepared incorrectly').",
    Reason.WEATHER_TRAFFIC_DELAY: "Delays caused by weather or traffic are not refunded.",
}


def _state_refusal(reason: str, order: OrderRefundFacts, now: dt.datetime) -> Eligibility | None:
    if order.status in ("cancelled",):
        return _refused(
            "order_cancelled",
            "A cancelled order is refunded by its cancellation.",
            ("L-2.1", "L-2.2"),
        )
    if reason == Reason.DUPLICATE_CHARGE:
        return None
    if reason in (Reason.NOT_DELIVERED, Reason.LATE_DELIVERY, Reason.SIGNIFICANT_DELAY):
        if order.status in _FULFILLED | _UNDELIVERED or (
            order.fulfillment != "delivery" and order.status == "ready"
        ):
            return None
        if _delivery_estimate_passed(order, now):
            return None
    elif order.status in _FULFILLED:
        return None
    return _refused(
        "order_not_received",
        "This reason applies once you have received the order.",
        (REASON_CLAUSE[reason],),
    )


def problem_reporting_open(
    *, status: str, fulfillment: str, estimated_delivery_at: dt.datetime | None, now: dt.datetime
) -> bool:
    """Whether the order page offers "Report a problem": once the food is ready or on its way
    (or later), and for a delivery still with the restaurant once its estimate has passed, when
    late and non-delivery claims open (L-6.1, L-6.2); never on a cancelled order."""
    if status == "cancelled":
        return False
    if status not in ("placed", "accepted", "cancellation_requested", "preparing"):
        return True
    return (
        fulfillment == "delivery"
        and estimated_delivery_at is not None
        and now > estimated_delivery_at
    )


def _delivery_estimate_passed(order: OrderRefundFacts, now: dt.datetime) -> bool:
    """A delivery still with the restaurant once its estimate has passed: late and non-delivery
    claims are open on it (L-6.1, L-6.2), as the late sweep refunds it over 2 hours."""
    return (
        order.fulfillment == "delivery"
        and order.status in LATE_SWEPT_STATUSES
        and order.estimated_delivery_at is not None
        and now > order.estimated_delivery_at
    )


def _window_refusal(reason, order, terms, now) -> Eligibility | None:
    if reason not in QUALITY_REASONS:
        return None
    closes_at = quality_window_closes_at(order, terms)
    if closes_at is not None and now >= closes_at:
        return _refused(
            "report_window_closed",
            f"Quality issues must be reported {_window_text(order.fulfillment, terms)}; "
            f"this window closed at {closes_at:%H:%M on %d %b}.",
            ("L-5.1",),
        )
    return None


def _window_text(fulfillment: str, terms: RefundTerms) -> str:
    return {
        "dine_in": "before leaving the restaurant",
        "pickup": f"within {terms.quality_window_pickup_minutes} minutes of pickup",
        "delivery": f"within {terms.quality_window_delivery_minutes} minutes of delivery",
    }[fulfillment]


def _evidence_refusal(claim: Claim) -> Eligibility | None:
    if claim.reason in QUALITY_REASONS and (claim.photo_count < 1 or not claim.description.strip()):
        return _refused(
            "evidence_required",
            "Quality issues need at least one clear photo and a description of the problem.",
            ("L-5.2",),
            Route.INVALID,
        )
    if claim.reason in PARTIAL_REASONS and not claim.items:
        return _refused(
            "items_required",
            "Choose the items and quantities concerned.",
            ("L-3.2",),
            Route.INVALID,
        )
    return None


def _discount_refusal(claim: Claim, order: OrderRefundFacts) -> Eligibility | None:
    """L-3.3: promotional items and discounted orders are refunded only for quality or safety
    issues. A duplicate charge is the platform's error, not a refund of the order."""
    if claim.reason in QUALITY_REASONS | SAFETY_REASONS | {Reason.DUPLICATE_CHARGE}:
        return None
    if order.discount_amount > ZERO:
        return _refused(
            "discounted_order",
            "Discounted orders are refunded only for quality or safety issues.",
            ("L-3.3",),
        )
    promotional = {line.order_item_id for line in order.lines if line.is_promotional}
    if claim.items and all(item_id in promotional for item_id, _ in claim.items):
        return _refused(
            "promotional_items",
            "Promotional items are refunded only for quality or safety issues.",
            ("L-3.3",),
        )
    return None


def _duplicate_charge(order: OrderRefundFacts) -> Eligibility:
    """L-3.1 "duplicate charge occurred due to technical error": the order stands and its own
    payment is not refunded; the second charge is looked for in the card processor's records
    (`duplicate_charge_found` decides once it is known). Its outcome is "partial": what comes
    back is the extra charge, never the order's own payment."""
    return Eligibility(
        "partial",
        Route.REVIEW,
        ZERO,
        ("L-3.1",),
        "duplicate_charge_check",
        "We look for the second charge in the card processor's records: one found is cancelled "
        "in full, and your order's own payment stands (L-3.1).",
        checks_processor_for_duplicate=True,
    )


def duplicate_charge_found(extra_charged: Decimal, currency: str = "") -> Eligibility:
    """L-3.1 once the processor's records are read: the extra charges of the buyer's checkout
    that no order recorded (`extra_charged`, in the deployment currency) are cancelled in full,
    at once; none found leaves the claim with support, who checks the buyer's bank statement."""
    if extra_charged > ZERO:
        return Eligibility(
            "partial",
            Route.AUTOMATIC,
            extra_charged,
            ("L-3.1",),
            "duplicate_charge_cancelled",
            f"A second charge of {amount_text(extra_charged, currency)} was found and cancelled "
            "in full; your order's "
            "own payment stands (L-3.1).",
        )
    return Eligibility(
        "partial",
        Route.REVIEW,
        ZERO,
        ("L-3.1",),
        "duplicate_charge_not_found",
        "The card processor shows one charge for this order; support checks it against your "
        "bank statement (L-3.1).",
    )


def _late(reason, order, terms, now) -> Eligibility:
    """L-6.1 tiers by lateness. Weather or traffic removes the request tiers of a delivery
    (L-3.3) but not the refund over 2 hours, which L-6.1 makes automatic whatever the cause
    (unless the version's `weather_blocks_automatic` says otherwise); pickup and dine-in orders
    ready over 2 hours late are refunded in full on request (D-6)."""
    late = lateness(order, now)
    minutes = late.total_seconds() / 60
    automatic_refund_due = order.fulfillment == "delivery" and late_automatic_allowed(
        minutes=minutes, delay_cause=order.delay_cause, terms=terms
    )
    if (
        order.fulfillment == "delivery"
        and order.delay_cause in ("weather", "traffic")
        and not automatic_refund_due
    ):
        return _refused(
            "weather_traffic_delay", _NOT_COVERED[Reason.WEATHER_TRAFFIC_DELAY], ("L-3.3", "L-6.1")
        )
    if order.fulfillment != "delivery":
        if minutes > terms.ready_late_full_minutes:
            return _full_late(order, "ready_very_late", f"Ready {int(minutes)} minutes late.")
        return _refused(
            "not_late_enough",
            f"The order was ready {int(minutes)} minutes late; a "
            f"refund applies from {terms.ready_late_full_minutes} minutes.",
            ("L-6.1",),
        )
    if reason == Reason.SIGNIFICANT_DELAY and minutes <= terms.late_auto_refund_minutes:
        return _refused(
            "not_late_enough",
            f"{int(minutes)} minutes late is not over 2 hours; "
            "choose 'The delivery was late' instead.",
            ("L-3.1", "L-6.1"),
        )
    if automatic_refund_due and not order.under_force_majeure:
        return Eligibility(
            "full",
            Route.AUTOMATIC,
            order.refundable,
            ("L-6.1", "L-3.1"),
            LATE_AUTO_REFUND,
            f"{int(minutes)} minutes late: over {terms.late_auto_refund_minutes} minutes, a full "
            "refund at once, without review (L-6.1, L-3.1).",
        )
    if minutes > terms.late_full_minutes:
        return _full_late(order, "late_full", f"{int(minutes)} minutes late.")
    if minutes >= terms.late_partial_minutes:
        amount = min(percent_of(order.amount_paid, terms.late_partial_percent), order.refundable)
        return Eligibility(
            "partial",
            Route.REVIEW,
            amount,
            ("L-6.1",),
            "late_partial",
            f"{int(minutes)} minutes late: {percent_text(terms.late_partial_percent)} % back, "
            "or the same as account credit (L-6.1).",
            account_credit_alternative=True,
        )
    return Eligibility(
        "none",
        Route.REVIEW,
        ZERO,
        ("L-6.1",),
        "late_small",
        f"{int(minutes)} minutes late: no refund under {terms.late_partial_minutes} "
        "minutes, but support may offer a credit (L-6.1).",
        promo_credit=terms.late_small_credit,
    )


def late_automatic_allowed(*, minutes: float, delay_cause: str, terms: RefundTerms) -> bool:
    """L-6.1: a delivery over `late_auto_refund_minutes` late is refunded in full automatically,
    whatever the cause, unless the version's `weather_blocks_automatic` excludes weather and
    traffic delays (D-6 interpretation)."""
    weather = delay_cause in ("weather", "traffic")
    return minutes > terms.late_auto_refund_minutes and not (
        weather and terms.weather_blocks_automatic
    )


@dataclass(frozen=True)
class LateOrderFacts:
    """A delivery order as the late sweep sees it (L-6.1, L-3.1, L-10)."""

    fulfillment: str
    status: str
    estimated_delivery_at: dt.datetime | None
    delivered_at: dt.datetime | None
    delay_cause: str
    refundable: Decimal  # amount paid less money refunds so far (L-7.2)
    auto_late_refunded: bool  # the one automatic late refund was already made
    under_force_majeure: bool  # an open force-majeure incident covers the order (L-10)


class LateAction:
    REFUND = "refund"  # a full refund of what is still refundable, now, no review
    HOLD = "hold"  # force majeure: the automatic rule pauses, agents decide (L-10)
    SKIP = "skip"  # nothing to do (not late enough, not a delivery, already refunded...)


@dataclass(frozen=True)
class LateAutoDecision:
    action: str
    code: str
    amount: Decimal
    minutes_late: int
    clauses: tuple[str, ...]
    detail: str
    final: bool = False  # it can no longer change: the sweep is done with the order


def late_auto_refund_decision(
    order: LateOrderFacts, terms: RefundTerms, *, now: dt.datetime
) -> LateAutoDecision:
    """The late sweep's decision for one order (L-6.1, L-3.1): a delivery order whose lateness
    (delivered_at, or now, minus estimated_delivery_at) is over `late_auto_refund_minutes` gets a
    full refund of what is still refundable, automatically, once. Pickup and dine-in never (D-6);
    a cancelled or undeliverable order is refunded by its own rule; weather and traffic delays are
    skipped only when the version sets `weather_blocks_automatic`; force majeure holds the order
    for agents (L-10). Amounts in the deployment currency, `minutes_late` whole minutes."""
    if (
        order.fulfillment != "delivery"
        or order.status not in LATE_SWEPT_STATUSES
        or order.estimated_delivery_at is None
    ):
        return _late_decision(
            order, LateAction.SKIP, "not_swept", 0, "Not a delivery the sweep covers."
        )
    arrived = order.delivered_at or now
    minutes = max((arrived - order.estimated_delivery_at).total_seconds() / 60, 0)
    if order.auto_late_refunded:
        return _late_decision(
            order, LateAction.SKIP, "already_refunded", minutes, "Already refunded."
        )
    if minutes <= terms.late_auto_refund_minutes:
        return _late_decision(
            order, LateAction.SKIP, "not_late_enough", minutes, "Not late enough."
        )
    if not late_automatic_allowed(minutes=minutes, delay_cause=order.delay_cause, terms=terms):
        return _late_decision(
            order,
            LateAction.SKIP,
            "weather_blocks_automatic",
            minutes,
            "Delayed by weather or traffic; this policy version leaves it to a request.",
            ("L-3.3", "L-6.1"),
        )
    # An order refunded in full leaves nothing for agents to decide: not held (L-10).
    if order.refundable <= ZERO:
        return _late_decision(
            order,
            LateAction.SKIP,
            "nothing_to_refund",
            minutes,
            "Already refunded in full.",
            ("L-7.2",),
        )
    if order.under_force_majeure:
        return _late_decision(
            order,
            LateAction.HOLD,
            "force_majeure",
            minutes,
            "Force majeure: the automatic refund pauses and support decides.",
            ("L-10",),
        )
    return LateAutoDecision(
        LateAction.REFUND,
        LATE_AUTO_REFUND,
        order.refundable,
        int(minutes),
        ("L-6.1", "L-3.1"),
        f"Your order is {int(minutes)} minutes late, over {terms.late_auto_refund_minutes} "
        "minutes: a full refund of what you paid, automatically (L-6.1, L-3.1).",
        final=True,
    )


def _late_decision(order, action, code, minutes, detail, clauses=("L-6.1",)) -> LateAutoDecision:
    """A skip is final once nothing can change it: the order was refunded (automatically or in
    full), or it is delivered (its lateness is fixed) and not held for force majeure."""
    final = code in ("already_refunded", "nothing_to_refund") or (
        order.status == "delivered" and action == LateAction.SKIP
    )
    return LateAutoDecision(action, code, ZERO, int(minutes), tuple(clauses), detail, final)


def _full_late(order, code, detail) -> Eligibility:
    return Eligibility(
        "full",
        Route.REVIEW,
        order.refundable,
        ("L-6.1", "L-3.1"),
        code,
        f"{detail} A full refund once support has checked (L-6.1).",
    )


def _partial(claim: Claim, order: OrderRefundFacts) -> Eligibility:
    """The claim's lines were checked by `claim_items_refusal`: merged, in the order."""
    lines = {line.order_item_id: line for line in order.lines}
    items = merged_items(claim.items)
    if claim.reason not in QUALITY_REASONS:
        items = tuple((i, q) for i, q in items if not lines[i].is_promotional)
    amount = partial_amount(order, items)
    return Eligibility(
        "partial",
        Route.REVIEW,
        amount,
        ("L-3.2",),
        "partial_refund",
        "The paid share of the items named (L-3.2).",
    )


# -- support's review (L-4.1, K-OV, D-6 four eyes) --------------------------------------------

# Support decides while it reviews, and also while it waits on a restaurant that may never
# answer (K-OV); the review clock runs in both (L-4.1).
REVIEWING_STATUSES = ("under_review", "awaiting_restaurant")


def is_reviewable(status: str) -> bool:
    """Whether support may decide a request in this status now (L-4.1 step 4, K-OV)."""
    return status in REVIEWING_STATUSES


def review_due_soon_from(
    review_due_at: dt.datetime, *, sla_hours: int, due_soon_hours: int
) -> dt.datetime:
    """L-4.1: the moment a request is flagged due soon, `due_soon_hours` after the clock
    started, i.e. its due time less the hours left (sla_hours - due_soon_hours)."""
    return review_due_at - dt.timedelta(hours=sla_hours - due_soon_hours)


@dataclass(frozen=True)
class ReviewClock:
    """Where a request stands against its review deadline (L-4.1, K-OV)."""

    running: bool  # being reviewed (not paused for the buyer, not decided)
    overdue: bool  # past due: handed to supervisors (K-OV)
    due_soon: bool  # in the last stretch (or already flagged), not overdue


def review_clock(
    *,
    status: str,
    review_due_at: dt.datetime,
    due_soon_flagged: bool,
    sla_hours: int,
    due_soon_hours: int,
    now: dt.datetime,
) -> ReviewClock:
    """L-4.1: the clock runs while support reviews or waits on the restaurant; a request is
    overdue from its due time and due soon from `review_due_soon_from` (or once flagged)."""
    if not is_reviewable(status):
        return ReviewClock(running=False, overdue=False, due_soon=False)
    overdue = now >= review_due_at
    soon_from = review_due_soon_from(
        review_due_at, sla_hours=sla_hours, due_soon_hours=due_soon_hours
    )
    return ReviewClock(
        running=True,
        overdue=overdue,
        due_soon=not overdue and (due_soon_flagged or now >= soon_from),
    )


def needs_second_approval(
    *, resolution: str, amount: Decimal | None, threshold: Decimal, by_person: bool
) -> bool:
    """Four eyes (L-4.1, D-6): a person's resolution worth more than `threshold`
    (`supervisor_approval_above`) waits for a supervisor before it takes effect: a refund, a
    promotional credit, or a replacement order whose value is above it. The policy's own
    automatic decisions (by_person False) and denials (no amount) never wait."""
    return by_person and amount is not None and amount > threshold


def waits_for_second_approval(
    *, status: str, needs_second_approval: bool, second_approved: bool
) -> bool:
    """A decision above the four-eyes threshold that no supervisor has confirmed yet (D-6)."""
    return (
        status in ("approved", "partially_approved")
        and needs_second_approval
        and (not second_approved)
    )


def approve_amount(suggested: Decimal, refundable: Decimal) -> Decimal:
    """What approving a request pays (L-4.1 step 4, L-7.2): the policy's suggestion, never
    more than what can still be refunded on the order."""
    return min(suggested, refundable)


# -- retrying a refund the processor did not make (D-7) ---------------------------------------


def refund_retry_delay(
    attempts: int, *, first: dt.timedelta, longest: dt.timedelta
) -> dt.timedelta:
    """How long after its `attempts`-th failed try a card refund is tried again: `first`,
    doubling, at most `longest` (D-7 exponential backoff; the deployment's settings give 1
    minute and an hour)."""
    return min(first * 2 ** max(attempts - 1, 0), longest)


def refund_attempt_key(idempotency_key: str, attempt: int) -> str:
    """The processor's key for a try: the refund's own key first, `<key>:attempt-<n>` for each
    new attempt after a decline (an unknown outcome is retried with the same key, D-7)."""
    return idempotency_key if attempt <= 1 else f"{idempotency_key}:attempt-{attempt}"


def merged_items(items) -> tuple[tuple[int, int], ...]:
    """(line id, quantity) pairs with each line once, quantities added, in first-named order."""
    merged: dict[int, int] = {}
    for item_id, quantity in items:
        merged[item_id] = merged.get(item_id, 0) + quantity
    return tuple(merged.items())


# -- the restaurant's side of L-9: deductions, disputes, payouts -----------------------------

# L-9 "Refunds due to restaurant error may be deducted from restaurant payments"; K-DR: the
# platform offers a dispute resolution process.
DEDUCTION_CLAUSES = ("L-9",)
DISPUTE_CLAUSES = ("L-9", "K-DR")


def deduction_clauses(refund_clauses) -> list[str]:
    """The clauses behind a deduction: the refund's own (why the buyer was paid), then L-9."""
    own = list(refund_clauses or ())
    return [*own, *(c for c in DEDUCTION_CLAUSES if c not in own)]


def deduction_dispute_refusal(*, kind: str, disputed: bool) -> tuple[str, str] | None:
    """Whether a restaurant may contest this ledger entry (L-9, K-DR): a refund deduction, once
    (support's decision is final). None when it may; otherwise (code, detail)."""
    if kind != "refund_deduction":
        return "not_a_deduction", "Only a refund deducted from your payouts can be disputed."
    if disputed:
        return "already_disputed", "You already disputed this deduction: it is disputed once."
    return None


def deduction_dispute_decision_refusal(*, is_open: bool) -> tuple[str, str] | None:
    """A dispute is decided once (K-DR): None while it is open; otherwise (code, detail)."""
    if not is_open:
        return "already_decided", "This dispute has already been decided."
    return None


def payout_amount(balance: Decimal) -> Decimal:
    """The payout that closes a weekly period (L-9): everything the platform owes at its end
    (`balance`, the sum of every entry up to then, earlier payouts included), as a negative
    entry; a balance that is not positive pays nothing and carries into the next period."""
    return -balance if balance > ZERO else ZERO
