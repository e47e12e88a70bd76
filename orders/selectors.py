"""Read queries for orders: constant query counts, whatever the number of rows."""

import datetime as dt
import math
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.cache import cache_delete, cache_get, cache_set
from disputes.models import Intervention
from orders import policy
from orders.models import SELLER_ACTIONS, MenuItem, Order, OrderEvent, PolicyVersion, Restaurant
from orders.policy import support_decides_cancellation_at
from orders.policy_text import PolicyDocument, parse_policy
from refunds.selectors import paid_facts

# What a row of the buyer's order list shows (the page and `GET /api/orders/`): an order is
# 38 columns wide, and building 25 of them whole was a tenth of the list's time.
ORDER_LIST_COLUMNS = [
    "id",
    "status",
    "fulfillment",
    "total",
    "amount_charged",
    "account_credit_applied",
    "placed_at",
    "estimated_ready_at",
    "estimated_delivery_at",
    "restaurant__id",
    "restaurant__name",
    "restaurant__slug",
]


def order_list_for_buyer(buyer) -> QuerySet[Order]:
    """The buyer's orders, newest first, with the columns their list shows
    (ORDER_LIST_COLUMNS; reading another one costs a query per order)."""
    return (
        Order.objects.filter(buyer=buyer)
        .select_related("restaurant")
        .only(*ORDER_LIST_COLUMNS)
        .order_by("-placed_at")
    )


def order_detail_for_buyer(buyer, order_id: int) -> Order:
    """The buyer's own order with everything its page shows; another buyer's is a 404. The
    timeline names each event's actor by role, never by user: no user rows are read."""
    return (
        Order.objects.filter(buyer=buyer)
        .select_related("restaurant", "policy_version", "discount_code")
        .prefetch_related("items", "payments", "refunds", "events")
        .get(pk=order_id)
    )


def order_list_for_partner(user) -> QuerySet[Order]:
    """Orders of the restaurants the user belongs to."""
    return (
        Order.objects.filter(restaurant__members=user)
        .select_related("restaurant", "buyer")
        .prefetch_related("items")
    )


def order_detail_for_partner(user, order_id: int) -> Order | None:
    """One order of the user's restaurants for the seller's order page, or None (not theirs,
    or no such order): its lines, its refunds (what approving a cancellation request would
    refund) and its timeline for the partner, which leaves out the buyer's card payments (D-4:
    no payment details); each event names its actor by role."""
    partner_events = OrderEvent.objects.exclude(kind=OrderEvent.Kind.PAYMENT)
    return (
        order_list_for_partner(user)
        .select_related("policy_version")
        .prefetch_related("refunds", Prefetch("events", queryset=partner_events))
        .filter(pk=order_id)
        .first()
    )


def order_queue_for_partner(user) -> QuerySet[Order]:
    """The seller's live queue: open orders, oldest first (new ones are marked by the page)."""
    return (
        order_list_for_partner(user)
        .exclude(status__in=Order.FINISHED_STATUSES)
        .order_by("placed_at")
    )


def order_next_actions(order: Order) -> list[str]:
    """The lifecycle actions the state machine allows from the order's state and fulfilment,
    in lifecycle order. Membership is checked by the caller's queryset, so no query here."""
    available = {t.name for t in order.get_available_status_transitions()}
    return [action for action in SELLER_ACTIONS if action in available]


def restaurant_list_for_buyers(now) -> list[Restaurant]:
    """Restaurants with open ones first (D-9), each annotated with `is_open`."""
    return list(restaurant_catalogue(now))


def restaurant_catalogue(now: dt.datetime) -> QuerySet[Restaurant]:
    """Every restaurant, open ones first, then by name; each annotated with `is_open` at `now`
    (local time), computed by the database as `Restaurant.is_open_at` does, so the list pages
    in one query whatever its length."""
    local = timezone.localtime(now).time()
    in_hours = Q(opens_at__lte=local, closes_at__gt=local)
    past_midnight = Q(opens_at__lte=local) | Q(closes_at__gt=local)
    is_open = Case(
        When(opens_at=F("closes_at"), then=Value(True)),  # around the clock
        When(Q(opens_at__lt=F("closes_at")) & in_hours, then=Value(True)),
        When(Q(opens_at__gt=F("closes_at")) & past_midnight, then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )
    return Restaurant.objects.annotate(is_open=is_open).order_by(F("is_open").desc(), "name", "pk")


def menu_for_restaurant(restaurant_id: int, *, today: dt.date) -> QuerySet[MenuItem]:
    """A restaurant's menu items, each annotated with `available_today` (on the menu and not
    sold out for the local date `today`, as `MenuItem.is_available_on` says), those first, then
    by name (one query)."""
    sold_out_today = Q(unavailable_on=today)
    available_today = Case(
        When(Q(is_available=True) & ~sold_out_today, then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )
    return (
        MenuItem.objects.filter(restaurant_id=restaurant_id)
        .annotate(available_today=available_today)
        .order_by(F("available_today").desc(), "name", "pk")
    )


def order_list_recently_finished_for_partner(user, *, since) -> QuerySet[Order]:
    """Orders of the user's restaurants that ended at or after `since`, newest first, each
    annotated with `finished_at`."""
    return (
        Order.objects.filter(
            restaurant__members=user,
            status__in=Order.FINISHED_STATUSES,
        )
        .select_related("restaurant")
        .annotate(finished_at=Coalesce("delivered_at", "picked_up_at", "closed_at", "cancelled_at"))
        .filter(finished_at__gte=since)
        .order_by("-finished_at", "-pk")
    )


def order_cancellation_requests_for_partner(user) -> QuerySet[Order]:
    """Buyers' cancellation requests waiting at the user's restaurants, the most urgent first,
    each annotated with `handed_to_support` (K-OV: support decides unless answered), with their
    refunds (what is still refundable, for the buyer's refund on approval)."""
    handed = Intervention.objects.filter(
        order=OuterRef("pk"),
        kind=Intervention.Kind.UNANSWERED_CANCELLATION,
        status=Intervention.Status.OPEN,
    )
    return (
        order_list_for_partner(user)
        .filter(status=Order.Status.CANCELLATION_REQUESTED)
        .select_related("policy_version")
        .prefetch_related("refunds")
        .annotate(handed_to_support=Exists(handed))
        .order_by("cancellation_requested_at", "pk")
    )


def order_cancellation_request_count_for_partner(user) -> int:
    return Order.objects.filter(
        restaurant__members=user, status=Order.Status.CANCELLATION_REQUESTED
    ).count()


def order_cancellation_request_refund(order: Order) -> Decimal:
    """What the buyer gets back if the restaurant approves: what is still refundable less the
    quoted fee (L-2.1, L-7.2), as `orders.services.order_cancellation_approve` refunds it."""
    return policy.cancellation_request_refund(
        paid_facts(order).refundable, order.cancellation_fee or Decimal("0")
    )


def order_cancellation_support_decides_at(order: Order) -> dt.datetime:
    """When an unanswered request goes to support (K-OV): the pinned version's
    `cancellation_response_minutes` after the buyer asked. Expects `policy_version` loaded."""
    return support_decides_cancellation_at(
        order.cancellation_requested_at, order.policy_version.cancellation_response_minutes
    )


# -- cancellation as the policy sees it (L-2.1, K-B1) ---------------------------------------


def buyer_cancellation_decision(order: Order, *, now: dt.datetime) -> policy.CancellationDecision:
    """What cancelling would do now, for the order page, the API and the service alike.

    An accepted order is judged by the window and fee pinned at acceptance (K-B1, L-2.1); a
    placed one, which has none yet, by the restaurant's current terms."""
    version = order.policy_version
    return policy.decide_buyer_cancellation(
        policy.BuyerCancellationFacts(
            status=order.status,
            accepted_at=order.accepted_at,
            window_minutes=_pinned(
                order.accepted_cancellation_window_minutes,
                order.restaurant.cancellation_window_minutes,
            ),
            fee_percent=_pinned(
                order.accepted_cancellation_fee_percent, order.restaurant.cancellation_fee_percent
            ),
            fee_min_percent=version.cancellation_fee_min_percent,
            fee_max_percent=version.cancellation_fee_max_percent,
            amount_paid=order.amount_paid,
            refundable=paid_facts(order).refundable,
            previously_denied=order.cancellation_denied_at is not None,
            denied_by_support=order_cancellation_denied_by_support(order),
            currency=settings.LOJIX_CURRENCY,
        ),
        now=now,
    )


def order_cancellation_denied_by_support(order: Order) -> bool:
    """Whether support, deciding for the restaurant (K-OV), denied the buyer's request: read
    from the timeline (prefetched by the pages that show it; one query otherwise, and only for
    an order whose request was denied)."""
    if order.cancellation_denied_at is None:
        return False
    return any(
        event.name == "deny" and event.actor_role == OrderEvent.Role.SUPPORT
        for event in order.events.all()
    )


def _pinned(pinned, current):
    return current if pinned is None else pinned


def cancellation_summary(decision: policy.CancellationDecision) -> dict:
    """The `cancellation` block of D-10: what cancelling would do now."""
    return {
        "allowed": decision.allowed,
        "requires_restaurant_approval": decision.requires_restaurant_approval,
        "fee": f"{decision.fee:.2f}",
        "refund_amount": f"{decision.refund:.2f}",
        "clauses": list(decision.clauses),
        "code": decision.code,
        "detail": decision.detail,
        "window_ends_at": decision.window_ends_at.isoformat() if decision.window_ends_at else None,
    }


def restaurant_terms_bounds(now: dt.datetime) -> policy.TermsBounds:
    """The bounds of the policy version in force, for the settings form and the service."""
    version = PolicyVersion.objects.in_force(now)
    return policy.TermsBounds(
        window_min_minutes=version.cancellation_window_min_minutes,
        window_max_minutes=version.cancellation_window_max_minutes,
        fee_min_percent=version.cancellation_fee_min_percent,
        fee_max_percent=version.cancellation_fee_max_percent,
    )


# -- the catalogue, the cart and the policy page ----------------------------------------------


def restaurant_find(restaurant_id: int | None) -> Restaurant | None:
    """A restaurant by id, or None (a cart's restaurant that may have gone)."""
    if restaurant_id is None:
        return None
    return Restaurant.objects.filter(pk=restaurant_id).first()


def menu_item_find(menu_item_id: int | None) -> MenuItem | None:
    """A menu item with its restaurant, or None for an unknown id."""
    if menu_item_id is None:
        return None
    return MenuItem.objects.select_related("restaurant").filter(pk=menu_item_id).first()


def menu_items_of_restaurant(restaurant: Restaurant) -> QuerySet[MenuItem]:
    """A restaurant's dishes by name, for its partners' menu page."""
    return MenuItem.objects.filter(restaurant=restaurant).order_by("name", "pk")


def menu_items_by_id(restaurant: Restaurant, item_ids) -> dict[int, MenuItem]:
    """The restaurant's menu items among `item_ids`, by id (one query)."""
    return MenuItem.objects.filter(restaurant=restaurant, pk__in=list(item_ids)).in_bulk()


def order_is_buyers(buyer, order_id: int) -> bool:
    """Whether the order is this buyer's (another buyer's is a 404 to them)."""
    return Order.objects.filter(pk=order_id, buyer=buyer).exists()


def order_list_for_buyer_oldest_first(buyer) -> QuerySet[Order]:
    """The buyer's orders, oldest first (the wallet lists the orders each code was used on)."""
    return Order.objects.filter(buyer=buyer).order_by("placed_at")


def orders_placed_since_exist(moment: dt.datetime) -> bool:
    """Whether any order was placed at or after `moment` (K-UP: a version cannot start before
    orders already pinned to another one)."""
    return Order.objects.filter(placed_at__gte=moment).exists()


def policy_versions(now: dt.datetime) -> tuple[PolicyVersion | None, list[PolicyVersion]]:
    """The version in force (None before the first) and every published version, newest
    first, each with `changes`: the parameters it changed from the one before (K-UP). Drafts
    and approved versions not yet published are not shown."""
    published = list(PolicyVersion.objects.published().order_by("-effective_from"))
    current = next((v for v in published if v.effective_from <= now), None)
    labels = policy_parameter_labels()
    for version, previous in zip(published, [*published[1:], None], strict=True):
        version.changes = policy.policy_changes(
            _parameters(previous, labels), _parameters(version, labels), labels
        )
    return current, published


CLAUSE_TEXTS_CACHE_KEY = "lojix:policy:clause-texts:v2"
CLAUSE_TEXTS_SECONDS = 600
# A page links a dozen clauses: each process keeps the texts it read from the cache this long
# (or until they expire, if sooner) rather than read and unpickle them for every link.
CLAUSE_TEXTS_LOCAL_SECONDS = 10
_clause_texts_local: tuple[dt.datetime, dt.datetime, dict[str, str]] | None = None


def policy_document(version: PolicyVersion | None) -> PolicyDocument:
    """A version's text parsed into its texts, sections and clauses (empty before the first)."""
    return parse_policy(version.text if version is not None else "")


def policy_clause_texts(now: dt.datetime) -> dict[str, str]:
    """Clause id -> its text in the version in force (K-UP), for the "Why?" links' tooltips:
    {clause id: "<title>. <text as one line>"}.

    Read from the cache; on a miss (or with the cache down), one query parses the version in
    force and caches it for 10 minutes or until the next published version takes effect,
    whichever is sooner. Publishing a version clears it (`policy_clause_texts_forget`). Each
    process also keeps what it read for CLAUSE_TEXTS_LOCAL_SECONDS (never past that expiry), so
    another process's publishing shows in its links within that time."""
    global _clause_texts_local
    local = _clause_texts_local
    if local is not None and local[0] <= now < local[1]:
        return local[2]
    cached = cache_get(CLAUSE_TEXTS_CACHE_KEY)
    if cached is None or now >= cached[0]:
        cached = _clause_texts_in_force(now)
        cache_set(CLAUSE_TEXTS_CACHE_KEY, cached, math.ceil((cached[0] - now).total_seconds()))
    until, texts = cached
    local_until = min(until, now + dt.timedelta(seconds=CLAUSE_TEXTS_LOCAL_SECONDS))
    _clause_texts_local = (now, local_until, texts)
    return texts


def _clause_texts_in_force(now: dt.datetime) -> tuple[dt.datetime, dict[str, str]]:
    """(until when they hold, the clause texts of the version in force at `now`): one query."""
    versions = list(
        PolicyVersion.objects.published().only("text", "effective_from").order_by("effective_from")
    )
    current = next((v for v in reversed(versions) if v.effective_from <= now), None)
    until = now + dt.timedelta(seconds=CLAUSE_TEXTS_SECONDS)
    upcoming = [v.effective_from for v in versions if v.effective_from > now]
    if upcoming:
        until = max(now + dt.timedelta(seconds=1), min(until, upcoming[0]))
    return until, policy_document(current).clause_texts()


def policy_clause_texts_forget() -> None:
    """Drop the cached clause texts, this process's included (a version was published)."""
    global _clause_texts_local
    _clause_texts_local = None
    cache_delete(CLAUSE_TEXTS_CACHE_KEY)


def policy_parameter_labels() -> dict[str, str]:
    """Every number of the policy (D-6) by field name, with its label, in the model's order."""
    skip = {"id", "label", "effective_from", "text", "summary_of_changes", "created_at", "status"}
    skip |= {"announced_through_user_id", "announced_at", "approved_at", "published_at"}
    return {
        field.name: str(field.verbose_name).capitalize()
        for field in PolicyVersion._meta.concrete_fields
        if field.name not in skip and not field.is_relation
    }


def _parameters(version: PolicyVersion | None, labels: dict[str, str]) -> dict:
    return {name: getattr(version, name) for name in labels} if version is not None else {}


def policy_version_latest_effective_from() -> dt.datetime | None:
    """The effective date of the latest published version (K-UP)."""
    latest = PolicyVersion.objects.published().order_by("-effective_from").first()
    return latest.effective_from if latest is not None else None


def policy_version_ids_to_announce(limit: int) -> list[int]:
    """Published versions whose change buyers and partners have not all been told yet."""
    return list(
        PolicyVersion.objects.published()
        .filter(announced_at=None)
        .order_by("effective_from")
        .values_list("pk", flat=True)[:limit]
    )


def order_missing_due(*, now: dt.datetime) -> QuerySet[Order]:
    """Missing orders not located within their pinned version's `locate_minutes` (L-6.2), the
    longest missing first; read through the partial index `order_missing_reported_idx`, so the
    cost follows the missing orders, not the table. One condition per policy version (they are
    few): plain timestamps, the same on every database."""
    due = Q()
    for version_id, minutes in PolicyVersion.objects.values_list("pk", "locate_minutes"):
        cutoff = now - dt.timedelta(minutes=minutes)
        due |= Q(policy_version_id=version_id, reported_missing_at__lte=cutoff)
    if not due:
        return Order.objects.none()
    return (
        Order.objects.filter(status=Order.Status.MISSING)
        .filter(due)
        .order_by("reported_missing_at", "pk")
    )


def order_ids_missing_due(*, now: dt.datetime, limit: int) -> list[int]:
    """The ids of at most `limit` missing orders due for giving up (`order_missing_due`)."""
    return list(order_missing_due(now=now).values_list("pk", flat=True)[:limit])


def missing_report_facts(order: Order) -> policy.MissingReportFacts:
    """The facts the non-delivery rule (L-6.2, L-5.1) decides on, read from the loaded order."""
    return policy.MissingReportFacts(
        fulfillment=order.fulfillment,
        status=order.status,
        delivered_at=order.delivered_at,
        delivery_window_minutes=order.policy_version.quality_window_delivery_minutes,
    )


def missing_report_decision(order: Order, *, now: dt.datetime) -> policy.MissingReportDecision:
    """Whether the buyer may report the order missing now (L-6.2, L-5.1), and why not."""
    return policy.decide_report_missing(missing_report_facts(order), now=now)


def order_missing_give_up_at(order: Order) -> dt.datetime | None:
    """When a missing order is given up unless located (L-6.2); None if it is not missing."""
    if order.status != Order.Status.MISSING or order.reported_missing_at is None:
        return None
    return policy.missing_give_up_at(order.reported_missing_at, order.policy_version.locate_minutes)


def policy_versions_awaiting_approval() -> QuerySet[PolicyVersion]:
    """Drafts submitted for review (a drafter is recorded), waiting for a second supervisor
    (K-UP), oldest first, with their drafter; one query."""
    return (
        PolicyVersion.objects.filter(status=PolicyVersion.Status.DRAFT, drafted_by__isnull=False)
        .select_related("drafted_by")
        .order_by("created_at", "pk")
    )
