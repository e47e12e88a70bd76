"""Placing orders: priced by the policy (D-7), paid, and replacement orders (L-4.1, L-6.2)."""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import DomainError, InvalidInput
from core.money import ZERO
from credits import selectors as credit_selectors
from credits import services as credit_services
from credits.models import DiscountCode
from credits.policy import discount_code_check
from orders import policy
from orders.events import order_event_record
from orders.gateway import get_gateway
from orders.models import MenuItem, Order, OrderEvent, OrderItem, Payment, PolicyVersion, Restaurant

MAX_QUANTITY_PER_LINE = 50


MAX_LINES = 30


@dataclass(frozen=True)
class LineRequest:
    menu_item_id: int
    quantity: int


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
