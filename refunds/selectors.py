"""Read queries for refunds and the restaurants' ledgers: constant query counts."""

import datetime as dt
import zoneinfo
from dataclasses import dataclass, replace
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import (
    Count,
    DateField,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncWeek

from core.money import ZERO, to_cents
from core.money_db import MONEY_FIELD, Cents, MoneySum
from core.roles import SUPERVISOR
from disputes.models import Chargeback, Incident
from orders.models import (
    LATE_SWEEP_DUE,
    Order,
    OrderEvent,
    Payment,
    PolicyVersion,
    Restaurant,
    is_support,
)
from refunds import policy
from refunds.models import (
    DECIDED_STATUSES,
    OPEN_STATUSES,
    DeductionDispute,
    HeldPhoto,
    Refund,
    RefundEvidence,
    RefundMessage,
    RefundRequest,
    RefundRequestItem,
    RestaurantLedgerEntry,
)


@dataclass(frozen=True)
class LedgerPeriod:
    """One payout period (L-9): a week, Monday to Sunday in the site's time zone; `paid_out`
    is what its payout paid (positive), None while the period is not closed."""

    starts_on: dt.date
    ends_on: dt.date
    total: Decimal
    entries: int
    paid_out: Decimal | None = None

    @property
    def closed(self) -> bool:
        return self.paid_out is not None


def restaurant_ledger_entries(restaurant_ids) -> QuerySet[RestaurantLedgerEntry]:
    """The ledger of these restaurants, newest first, each deduction with its refund (reason
    and clauses) and its dispute, in one query."""
    return (
        RestaurantLedgerEntry.objects.filter(restaurant_id__in=restaurant_ids)
        .select_related("restaurant", "refund", "dispute", "reverses")
        .order_by("-created_at", "-pk")
    )


def restaurant_ledger_entry_for_partner(user, entry_id: int) -> RestaurantLedgerEntry | None:
    """One entry of the partner's restaurants (None for another restaurant's, D-4), with its
    refund, its dispute and the reversal an upheld dispute booked."""
    return (
        RestaurantLedgerEntry.objects.filter(pk=entry_id, restaurant__members=user)
        .select_related("restaurant", "refund", "dispute__decided_by", "reversal", "order")
        .first()
    )


def deduction_disputes_for_support() -> QuerySet[DeductionDispute]:
    """Every restaurant's deduction disputes, open ones first by age (admin, K-DR)."""
    return DeductionDispute.objects.select_related(
        "restaurant", "deduction__order", "deduction__refund", "opened_by", "decided_by"
    )


def restaurant_ledger_entries_for_order(order) -> list[RestaurantLedgerEntry]:
    """What one order booked to its restaurant, oldest first."""
    return list(
        RestaurantLedgerEntry.objects.filter(
            restaurant_id=order.restaurant_id, order=order
        ).order_by("created_at", "pk")
    )


def restaurant_ledger_periods(restaurant_ids, *, tz: zoneinfo.ZoneInfo) -> list[LedgerPeriod]:
    """The sum of every weekly payout period that has entries, newest first, in one query.
    Weeks start on Monday at midnight in `tz`."""
    payout = Q(kind=RestaurantLedgerEntry.Kind.PAYOUT)
    rows = (
        RestaurantLedgerEntry.objects.filter(restaurant_id__in=restaurant_ids)
        .annotate(week=TruncWeek("created_at", tzinfo=tz))
        .values("week")
        .annotate(
            total=MoneySum("amount"),
            entries=Count("pk"),
            payouts=Count("pk", filter=payout),
            paid=MoneySum("amount", filter=payout),
        )
        .order_by("-week")
    )
    return [
        LedgerPeriod(
            starts_on=row["week"].date(),
            ends_on=row["week"].date() + dt.timedelta(days=6),
            total=row["total"],
            entries=row["entries"],
            paid_out=-row["paid"] if row["payouts"] else None,
        )
        for row in rows
    ]


def week_start(moment: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The Monday, midnight in `tz`, that starts the payout period holding `moment` (L-9)."""
    local = moment.astimezone(tz)
    monday = local.date() - dt.timedelta(days=local.weekday())
    return dt.datetime.combine(monday, dt.time(0), tzinfo=tz)


def restaurant_ids_with_periods_to_close(
    *, now: dt.datetime, tz: zoneinfo.ZoneInfo, limit: int
) -> list[int]:
    """Restaurants with entries in a weekly period that has ended and has no payout yet (L-9),
    lowest id first, at most `limit`."""
    week = TruncWeek("created_at", tzinfo=tz, output_field=DateField())
    paid = RestaurantLedgerEntry.objects.filter(
        kind=RestaurantLedgerEntry.Kind.PAYOUT,
        restaurant_id=OuterRef("restaurant_id"),
        period_starts_on=OuterRef("week"),
    )
    return list(
        RestaurantLedgerEntry.objects.exclude(kind=RestaurantLedgerEntry.Kind.PAYOUT)
        .filter(created_at__lt=week_start(now, tz))
        .annotate(week=week)
        .filter(~Exists(paid))
        .order_by("restaurant_id")
        .values_list("restaurant_id", flat=True)
        .distinct()[:limit]
    )


def restaurant_periods_to_close(
    restaurant_id: int, *, now: dt.datetime, tz: zoneinfo.ZoneInfo
) -> list[dt.date]:
    """The ended weekly periods of one restaurant with entries and no payout, oldest first."""
    week = TruncWeek("created_at", tzinfo=tz, output_field=DateField())
    paid = RestaurantLedgerEntry.objects.filter(
        kind=RestaurantLedgerEntry.Kind.PAYOUT, restaurant_id=restaurant_id
    ).values("period_starts_on")
    return list(
        RestaurantLedgerEntry.objects.filter(
            restaurant_id=restaurant_id, created_at__lt=week_start(now, tz)
        )
        .exclude(kind=RestaurantLedgerEntry.Kind.PAYOUT)
        .annotate(week=week)
        .exclude(week__in=paid)
        .order_by("week")
        .values_list("week", flat=True)
        .distinct()
    )


def restaurant_balance_before(restaurant_id: int, moment: dt.datetime) -> Decimal:
    """What the platform owed the restaurant just before `moment`: every entry before it,
    payouts included (L-9)."""
    return RestaurantLedgerEntry.objects.filter(
        restaurant_id=restaurant_id, created_at__lt=moment
    ).aggregate(total=MoneySum("amount"))["total"]


def restaurant_ledger_balance(periods: list[LedgerPeriod]) -> Decimal:
    """What the platform owes over all periods: the sum of the period totals."""
    return sum((period.total for period in periods), ZERO)


def refund_request_ids_for_sla(*, now: dt.datetime, limit: int) -> list[int]:
    """Requests under review that are now due soon and not flagged yet, or overdue and not
    escalated yet (L-4.1), soonest due first."""
    candidates = (
        RefundRequest.objects.filter(status__in=policy.REVIEWING_STATUSES)
        .filter(Q(due_soon_flagged_at__isnull=True) | Q(escalated_at__isnull=True))
        .select_related("order__policy_version")
        .only(
            "pk",
            "review_due_at",
            "due_soon_flagged_at",
            "escalated_at",
            "order__policy_version__review_sla_hours",
            "order__policy_version__review_due_soon_hours",
        )
        .order_by("review_due_at", "pk")
    )
    due = []
    for request in candidates.iterator(chunk_size=500):
        version = request.order.policy_version
        soon = policy.review_due_soon_from(
            request.review_due_at,
            sla_hours=version.review_sla_hours,
            due_soon_hours=version.review_due_soon_hours,
        )
        overdue = request.escalated_at is None and now >= request.review_due_at
        if overdue or (request.due_soon_flagged_at is None and now >= soon):
            due.append(request.pk)
        elif now < soon:
            break
        if len(due) == limit:
            break
    return due


def supervisor_list() -> QuerySet:
    """The active members of the `supervisor` group, who take overdue reviews (K-OV)."""
    return get_user_model().objects.filter(groups__name=SUPERVISOR, is_active=True).order_by("pk")


# -- the review queue in SQL (L-4.1): the same numbers as `policy.review_clock` ------------


def refund_request_with_due_soon_from(queryset: QuerySet) -> QuerySet:
    """Annotate `due_soon_from`, `policy.review_due_soon_from` in SQL: the due time less the
    hours the pinned version leaves for the last stretch (review_sla_hours -
    review_due_soon_hours)."""
    version = "order__policy_version__"
    last_stretch = ExpressionWrapper(
        (F(f"{version}review_sla_hours") - F(f"{version}review_due_soon_hours"))
        * Value(dt.timedelta(hours=1)),
        output_field=DurationField(),
    )
    return queryset.annotate(
        due_soon_from=ExpressionWrapper(
            F("review_due_at") - last_stretch, output_field=DateTimeField()
        )
    )


def refund_request_overdue_q(now: dt.datetime) -> Q:
    """`policy.review_clock(...).overdue` in SQL: still reviewed and past its due time."""
    return Q(status__in=policy.REVIEWING_STATUSES, review_due_at__lte=now)


def refund_request_due_soon_q(now: dt.datetime) -> Q:
    """`policy.review_clock(...).due_soon` in SQL: still reviewed, not overdue, in its last
    stretch or flagged by the sweep. Needs `refund_request_with_due_soon_from`."""
    return Q(status__in=policy.REVIEWING_STATUSES, review_due_at__gt=now) & (
        Q(due_soon_flagged_at__isnull=False) | Q(due_soon_from__lte=now)
    )


def refund_request_queue_filter(queryset: QuerySet, deadline: str, *, now) -> QuerySet:
    """The review queue filtered by deadline: "overdue", "due_soon", or anything else: all."""
    if deadline == "overdue":
        return queryset.filter(refund_request_overdue_q(now))
    if deadline == "due_soon":
        return refund_request_with_due_soon_from(queryset).filter(refund_request_due_soon_q(now))
    return queryset


def refund_request_queue_counts(now: dt.datetime) -> dict:
    """How many requests are in each state, overdue and due soon, in one query."""
    Status = RefundRequest.Status
    counts = refund_request_with_due_soon_from(RefundRequest.objects.all()).aggregate(
        **{f"status_{value}": Count("pk", filter=Q(status=value)) for value in Status.values},
        overdue=Count("pk", filter=refund_request_overdue_q(now)),
        due_soon=Count("pk", filter=refund_request_due_soon_q(now)),
    )
    return {
        "states": [
            {"value": value, "label": label, "count": counts[f"status_{value}"]}
            for value, label in Status.choices
        ],
        "overdue": counts["overdue"],
        "due_soon": counts["due_soon"],
    }


def refund_request_review_context(refund_request: RefundRequest) -> dict:
    """What an agent needs beside the request to decide it, in a constant number of queries:
    the order's timeline, payments and refunds, what can still be refunded, what approving
    pays (the policy's suggestion, up to what is left), and the buyer's other claims (newest
    20, with totals)."""
    Status = RefundRequest.Status
    order = refund_request.order
    others = RefundRequest.objects.filter(buyer_id=refund_request.buyer_id).exclude(
        pk=refund_request.pk
    )
    history = others.aggregate(
        count=Count("pk"),
        refunded=Count("pk", filter=Q(status=Status.REFUNDED)),
        refunded_total=MoneySum("decided_amount", filter=Q(status=Status.REFUNDED)),
    )
    refundable = paid_facts(order).refundable
    return {
        "order": order,
        "refundable": refundable,
        "approve_amount": policy.approve_amount(refund_request.suggested_amount, refundable),
        "order_events": OrderEvent.objects.filter(order=order).select_related("actor"),
        "payments": Payment.objects.filter(order=order),
        "refunds": Refund.objects.filter(order=order).select_related("request", "created_by"),
        "claims": others.select_related("order__restaurant").order_by("-submitted_at", "-pk")[:20],
        "claims_count": history["count"],
        "claims_refunded": history["refunded"],
        "claims_refunded_total": history["refunded_total"] or ZERO,
    }


def refund_request_list_for_buyer(buyer) -> QuerySet:
    """The buyer's own refund requests, newest first, with their order's restaurant."""
    return (
        RefundRequest.objects.filter(buyer=buyer)
        .select_related("order__restaurant")
        .order_by("-submitted_at", "-pk")
    )


def refund_request_detail_queryset() -> QuerySet:
    """Refund requests with everything their detail shows (lines, timeline, messages, photos,
    refunds, who decided) in a constant number of queries; callers filter by who may see."""
    return RefundRequest.objects.select_related(
        "order__restaurant", "decided_by", "second_approved_by"
    ).prefetch_related(
        Prefetch(
            "items",
            queryset=RefundRequestItem.objects.select_related("order_item").order_by("pk"),
        ),
        "events",
        Prefetch("messages", queryset=RefundMessage.objects.select_related("author")),
        "evidence",
        "refunds",
    )


def refund_request_list_for_partner(user) -> QuerySet:
    """Refund requests on orders of the restaurants the user belongs to, oldest first, with
    the claimed lines, the photos and what support and the restaurant wrote (not the buyer's
    messages)."""
    return (
        RefundRequest.objects.filter(order__restaurant__members=user)
        .select_related("order__restaurant")
        .prefetch_related(
            Prefetch(
                "items",
                queryset=RefundRequestItem.objects.select_related("order_item").order_by("pk"),
            ),
            "evidence",
            Prefetch(
                "messages",
                queryset=RefundMessage.objects.exclude(
                    role=RefundMessage.Role.BUYER
                ).select_related("author"),
            ),
        )
        .order_by("submitted_at", "pk")
    )


def refund_request_open_for_order(order):
    """The order's refund request still in progress, if any (one per order at a time)."""
    return RefundRequest.objects.filter(order=order, status__in=OPEN_STATUSES).first()


def refund_request_verifications_for_partner(user) -> QuerySet:
    """Requests on the user's restaurants' orders waiting for the restaurant to verify, the
    soonest due first, with the claim (items, photos) and support's messages (the question)."""
    return (
        RefundRequest.objects.filter(
            order__restaurant__members=user, status=RefundRequest.Status.AWAITING_RESTAURANT
        )
        .select_related("order__restaurant", "buyer")
        .prefetch_related(
            Prefetch("items", queryset=RefundRequestItem.objects.select_related("order_item")),
            "evidence",
            Prefetch(
                "messages",
                queryset=RefundMessage.objects.filter(role=RefundMessage.Role.SUPPORT),
                to_attr="support_messages",
            ),
        )
        .order_by("review_due_at", "pk")
    )


def refund_evidence_for_viewer(user, evidence_id: int):
    """A photo if the user may see it: the request's buyer, a partner of the order's
    restaurant, or support staff; None for anyone else (the page answers 404)."""
    photos = RefundEvidence.objects.filter(pk=evidence_id)
    if not is_support(user):
        partner = Restaurant.members.through.objects.filter(
            restaurant_id=OuterRef("request__order__restaurant_id"), user_id=user.pk
        )
        photos = photos.filter(Q(request__buyer_id=user.pk) | Exists(partner))
    return photos.first()


def held_photos_for_buyer(buyer, order_id: int) -> list[HeldPhoto]:
    """The photos this buyer holds for a request on this order not sent yet, oldest first
    (one query)."""
    return list(
        HeldPhoto.objects.filter(order_id=order_id, uploaded_by_id=buyer.pk).order_by(
            "created_at", "pk"
        )
    )


def refund_request_order_id_for_buyer(buyer, request_id: int) -> int | None:
    """The order of the buyer's refund request; None when it is not theirs (one query)."""
    found = RefundRequest.objects.filter(pk=request_id, buyer_id=buyer.pk)
    return found.values_list("order_id", flat=True).first()


def held_photo_for_viewer(user, photo_id: int) -> HeldPhoto | None:
    """A held photo if the user is the buyer who chose it; None for anyone else (a 404)."""
    return HeldPhoto.objects.filter(pk=photo_id, uploaded_by_id=user.pk).first()


# -- what the refund policy is told about an order (D-6, D-7) --------------------------------

MONEY_BACK = [Refund.Destination.CARD, Refund.Destination.ACCOUNT_CREDIT]


def paid_facts(order: Order, *, excluding: Refund | None = None) -> policy.PaidFacts:
    """What was paid for the order and what has gone back. Every refund counts until support
    replaced it (pending and failed ones may still move money, D-7); `excluding` leaves out the
    refund being replaced; every chargeback the platform has not won counts too (L-8.2, L-7.2).
    Uses the order's prefetched `refunds` (and `chargebacks`, when prefetched) when a page
    loaded them (no query), else one query."""
    excluded = excluding.pk if excluding is not None else None
    if "refunds" in getattr(order, "_prefetched_objects_cache", {}):
        counted = [r for r in order.refunds.all() if r.replaced_by_id is None and r.pk != excluded]
        chargebacks = order._prefetched_objects_cache.get("chargebacks", ())
        totals = {
            "card": to_cents(sum((r.amount for r in counted if r.destination == "card"), ZERO)),
            "money_back": to_cents(
                sum((r.amount for r in counted if r.destination in MONEY_BACK), ZERO)
            ),
            "charged_back": to_cents(
                sum((c.amount_at_stake for c in chargebacks if c.status != "won"), ZERO)
            ),
        }
    else:
        totals = _money_back_totals(Order.objects.filter(pk=order.pk), excluding=excluded)[0]
    return _paid(order, totals)


def paid_facts_of(orders: list[Order]) -> dict[int, policy.PaidFacts]:
    """`paid_facts` for a batch of orders, by order id, in two grouped queries (their refunds,
    their chargebacks not won), which stay index lookups however large the tables (D-8)."""
    ids = [order.pk for order in orders]
    refunded = {
        row["order_id"]: row
        for row in Refund.objects.filter(order_id__in=ids, replaced_by__isnull=True)
        .values("order_id")
        .annotate(
            card=MoneySum("amount", filter=Q(destination=Refund.Destination.CARD)),
            money_back=MoneySum("amount", filter=Q(destination__in=MONEY_BACK)),
        )
        .order_by()
    }
    charged_back = dict(
        Chargeback.objects.filter(order_id__in=ids)
        .exclude(status=Chargeback.Status.WON)
        .values("order_id")
        .annotate(total=MoneySum("amount_at_stake"))
        .order_by()
        .values_list("order_id", "total")
    )
    nothing = {"card": ZERO, "money_back": ZERO}
    return {
        order.pk: _paid(
            order,
            refunded.get(order.pk, nothing) | {"charged_back": charged_back.get(order.pk, ZERO)},
        )
        for order in orders
    }


def _money_back_totals(orders: QuerySet, *, excluding: int | None = None) -> list[dict]:
    """Per order of `orders` (`pk`): its refunds to card (`card`), to card and account credit
    (`money_back`), and its chargebacks not won (`charged_back`), in one query."""
    refunds = Refund.objects.filter(order=OuterRef("pk"), replaced_by__isnull=True).exclude(
        pk=excluding
    )
    chargebacks = Chargeback.objects.filter(order=OuterRef("pk")).exclude(
        status=Chargeback.Status.WON
    )
    return list(
        orders.order_by()
        .annotate(
            card=_correlated_sum(refunds.filter(destination=Refund.Destination.CARD), "amount"),
            money_back=_correlated_sum(refunds.filter(destination__in=MONEY_BACK), "amount"),
            charged_back=_correlated_sum(chargebacks, "amount_at_stake"),
        )
        .values("pk", "card", "money_back", "charged_back")
    )


def _correlated_sum(queryset: QuerySet, field: str):
    """The sum of `field` over a queryset correlated to the outer order (0.00 over none)."""
    totals = queryset.order_by().values("order").annotate(total=MoneySum(field)).values("total")
    return Cents(Coalesce(Subquery(totals), Value(ZERO), output_field=MONEY_FIELD))


def _paid(order: Order, totals) -> policy.PaidFacts:
    return policy.PaidFacts(
        amount_charged=order.amount_charged,
        account_credit_applied=order.account_credit_applied,
        refunded_to_card=totals["card"],
        refunded_total=totals["money_back"],
        charged_back=totals["charged_back"],
    )


def refund_terms(version) -> policy.RefundTerms:
    return policy.RefundTerms(
        quality_window_pickup_minutes=version.quality_window_pickup_minutes,
        quality_window_delivery_minutes=version.quality_window_delivery_minutes,
        late_partial_minutes=version.late_partial_minutes,
        late_full_minutes=version.late_full_minutes,
        late_auto_refund_minutes=version.late_auto_refund_minutes,
        late_partial_percent=version.late_partial_percent,
        late_small_credit=version.late_small_credit,
        weather_blocks_automatic=version.weather_blocks_automatic,
        ready_late_full_minutes=version.ready_late_full_minutes,
    )


def order_line_refunds(order: Order) -> dict[int, tuple[int, Decimal]]:
    """What decided claims took of each order line, by order item id: (units named, money given
    back for the line), in one query. Lines no decided claim named are absent."""
    rows = (
        RefundRequestItem.objects.filter(request__order=order, request__status__in=DECIDED_STATUSES)
        .values("order_item_id")
        .annotate(quantity=Sum("quantity"), amount=MoneySum("refunded_amount"))
        .order_by()
    )
    return {row["order_item_id"]: (row["quantity"], row["amount"]) for row in rows}


def order_refund_facts(order: Order) -> policy.OrderRefundFacts:
    """The order as the refund policy sees it (a query for its lines, one for what decided
    claims took of them, one for its money, one for its charges)."""
    paid = paid_facts(order)
    taken = order_line_refunds(order)
    return policy.OrderRefundFacts(
        status=order.status,
        fulfillment=order.fulfillment,
        delivered_at=order.delivered_at,
        picked_up_at=order.picked_up_at,
        closed_at=order.closed_at,
        ready_at=order.ready_at,
        estimated_delivery_at=order.estimated_delivery_at,
        estimated_ready_at=order.estimated_ready_at,
        delay_cause=order.delay_cause,
        subtotal=order.subtotal,
        delivery_fee=order.delivery_fee,
        discount_amount=order.discount_amount,
        amount_paid=order.amount_paid,
        refundable=paid.refundable,
        lines=tuple(
            policy.ClaimLine(
                item.pk,
                item.unit_price,
                item.quantity,
                item.is_promotional,
                *taken.get(item.pk, (0, ZERO)),
            )
            for item in order.items.all()
        ),
    )


def refund_eligibility(order: Order, claim: policy.Claim, *, now) -> policy.Eligibility:
    """What the policy says about a claim on this order now (for the form, the API and the
    service alike)."""
    facts = order_refund_facts(order)
    if claim.reason in (policy.Reason.LATE_DELIVERY, policy.Reason.SIGNIFICANT_DELAY):
        facts = replace(facts, under_force_majeure=order_under_force_majeure(order))
    return policy.claim_eligibility(claim, facts, refund_terms(order.policy_version), now=now)


def force_majeure_covering(placed_at, restaurant_id, *, incidents=None) -> QuerySet[Incident]:
    """The open force-majeure incidents (of `incidents`, default all) that cover an order placed
    at `placed_at` at restaurant `restaurant_id` (L-10): the window holds placed_at, and the
    incident names no restaurant (all) or that one among its restaurants. Takes values, or
    `OuterRef`s in a subquery (one left join on the incidents' restaurants, inside it)."""
    incidents = Incident.objects.all() if incidents is None else incidents
    return (
        incidents.filter(
            kind=Incident.Kind.FORCE_MAJEURE,
            status=Incident.Status.OPEN,
            starts_at__lte=placed_at,
        )
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gte=placed_at))
        .filter(Q(restaurants__isnull=True) | Q(restaurants__id=restaurant_id))
    )


def order_under_force_majeure(order: Order) -> bool:
    """Whether an open force-majeure incident covers the order (L-10). One query."""
    return order.pk in orders_under_force_majeure([order])


def orders_under_force_majeure(orders: list[Order]) -> set[int]:
    """The ids of the orders an open force-majeure incident covers (L-10), in one query."""
    covered = force_majeure_covering(OuterRef("placed_at"), OuterRef("restaurant_id"))
    ids = [order.pk for order in orders]
    return set(
        Order.objects.filter(pk__in=ids).filter(Exists(covered)).values_list("pk", flat=True)
    )


@dataclass(frozen=True)
class HeldOrder:
    """A late delivery the automatic refund holds for agents (L-10), as the policy decided it."""

    order: Order
    minutes_late: int
    refundable: Decimal


def order_list_held_for_agents(
    *, now: dt.datetime, incident: Incident | None = None, limit: int = 200
) -> list[HeldOrder]:
    """The late deliveries the automatic refund holds for agents now (L-6.1, L-10): of the
    sweep's candidates (its partial index `order_late_sweep_due`) covered by an open
    force-majeure incident (`incident`: that one), those `policy.late_auto_refund_decision`
    holds, oldest estimate first, at most `limit`, with the restaurant and the buyer. Three
    queries (the candidates, their refunds, the force-majeure incidents)."""
    incidents = None if incident is None else Incident.objects.filter(pk=incident.pk)
    covered = force_majeure_covering(
        OuterRef("placed_at"), OuterRef("restaurant_id"), incidents=incidents
    )
    orders = list(
        Order.objects.filter(LATE_SWEEP_DUE, estimated_delivery_at__lt=now)
        .filter(Exists(covered))
        .select_related("restaurant", "buyer", "policy_version")
        .order_by("estimated_delivery_at", "pk")[:limit]
    )
    facts = late_orders_facts(orders, paid_facts_of(orders))
    decisions = (
        (
            order,
            policy.late_auto_refund_decision(
                facts[order.pk], refund_terms(order.policy_version), now=now
            ),
        )
        for order in orders
    )
    return [
        HeldOrder(order, decision.minutes_late, facts[order.pk].refundable)
        for order, decision in decisions
        if decision.action == policy.LateAction.HOLD
    ]


def late_orders_facts(
    orders: list[Order], paid: dict[int, policy.PaidFacts]
) -> dict[int, policy.LateOrderFacts]:
    """The orders as the late sweep sees them (L-6.1, L-10), by id, from their `paid_facts_of`:
    one query for any number (the force-majeure incidents)."""
    held = orders_under_force_majeure(orders)
    return {
        order.pk: policy.LateOrderFacts(
            fulfillment=order.fulfillment,
            status=order.status,
            estimated_delivery_at=order.estimated_delivery_at,
            delivered_at=order.delivered_at,
            delay_cause=order.delay_cause,
            refundable=paid[order.pk].refundable,
            auto_late_refunded=order.auto_late_refunded_at is not None,
            under_force_majeure=order.pk in held,
        )
        for order in orders
    }


def refundable_payment_ids(orders: list[Order]) -> dict[int, int]:
    """Each order's first succeeded charge, the one its card refunds go back to (D-7), as
    {order id: payment id}, in one query; an order with none is absent."""
    first: dict[int, int] = {}
    for order_id, payment_id in (
        Payment.objects.filter(order__in=orders, status=Payment.Status.SUCCEEDED)
        .order_by("created_at", "pk")
        .values_list("order_id", "pk")
    ):
        first.setdefault(order_id, payment_id)
    return first


def order_late_candidates(
    *, now: dt.datetime, limit: int, after: tuple[dt.datetime, int] | None = None
) -> list[tuple[dt.datetime, int]]:
    """Delivery orders that may be over their automatic-refund lateness (L-6.1), as
    (estimated_delivery_at, id), oldest estimate first, after the keyset `after`. Reads the
    partial index `order_late_sweep_due` only; the threshold is the smallest any policy version
    sets, and each order is judged by its own version when locked."""
    shortest = (
        PolicyVersion.objects.published().aggregate(m=Min("late_auto_refund_minutes"))["m"] or 0
    )
    cutoff = now - dt.timedelta(minutes=shortest)
    due = Order.objects.filter(LATE_SWEEP_DUE, estimated_delivery_at__lt=cutoff)
    if after is not None:
        due = due.filter(
            Q(estimated_delivery_at__gt=after[0])
            | Q(estimated_delivery_at=after[0], pk__gt=after[1])
        )
    return list(
        due.order_by("estimated_delivery_at", "pk").values_list("estimated_delivery_at", "pk")[
            :limit
        ]
    )


def refund_ids_due(*, now: dt.datetime, limit: int) -> list[int]:
    """Card refunds whose next try is due (D-7), the longest waiting first (partial index
    `refund_next_attempt_due`)."""
    return list(
        Refund.objects.filter(next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def refund_requests_awaiting_second_approval() -> QuerySet:
    """Decisions above the four-eyes threshold that no supervisor has confirmed yet (D-6,
    L-4.1), oldest decision first, with the order, its restaurant and pinned version, the buyer
    and who decided; constant queries."""
    Status = RefundRequest.Status
    return (
        RefundRequest.objects.filter(
            status__in=[Status.APPROVED, Status.PARTIALLY_APPROVED],
            needs_second_approval=True,
            second_approved_by__isnull=True,
        )
        .select_related("order__restaurant", "order__policy_version", "buyer", "decided_by")
        .order_by("decided_at", "pk")
    )
