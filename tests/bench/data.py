"""The data of the page and API figures, written through the services and factories as a
buyer, a restaurant and support would write it (`tests/bench/run.py`, `tests/bench/server.py`)."""

import datetime as dt
import uuid
from decimal import Decimal

from django.test import Client
from django.utils import timezone

from credits.models import CreditGrant
from credits.services import credit_grant_create
from orders.models import Order
from orders.services.lifecycle import order_advance
from orders.services.placement import LineRequest, order_checkout
from tests.factories import DiscountCodeFactory, MenuItemFactory, RestaurantFactory, UserFactory

_counter = iter(range(1, 10**9))


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


class Shop:
    """A restaurant with its partner and a menu, and a buyer placing orders there."""

    def __init__(self):
        self.partner = UserFactory(username=unique("partner-"))
        self.restaurant = RestaurantFactory(members=[self.partner])
        self.pizza = MenuItemFactory(restaurant=self.restaurant, price=Decimal("12.50"))
        self.dessert = MenuItemFactory(restaurant=self.restaurant, price=Decimal("6.00"))
        self.buyer = UserFactory(username=unique("buyer-"))
        self.orders: list[Order] = []

    def place(self, *actions: str) -> Order:
        """An order with a single-use code and promotional credit, taken through `actions`;
        a delivered one also earns late-delivery account credit, so every page grows."""
        code = DiscountCodeFactory(code=unique("BENCH"), amount_off=Decimal("1.00"))
        credit_grant_create(
            buyer=self.buyer,
            kind=CreditGrant.Kind.PROMO,
            amount=Decimal("2.00"),
            source=CreditGrant.Source.PROMOTION,
            reason="Bench promotion",
            expires_at=timezone.now() + dt.timedelta(days=30),
        )
        order = order_checkout(
            checkout_key=f"checkout:{uuid.uuid4()}",
            buyer=self.buyer,
            restaurant=self.restaurant,
            lines=[LineRequest(self.pizza.pk, 1), LineRequest(self.dessert.pk, 2)],
            fulfillment=Order.Fulfillment.DELIVERY,
            delivery_address="7 Harbour Road",
            discount_code=code.code,
            use_credit=True,
        )
        for action in actions:
            order = order_advance(order_id=order.pk, action=action, actor=self.partner)
        if order.status == Order.Status.DELIVERED:
            credit_grant_create(
                buyer=self.buyer,
                kind=CreditGrant.Kind.ACCOUNT,
                amount=Decimal("3.00"),
                source=CreditGrant.Source.LATE_DELIVERY,
                reason="Late delivery",
                order=order,
            )
        self.orders.append(order)
        return order

    # The open states of the seller's queue, then delivered.
    OPEN = [
        (),
        ("accept",),
        ("accept", "start_preparation"),
        ("accept", "start_preparation", "mark_ready"),
        ("accept", "start_preparation", "mark_ready", "dispatch"),
    ]
    DELIVERED = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")

    def place_many(self, n: int, lifecycles=(*OPEN, DELIVERED)) -> None:
        """`n` more orders, taking each through the next of `lifecycles` in turn."""
        for _ in range(n):
            self.place(*lifecycles[len(self.orders) % len(lifecycles)])

    def client(self, user) -> Client:
        client = Client()
        client.force_login(user)
        return client
