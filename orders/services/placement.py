"""Placing orders: priced by the policy (D-7), paid, and replacement orders (L-4.1, L-6.2)."""

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import DomainError, InvalidInput
from core.money import ZERO
from credits import selectors as credit_selectors
from credits import services as credit_services
from credits.models import DiscountCode
from credits.policy import discount_code_check
from disputes.guards import buyer_must_not_be_suspended
from orders import policy
from orders.events import order_event_record
from orders.gateway import GatewayOutcome, get_gateway
from orders.models import MenuItem, Order, OrderEvent, OrderItem, Payment, PolicyVersion, Restaurant

MAX_QUANTITY_PER_LINE = 50


MAX_LINES = 30


@dataclass(frozen=True)
class LineRequest:
    menu_item_id: int
    quantity: int


def _validated_lines(
    restaurant: Restaurant, lines: list[LineRequest], *, today: dt.date
) -> list[tuple]:
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
        if not item.is_available_on(today):
            raise InvalidInput(
                "item_unavailable_today",
                f"{item.name} is sold out today; it is back on the menu tomorrow.",
            )
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


@dataclass(frozen=True)
class Checkout:
    """A cart the buyer asked to place, priced and (when the card pays part) charged.

    `checkout_key` is the buyer's checkout (the API's `Idempotency-Key` or the cart page's
    token), never a row id: the processor dedups the charge by it, so a placement retried after
    any failure charges once (D-7). `charge` is the processor's reference, "" if nothing was
    charged.
    """

    buyer: object
    restaurant: Restaurant
    items: list[tuple[MenuItem, int]]
    fulfillment: str
    delivery_address: str
    discount_code: str
    use_credit: bool
    checkout_key: str
    amount_charged: Decimal
    charge: str


def order_checkout_charge(
    *,
    buyer,
    restaurant: Restaurant,
    lines: list[LineRequest],
    fulfillment: str,
    checkout_key: str,
    delivery_address: str = "",
    discount_code: str = "",
    use_credit: bool = False,
) -> Checkout:
    """Check and price a cart (D-7) and charge the card under the checkout's key, with no
    transaction or lock held (D-7: the processor is never called inside one).

    Raises DomainError: the placement refusals (400: `empty_order`, `invalid_quantity`,
    `unknown_menu_item`, `restaurant_closed`, `code_used`, ...), `payment_declined` (400) and
    `payment_unconfirmed` (503: the processor's answer was lost; retrying with the same key is
    safe). A charge whose order then never commits is voided by `order_void_orphan_charges`.
    A suspended buyer is refused first, before any charge: `account_suspended` (403, L-8.2).
    """
    buyer_must_not_be_suspended(buyer)
    now = timezone.now()
    _check_can_order(
        buyer=buyer,
        restaurant=restaurant,
        fulfillment=fulfillment,
        address=delivery_address,
        now=now,
    )
    cart = Checkout(
        buyer=buyer,
        restaurant=restaurant,
        items=_validated_lines(restaurant, lines, today=timezone.localdate(now)),
        fulfillment=fulfillment,
        delivery_address=delivery_address,
        discount_code=discount_code,
        use_credit=use_credit,
        checkout_key=checkout_key,
        amount_charged=ZERO,
        charge="",
    )
    amount = _checkout_quote(cart, now=now).price.amount_charged
    charge = ""
    if amount > ZERO:
        charge = _charge_card(
            amount=amount,
            idempotency_key=checkout_key,
            description=f"lojix checkout at {restaurant.name}",
        )
    return dataclasses.replace(cart, amount_charged=amount, charge=charge)


def _checkout_quote(checkout: Checkout, *, now, for_update: bool = False) -> "Quote":
    return order_quote(
        buyer=checkout.buyer,
        restaurant=checkout.restaurant,
        items=checkout.items,
        fulfillment=checkout.fulfillment,
        discount_code=checkout.discount_code,
        use_credit=checkout.use_credit,
        now=now,
        for_update=for_update,
    )


@transaction.atomic
def order_place(*, checkout: Checkout) -> Order:
    """Record a charged checkout as an order: price it again under the locks of the code and
    the credit it spends, redeem the code, spend the credit, and record the payment (D-7).

    Any refusal leaves nothing behind in lojix (the charge, if any, is voided later by
    `order_void_orphan_charges`). The same checkout placed twice gives the first order back.
    Raises DomainError `checkout_changed` (409) when the price moved since the charge (credit
    spent meanwhile), and the refusals of `order_checkout_charge`.
    """
    existing = Order.objects.filter(payments__idempotency_key=checkout.checkout_key).first()
    if existing is not None:
        return existing
    buyer_must_not_be_suspended(checkout.buyer)
    now = timezone.now()
    quote = _checkout_quote(checkout, now=now, for_update=True)
    price, discount = quote.price, quote.discount
    if price.amount_charged != checkout.amount_charged:
        raise DomainError(
            "checkout_changed",
            "Your credit or code changed while you were paying; nothing was taken. Check the "
            "cart and place the order again.",
            clauses=price.clauses,
        )
    order = _order_create(
        buyer=checkout.buyer,
        restaurant=checkout.restaurant,
        fulfillment=checkout.fulfillment,
        address=checkout.delivery_address,
        version=quote.version,
        discount=discount,
        price=price,
        now=now,
    )
    _create_lines(order, checkout.items)
    if discount is not None:
        credit_services.discount_code_redeem(discount=discount, order=order, now=now)
    for spend in price.credit_spends:
        credit_services.credit_spend(grant_id=spend.grant_id, amount=spend.amount, order=order)
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.TRANSITION,
        name="place",
        to_status=order.status,
        actor=checkout.buyer,
        role=OrderEvent.Role.BUYER,
        message=f"Order placed at {checkout.restaurant.name}.",
        clauses=price.clauses,
        amount=order.total,
        at=now,
    )
    if checkout.charge:
        _payment_record(order, checkout=checkout, now=now)
    return order


def order_checkout(*, checkout_key: str, **cart) -> Order:
    """Charge and place in one call (the cart page, the demo, tests): `order_checkout_charge`
    with no transaction held, then `order_place`. Same refusals as both."""
    return order_place(checkout=order_checkout_charge(checkout_key=checkout_key, **cart))


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


def _charge_card(*, amount: Decimal, idempotency_key: str, description: str) -> str:
    """Charge the card once per key; the processor's reference. A decline refuses the placement;
    an unknown outcome (error, timeout) asks the buyer to retry with the same checkout."""
    result = get_gateway().charge(
        amount=amount,
        currency=_currency(),
        idempotency_key=idempotency_key,
        description=description,
    )
    if result.outcome == GatewayOutcome.DECLINED:
        raise DomainError(
            "payment_declined", result.message or "The card was declined.", kind="invalid"
        )
    if result.outcome != GatewayOutcome.SUCCEEDED:
        raise DomainError(
            "payment_unconfirmed",
            "We could not confirm the payment with the card processor. Try again: you will not "
            "be charged twice.",
            kind="unavailable",
        )
    return result.reference


def _payment_record(order: Order, *, checkout: Checkout, now) -> Payment:
    payment = Payment.objects.create(
        order=order,
        amount=order.amount_charged,
        gateway=get_gateway().name,
        gateway_reference=checkout.charge,
        idempotency_key=checkout.checkout_key,
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


ORPHAN_CHARGE_GRACE = dt.timedelta(minutes=15)
ORPHAN_CHARGE_LOOKBACK = dt.timedelta(days=7)


def order_void_orphan_charges(*, now: dt.datetime) -> list[str]:
    """Void the processor's charges that no lojix order recorded (D-7 reconciliation): a
    placement that charged and then failed to commit. Charges younger than
    `ORPHAN_CHARGE_GRACE` are left alone (their placement may still be running or be retried
    with the same key). Call outside any transaction; safe to run twice at once (the void's key
    is the charge's). Returns the references voided.
    """
    gateway = get_gateway()
    charges = [
        charge
        for charge in gateway.charges_between(
            start=now - ORPHAN_CHARGE_LOOKBACK, end=now - ORPHAN_CHARGE_GRACE
        )
        if charge.status == GatewayOutcome.SUCCEEDED
    ]
    known = set(
        Payment.objects.filter(gateway_reference__in=[c.reference for c in charges]).values_list(
            "gateway_reference", flat=True
        )
    )
    voided = []
    for charge in charges:
        if charge.reference in known:
            continue
        result = gateway.void(
            charge_reference=charge.reference, idempotency_key=f"void:{charge.reference}"
        )
        if result.succeeded:
            voided.append(charge.reference)
    return voided


def _currency() -> str:
    return settings.LOJIX_CURRENCY
