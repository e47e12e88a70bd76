"""Every write to orders: placement with its payment, and the order lifecycle (D-5)."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_fsm import has_transition_perm

from core.errors import DomainError, InvalidInput
from core.fsm import apply_transition
from core.money import ZERO
from core.services import notify, notify_restaurant
from credits import selectors as credit_selectors
from credits import services as credit_services
from credits.models import DiscountCode
from credits.policy import discount_code_check
from orders import policy
from orders.gateway import get_gateway
from orders.models import (
    MenuItem,
    Order,
    OrderEvent,
    OrderItem,
    Payment,
    PolicyVersion,
    Restaurant,
    is_restaurant_member,
    is_support,
)
from refunds import services as refund_services

MAX_QUANTITY_PER_LINE = 50
MAX_LINES = 30


@dataclass(frozen=True)
class LineRequest:
    menu_item_id: int
    quantity: int


def order_event_record(
    *,
    order: Order,
    kind: str,
    actor,
    role: str,
    message: str,
    name: str = "",
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    clauses=(),
    amount: Decimal | None = None,
    at: dt.datetime | None = None,
) -> OrderEvent:
    """Add a line to the order's timeline: who did what, when, why, under which clauses."""
    return OrderEvent.objects.create(
        order=order,
        kind=kind,
        name=name,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        actor_role=role,
        message=message,
        reason=reason,
        clauses=list(clauses),
        amount=amount,
        created_at=at or timezone.now(),
    )


def _validated_lines(restaurant: Restaurant, lines: list[LineRequest]) -> list[tuple]:
    if not lines:
        raise InvalidInput("empty_order", "An order needs at least one item.")
    if len(lines) > MAX_LINES:
        raise InvalidInput("too_many_lines", f"An order can have at most {MAX_LINES} lines.")
    quantities: dict[int, int] = {}
    for line in lines:
        if not 1 <= line.quantity <= MAX_QUANTITY_PER_LINE:
            raise InvalidInput(
                "invalid_quantity",
                f"Quantity must be between 1 and {MAX_QUANTITY_PER_LINE} (got {line.quantity}).",
            )
        quantities[line.menu_item_id] = quantities.get(line.menu_item_id, 0) + line.quantity
    items = MenuItem.objects.in_bulk(list(quantities))
    for item_id, quantity in quantities.items():
        item = items.get(item_id)
        if item is None:
            raise InvalidInput("unknown_menu_item", f"There is no menu item {item_id}.")
        if item.restaurant_id != restaurant.pk:
            raise InvalidInput(
                "item_from_other_restaurant", f"{item.name} is not on {restaurant.name}'s menu."
            )
        if not item.is_available:
            raise InvalidInput("item_unavailable", f"{item.name} is not available right now.")
        if quantity > MAX_QUANTITY_PER_LINE:
            raise InvalidInput(
                "invalid_quantity", f"At most {MAX_QUANTITY_PER_LINE} of {item.name} per order."
            )
    return [(items[item_id], quantity) for item_id, quantity in quantities.items()]


def _check_can_order(*, buyer, restaurant: Restaurant, fulfillment: str, address: str, now):
    if fulfillment not in Order.Fulfillment.values:
        raise InvalidInput("invalid_fulfillment", f"Unknown fulfilment {fulfillment!r}.")
    if not restaurant.offers(fulfillment):
        label = Order.Fulfillment(fulfillment).label.lower()
        raise InvalidInput("fulfillment_not_offered", f"{restaurant.name} does not offer {label}.")
    if not restaurant.is_open_at(now):
        opens = timezone.localtime(restaurant.next_opening(now))
        raise InvalidInput(
            "restaurant_closed",
            f"{restaurant.name} is closed now; it opens at {opens:%H:%M} on {opens:%a %d %b}.",
        )
    if fulfillment == Order.Fulfillment.DELIVERY and not address.strip():
        raise InvalidInput("address_required", "A delivery order needs a delivery address.")


@transaction.atomic
def order_place(
    *,
    buyer,
    restaurant: Restaurant,
    lines: list[LineRequest],
    fulfillment: str,
    delivery_address: str = "",
    discount_code: str = "",
    use_credit: bool = False,
    idempotency_key: str | None = None,
) -> Order:
    """Place and pay for an order: price it (D-7), redeem the code, spend credit, charge the
    card. Any refusal leaves nothing behind: no order, code and credit untouched, no charge."""
    now = timezone.now()
    _check_can_order(
        buyer=buyer,
        restaurant=restaurant,
        fulfillment=fulfillment,
        address=delivery_address,
        now=now,
    )
    items = _validated_lines(restaurant, lines)
    quote = order_quote(
        buyer=buyer,
        restaurant=restaurant,
        items=items,
        fulfillment=fulfillment,
        discount_code=discount_code,
        use_credit=use_credit,
        now=now,
        for_update=True,
    )
    price, discount = quote.price, quote.discount
    order = _order_create(
        buyer=buyer,
        restaurant=restaurant,
        fulfillment=fulfillment,
        address=delivery_address,
        version=quote.version,
        discount=discount,
        price=price,
        now=now,
    )
    _create_lines(order, items)
    if discount is not None:
        credit_services.discount_code_redeem(discount=discount, order=order, now=now)
    for spend in price.credit_spends:
        credit_services.credit_spend(grant_id=spend.grant_id, amount=spend.amount, order=order)
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.TRANSITION,
        name="place",
        to_status=order.status,
        actor=buyer,
        role=OrderEvent.Role.BUYER,
        message=f"Order placed at {restaurant.name}.",
        clauses=price.clauses,
        amount=order.total,
        at=now,
    )
    if price.amount_charged > 0:
        _charge_card(order, idempotency_key=idempotency_key or f"order:{order.pk}:charge", now=now)
    return order


@dataclass(frozen=True)
class Quote:
    price: policy.OrderPrice
    discount: DiscountCode | None
    version: PolicyVersion


def order_quote(
    *,
    buyer,
    restaurant: Restaurant,
    items: list[tuple[MenuItem, int]],
    fulfillment: str,
    discount_code: str = "",
    use_credit: bool = False,
    now: dt.datetime,
    for_update: bool = False,
) -> Quote:
    """Price a cart as placement does (D-7): the code must qualify (L-7.2), credit is offered
    to the policy (L-7.1). The cart's preview reads; placement passes `for_update` to lock the
    code and the credit it is about to spend."""
    version = PolicyVersion.objects.in_force(now)
    line_facts = [policy.LineFacts(item.price, quantity) for item, quantity in items]
    discount, discount_facts = None, None
    if discount_code.strip():
        discount, discount_facts = credit_selectors.discount_code_find(
            discount_code, buyer=buyer, for_update=for_update
        )
        decision = discount_code_check(
            discount_facts,
            buyer_id=buyer.pk,
            restaurant_id=restaurant.pk,
            subtotal=sum((line.unit_price * line.quantity for line in line_facts), ZERO),
            now=now,
        )
        if not decision.allowed:
            raise InvalidInput(decision.code, decision.detail, clauses=decision.clauses)
    is_delivery = fulfillment == Order.Fulfillment.DELIVERY
    price = policy.price_order(
        lines=line_facts,
        delivery_fee=restaurant.delivery_fee if is_delivery else ZERO,
        discount=discount_facts,
        credits=credit_selectors.credit_facts(buyer, for_update=for_update) if use_credit else [],
        use_credit=use_credit,
        promo_credit_min_order=version.promo_credit_min_order,
        now=now,
    )
    return Quote(price=price, discount=discount, version=version)


@transaction.atomic
def order_place_replacement(
    *, original: Order, items: list[tuple[MenuItem, int]], actor, note: str
):
    """A replacement order offered by support instead of a refund (L-4.1 step 4, L-6.2): the
    same restaurant, fulfilment and address, the items given, at no charge to the buyer."""
    now = timezone.now()
    _check_can_order(
        buyer=original.buyer,
        restaurant=original.restaurant,
        fulfillment=original.fulfillment,
        address=original.delivery_address,
        now=now,
    )
    subtotal = sum((item.price * quantity for item, quantity in items), ZERO)
    price = policy.OrderPrice(
        subtotal=subtotal,
        delivery_fee=ZERO,
        discount_amount=subtotal,
        total=ZERO,
        promo_credit_applied=ZERO,
        account_credit_applied=ZERO,
        amount_charged=ZERO,
        credit_spends=(),
        clauses=("L-4.1",),
    )
    order = _order_create(
        buyer=original.buyer,
        restaurant=original.restaurant,
        fulfillment=original.fulfillment,
        address=original.delivery_address,
        version=original.policy_version,
        discount=None,
        price=price,
        now=now,
    )
    _create_lines(order, items)
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.TRANSITION,
        name="place",
        to_status=order.status,
        actor=actor,
        role=OrderEvent.Role.SUPPORT,
        message=f"Replacement for order #{original.pk}, free of charge. {note}".strip(),
        clauses=("L-4.1",),
        at=now,
    )
    return order


def _create_lines(order: Order, items) -> None:
    OrderItem.objects.bulk_create(
        OrderItem(
            order=order,
            menu_item=item,
            name=item.name,
            unit_price=item.price,
            quantity=quantity,
            is_promotional=item.is_promotional,
        )
        for item, quantity in items
    )


def _order_create(*, buyer, restaurant, fulfillment, address, version, discount, price, now):
    estimated_ready = now + dt.timedelta(minutes=restaurant.preparation_minutes)
    is_delivery = fulfillment == Order.Fulfillment.DELIVERY
    try:
        with transaction.atomic():
            return Order.objects.create(
                buyer=buyer,
                restaurant=restaurant,
                fulfillment=fulfillment,
                delivery_address=address.strip() if is_delivery else "",
                policy_version=version,
                discount_code=discount,
                subtotal=price.subtotal,
                delivery_fee=price.delivery_fee,
                discount_amount=price.discount_amount,
                promo_credit_applied=price.promo_credit_applied,
                account_credit_applied=price.account_credit_applied,
                amount_charged=price.amount_charged,
                total=price.total,
                placed_at=now,
                estimated_ready_at=estimated_ready,
                estimated_delivery_at=(
                    estimated_ready + dt.timedelta(minutes=restaurant.delivery_minutes)
                    if is_delivery
                    else None
                ),
            )
    except IntegrityError as error:
        # PostgreSQL names the constraint, SQLite the columns.
        if not {"order_one_use_of_a_code_per_buyer", "discount_code_id"} & set(
            str(error).replace(",", " ").replace('"', " ").split()
        ):
            raise
        raise InvalidInput(
            "code_used", f"You have already used the code {discount}.", clauses=["L-7.2"]
        ) from error


def _charge_card(order: Order, *, idempotency_key: str, now) -> Payment:
    """Charge the card for the order. A decline refuses the whole placement.

    Runs inside the placement transaction; the gateway's idempotency key makes a retried
    placement charge once.
    """
    gateway = get_gateway()
    result = gateway.charge(
        amount=order.amount_charged,
        currency=_currency(),
        idempotency_key=idempotency_key,
        description=f"lojix order {order.pk} at {order.restaurant.name}",
    )
    if not result.succeeded:
        raise DomainError(
            "payment_declined", result.message or "The card was declined.", kind="invalid"
        )
    payment = Payment.objects.create(
        order=order,
        amount=order.amount_charged,
        gateway=gateway.name,
        gateway_reference=result.reference,
        idempotency_key=idempotency_key,
        status=Payment.Status.SUCCEEDED,
        created_at=now,
    )
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.PAYMENT,
        name="charge",
        actor=None,
        role=OrderEvent.Role.SYSTEM,
        message=f"{order.amount_charged} {_currency()} charged to the card.",
        amount=order.amount_charged,
        at=now,
    )
    return payment


def _currency() -> str:
    return settings.LOJIX_CURRENCY


# -- the lifecycle ------------------------------------------------------------------------

SELLER_ACTIONS = {
    "accept": "Accepted by the restaurant.",
    "start_preparation": "The restaurant started preparing the order.",
    "mark_ready": "The order is ready.",
    "dispatch": "Handed to the courier.",
    "deliver": "Delivered.",
    "hand_over": "Picked up.",
    "serve": "Served.",
    "close": "Closed.",
}


# Fulfilled: the restaurant has earned the order (its sale is booked, L-9).
COMPLETED_STATUSES = {Order.Status.DELIVERED, Order.Status.PICKED_UP, Order.Status.CLOSED}


def order_for_update(order_id: int) -> Order:
    """Lock an order row for a decision. Callers are inside a transaction."""
    try:
        return (
            Order.objects.select_for_update(of=("self",))
            .select_related("restaurant")
            .get(pk=order_id)
        )
    except Order.DoesNotExist as error:
        raise DomainError(
            "not_found", f"There is no order {order_id}.", kind="not_found"
        ) from error


@transaction.atomic
def order_advance(*, order_id: int, action: str, actor) -> Order:
    """Move an order one step along its lifecycle (D-5): its restaurant's partners do, and
    support may step in for them (K-OV).

    Refuses, changing nothing, an action the state machine does not allow from the order's
    state, or one the actor may not take.
    """
    if action not in SELLER_ACTIONS:
        raise InvalidInput("unknown_action", f"Unknown order action {action!r}.")
    order = order_for_update(order_id)
    transition_method = getattr(order, action)
    if not has_transition_perm(transition_method, actor):
        raise DomainError(
            "transition_not_allowed",
            f"Cannot {action.replace('_', ' ')} an order that is {order.get_status_display()}.",
        )
    now = timezone.now()
    from_status = order.status
    apply_transition(order, transition_method, at=now)
    role = _partner_or_support_role(order, actor)
    stepped_in = " Support stepped in for the restaurant." if _stepping_in(role) else ""
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.TRANSITION,
        name=action,
        from_status=from_status,
        to_status=order.status,
        actor=actor,
        role=role,
        message=f"{SELLER_ACTIONS[action]}{stepped_in}",
        clauses=_stepping_in(role),
        at=now,
    )
    if order.status in COMPLETED_STATUSES:
        refund_services.restaurant_record_sale(order)
    return order


# -- cancellation (L-2.1, L-2.2, K-B1..3, K-S1..3, K-OV) -------------------------------------

CANCELLATION_REFUND_KEY = "order:{}:cancellation"


def buyer_cancellation_decision(order: Order, *, now: dt.datetime) -> policy.CancellationDecision:
    """What cancelling would do now, for the order page, the API and the service alike."""
    version = order.policy_version
    return policy.decide_buyer_cancellation(
        policy.BuyerCancellationFacts(
            status=order.status,
            accepted_at=order.accepted_at,
            window_minutes=order.restaurant.cancellation_window_minutes,
            fee_percent=order.restaurant.cancellation_fee_percent,
            fee_min_percent=version.cancellation_fee_min_percent,
            fee_max_percent=version.cancellation_fee_max_percent,
            amount_paid=order.amount_paid,
            previously_denied=order.cancellation_denied_at is not None,
        ),
        now=now,
    )


@transaction.atomic
def order_cancel_by_buyer(*, order_id: int, actor, quote: Decimal | None = None):
    """The buyer cancels (L-2.1): at once and free before acceptance, or as a request to the
    restaurant at the fee quoted. `quote` is the fee the buyer was shown: if the outcome or the
    fee changed since, nothing happens and the new outcome is returned in the error (409).
    Returns (order, decision)."""
    order = _order_of_buyer_for_update(order_id, actor)
    now = timezone.now()
    decision = buyer_cancellation_decision(order, now=now)
    if quote is not None and (not decision.allowed or decision.fee != quote):
        raise DomainError(
            "quote_changed",
            f"The cancellation terms changed since you saw them. {decision.detail}",
            clauses=decision.clauses,
            extra={"cancellation": cancellation_summary(decision)},
        )
    if not decision.allowed:
        raise DomainError(decision.code, decision.detail, clauses=decision.clauses)
    if decision.outcome == policy.CancelOutcome.CANCEL_NOW:
        _cancel_and_refund(
            order,
            transition=order.cancel,
            refund=decision.refund,
            actor=actor,
            role=OrderEvent.Role.BUYER,
            message="You cancelled the order before the restaurant accepted it: free.",
            clauses=decision.clauses,
            now=now,
        )
        notify_restaurant(
            order.restaurant,
            title=f"Order #{order.pk} cancelled",
            body=f"The buyer cancelled order #{order.pk} before it was accepted.",
            url="/seller/",
        )
    else:
        _request_cancellation(order, decision, actor=actor, now=now)
    return order, decision


def _order_of_buyer_for_update(order_id: int, buyer) -> Order:
    order = order_for_update(order_id)
    if order.buyer_id != buyer.pk:
        raise DomainError("not_found", f"You have no order {order_id}.", kind="not_found")
    return order


def _request_cancellation(order, decision, *, actor, now) -> None:
    apply_transition(order, order.request_cancellation, at=now, cancellation_fee=decision.fee)
    minutes = order.policy_version.cancellation_response_minutes
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.TRANSITION,
        name="request_cancellation",
        from_status=Order.Status.ACCEPTED,
        to_status=order.status,
        actor=actor,
        role=OrderEvent.Role.BUYER,
        message=f"You asked to cancel; if the restaurant agrees you get {decision.refund} back "
        f"({decision.fee} fee). Waiting for the restaurant.",
        clauses=decision.clauses,
        amount=decision.fee,
        at=now,
    )
    notify_restaurant(
        order.restaurant,
        title=f"Cancellation request for order #{order.pk}",
        body=f"The buyer asks to cancel order #{order.pk}. Approve (you keep {decision.fee}) or "
        f"deny within {minutes} minutes, or support decides.",
        order=None,
        url="/seller/cancellation-requests/",
    )


@transaction.atomic
def order_cancellation_approve(*, order_id: int, actor) -> Order:
    """The restaurant (or support, K-OV) approves a buyer's cancellation request: the buyer gets
    what was paid back less the quoted fee, which the restaurant keeps (L-2.1)."""
    order = _order_with_request_for_update(order_id, actor, order_transition="approve")
    now = timezone.now()
    fee = order.cancellation_fee or ZERO
    role = _partner_or_support_role(order, actor)
    _cancel_and_refund(
        order,
        transition=order.approve,
        refund=order.amount_paid - fee,
        actor=actor,
        role=role,
        message=f"Cancellation approved{_by(role)}; a fee of {fee} applies.",
        clauses=("K-B1", "L-2.1", *_stepping_in(role)),
        now=now,
    )
    if fee > ZERO:
        refund_services.restaurant_ledger_record(
            restaurant_id=order.restaurant_id,
            kind="cancellation_fee",
            amount=fee,
            order=order,
            description=f"Cancellation fee kept: order #{order.pk}",
        )
    _close_cancellation_case(order, actor=actor, action="Cancellation approved", now=now)
    return order


@transaction.atomic
def order_cancellation_deny(*, order_id: int, actor, reason: str = "") -> Order:
    """The restaurant (or support, K-OV) denies a buyer's cancellation request: the order goes
    on, and the buyer cannot ask again."""
    order = _order_with_request_for_update(order_id, actor, order_transition="deny")
    now = timezone.now()
    role = _partner_or_support_role(order, actor)
    apply_transition(order, order.deny, at=now, cancellation_fee=None, cancellation_denied_at=now)
    message = f"Cancellation request denied{_by(role)}; the order goes on."
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.TRANSITION,
        name="deny",
        from_status=Order.Status.CANCELLATION_REQUESTED,
        to_status=order.status,
        actor=actor,
        role=role,
        message=message,
        reason=reason,
        clauses=("L-2.1", *_stepping_in(role)),
        at=now,
    )
    notify(
        user=order.buyer,
        title=f"Order #{order.pk}: cancellation denied",
        body=f"{message} {reason}".strip(),
        order=order,
    )
    _close_cancellation_case(order, actor=actor, action="Cancellation denied", now=now)
    return order


def _order_with_request_for_update(order_id: int, actor, *, order_transition: str) -> Order:
    order = order_for_update(order_id)
    if not (is_restaurant_member(order.restaurant_id, actor) or is_support(actor)):
        raise DomainError("not_found", f"There is no order {order_id}.", kind="not_found")
    if order.status != Order.Status.CANCELLATION_REQUESTED:
        raise DomainError(
            "no_cancellation_request",
            f"Order #{order.pk} has no cancellation request waiting (it is "
            f"{order.get_status_display().lower()}).",
        )
    return order


def _close_cancellation_case(order, *, actor, action, now) -> None:
    from disputes.models import Intervention
    from disputes.services import intervention_resolve_for_order

    intervention_resolve_for_order(
        order=order,
        kind=Intervention.Kind.UNANSWERED_CANCELLATION,
        actor=actor,
        action=action,
        now=now,
    )


@transaction.atomic
def order_cancel_by_restaurant(*, order_id: int, actor, reason: str, explanation: str) -> Order:
    """The restaurant cancels (L-2.2, K-S1..3): the buyer is told at once with the explanation,
    refunded in full, and given a goodwill promotional credit."""
    order = order_for_update(order_id)
    if not (is_restaurant_member(order.restaurant_id, actor) or is_support(actor)):
        raise DomainError("not_found", f"There is no order {order_id}.", kind="not_found")
    version = order.policy_version
    decision = policy.decide_restaurant_cancellation(
        status=order.status,
        reason=reason,
        explanation=explanation,
        amount_paid=order.amount_paid,
        goodwill=version.restaurant_cancel_goodwill,
    )
    if not decision.allowed:
        kind = "conflict" if decision.code == "not_cancellable" else "invalid"
        raise DomainError(decision.code, decision.detail, clauses=decision.clauses, kind=kind)
    now = timezone.now()
    explanation = explanation.strip()
    label = policy.RestaurantCancelReason.LABELS[reason]
    role = _partner_or_support_role(order, actor)
    _cancel_and_refund(
        order,
        transition=order.cancel_by_restaurant,
        refund=decision.refund,
        actor=actor,
        role=role,
        message=f"Cancelled by the restaurant ({label.lower()}): {explanation}",
        clauses=decision.clauses + _stepping_in(role),
        now=now,
        notify_buyer=False,
        changes={"cancellation_reason": reason, "cancellation_explanation": explanation},
    )
    goodwill = _grant_goodwill(order, decision.goodwill_credit, now=now)
    notify(
        user=order.buyer,
        title=f"{order.restaurant.name} cancelled order #{order.pk}",
        body=f"{order.restaurant.name} cancelled your order: {explanation}\n"
        f"Reason: {label}. You get {decision.refund} {settings.LOJIX_CURRENCY} back in full"
        + (f" and {goodwill} {settings.LOJIX_CURRENCY} promotional credit." if goodwill else "."),
        order=order,
    )
    return order


def _grant_goodwill(order: Order, amount: Decimal, *, now) -> Decimal:
    if amount <= ZERO:
        return ZERO
    credit_services.credit_grant_create(
        buyer=order.buyer,
        kind="promo",
        amount=amount,
        source="restaurant_cancel_goodwill",
        reason=f"Sorry: {order.restaurant.name} cancelled order #{order.pk}",
        expires_at=now + dt.timedelta(days=order.policy_version.promo_credit_expiry_days),
        order=order,
    )
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.CREDIT,
        name="goodwill_credit",
        actor=None,
        role=OrderEvent.Role.POLICY,
        message=f"{amount} {settings.LOJIX_CURRENCY} promotional credit for the inconvenience.",
        clauses=("L-2.2", "L-7.1"),
        amount=amount,
        at=now,
    )
    return amount


def _cancel_and_refund(
    order,
    *,
    transition,
    refund,
    actor,
    role,
    message,
    clauses,
    now,
    notify_buyer=True,
    changes=None,
) -> None:
    """Cancel, refund what is due by origin (D-7), give back promotional credit the order spent
    and tell the buyer. The refund's key is the order's, so it happens once."""
    from_status = order.status
    apply_transition(order, transition, at=now, **(changes or {}))
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.TRANSITION,
        name=transition.__name__,
        from_status=from_status,
        to_status=order.status,
        actor=actor,
        role=role,
        message=message,
        clauses=clauses,
        at=now,
    )
    if refund > ZERO:
        refund_services.refund_order(
            order_id=order.pk,
            amount=refund,
            method="original",
            idempotency_key=CANCELLATION_REFUND_KEY.format(order.pk),
            actor=actor,
            role=role,
            reason=message,
            clauses=clauses,
        )
    credit_services.credit_restore_for_order(order=order, now=now)
    if notify_buyer:
        notify(
            user=order.buyer,
            title=f"Order #{order.pk} cancelled",
            body=f"{message} {refund} {settings.LOJIX_CURRENCY} comes back to you; the order "
            "page shows when it reaches you.",
            order=order,
        )


def _partner_or_support_role(order: Order, actor) -> str:
    if is_restaurant_member(order.restaurant_id, actor):
        return OrderEvent.Role.RESTAURANT
    return OrderEvent.Role.SUPPORT


def _stepping_in(role: str) -> tuple[str, ...]:
    """K-OV is cited when support acted in the restaurant's place."""
    return ("K-OV",) if role == OrderEvent.Role.SUPPORT else ()


def _by(role: str) -> str:
    return " by support on the restaurant's behalf (K-OV)" if _stepping_in(role) else ""


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


@transaction.atomic
def restaurant_update_terms(
    *, restaurant_id: int, actor, window_minutes: int, fee_percent: Decimal
) -> Restaurant:
    """A partner sets the restaurant's cancellation window and fee, inside the bounds of the
    policy version in force. Orders already asked to cancel keep the fee they were quoted."""
    restaurant = Restaurant.objects.select_for_update().filter(pk=restaurant_id).first()
    if restaurant is None or not is_restaurant_member(restaurant_id, actor):
        raise DomainError("not_found", f"There is no restaurant {restaurant_id}.", kind="not_found")
    errors = policy.restaurant_terms_errors(
        window_minutes=window_minutes,
        fee_percent=fee_percent,
        bounds=restaurant_terms_bounds(timezone.now()),
    )
    if errors:
        raise InvalidInput(
            "terms_out_of_bounds",
            " ".join(errors.values()),
            clauses=["K-B1", "L-2.1"],
            extra={"errors": errors},
        )
    restaurant.cancellation_window_minutes = window_minutes
    restaurant.cancellation_fee_percent = fee_percent
    restaurant.save(update_fields=["cancellation_window_minutes", "cancellation_fee_percent"])
    return restaurant
