"""Money exact to the cent on every database (D-7, D-9): amounts that add up badly in floating
point (0.70 + 10.10 + 3.30, as SQLite adds decimals) are summed, compared and shown with exactly
two decimals on every money-bearing page and admin screen. `make test` runs this module on
PostgreSQL and again on SQLite."""

import re
from decimal import Decimal as D

import pytest
import time_machine
from django.db.models import F
from django.test import Client
from django.urls import reverse

from core.ledgers import ledger_violations
from core.money_db import Cents, MoneySum
from credits.selectors import credit_balance
from orders.models import Order
from refunds.models import Refund, RestaurantLedgerEntry
from refunds.selectors import paid_facts, restaurant_ledger_periods
from refunds.services.execution import refund_order
from refunds.services.requests import refund_request_submit
from tests.conftest import NOW, advance, give_credit, place_order
from tests.factories import MenuItemFactory

pytestmark = pytest.mark.django_db

# Three or more decimals anywhere in a page's markup (icons' SVG paths, scripts and styles
# aside): a money value read back from the database without quantizing.
LONG_DECIMAL = re.compile(r"\d\.\d{3,}")
NOT_CONTENT = re.compile(r"<(svg|script|style)\b.*?</\1>", re.S)


def long_decimals(response) -> list[str]:
    assert response.status_code == 200
    return LONG_DECIMAL.findall(NOT_CONTENT.sub("", response.content.decode()))


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def delivered(buyer, restaurant, items):
    order = place_order(buyer, restaurant, items)
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


@pytest.fixture
def badly_summing(buyer, restaurant):
    """At NOW: three orders of one dish each (0.70, 10.10, 3.30) and one of all three (14.10 +
    2.99 delivery = 17.09 paid), all delivered, so the week's sales are 0.70 + 10.10 + 3.30 +
    14.10. The big order has a missing-items claim under review and refunds of 0.70 and 3.30 to
    the card and 10.10 as account credit: 2.99 of it can still be refunded. The buyer's wallet
    holds that 10.10 and grants of 0.70 and 3.30."""
    dishes = [
        MenuItemFactory(restaurant=restaurant, name=name, price=D(price))
        for name, price in [("Olives", "0.70"), ("Lasagne", "10.10"), ("Espresso", "3.30")]
    ]
    with time_machine.travel(NOW, tick=False):
        for dish in dishes:
            delivered(buyer, restaurant, {dish: 1})
        order = delivered(buyer, restaurant, dict.fromkeys(dishes, 1))
        claim = refund_request_submit(
            order_id=order.pk,
            actor=buyer,
            reason="missing_items",
            items=[(order.items.get(name="Olives").pk, 1)],
        )
        for amount, method in [
            ("0.70", "original"),
            ("10.10", "account_credit"),
            ("3.30", "original"),
        ]:
            refund_order(
                order_id=order.pk,
                amount=D(amount),
                method=method,
                idempotency_key=f"goodwill-{amount}",
                actor=None,
                role="policy",
                reason="Goodwill",
            )
        give_credit(buyer, "0.70")
        give_credit(buyer, "3.30")
    return order, claim


def test_sums_are_exact_to_the_cent_in_python_and_in_sql(buyer, restaurant, badly_summing):
    order, _ = badly_summing
    refunds = Refund.objects.filter(order=order)

    total = refunds.aggregate(total=MoneySum("amount"))["total"]

    assert str(total) == "14.10"
    assert str(refunds.none().aggregate(total=MoneySum("amount"))["total"]) == "0.00"
    # In SQL too: the sum compares equal to the amount it adds up to, not a float next to it.
    refunded = Order.objects.annotate(refunded=MoneySum("refunds__amount"))
    assert refunded.filter(pk=order.pk, refunded=D("14.10")).exists()
    food = Cents(F("amount_charged") - F("delivery_fee"))
    assert refunded.filter(pk=order.pk, refunded=food).exists()
    assert str(paid_facts(order).refundable) == "2.99"
    assert {k: str(v) for k, v in credit_balance(buyer, now=NOW).items()} == {
        "promo": "0.00",
        "account": "14.10",
    }
    (week,) = restaurant_ledger_periods([restaurant.pk], tz=NOW.tzinfo)
    assert (str(week.total), week.entries) == ("28.20", 4)
    assert ledger_violations() == []


def test_no_page_or_admin_screen_shows_more_than_two_decimals(
    buyer, partner, supervisor, badly_summing
):
    order, claim = badly_summing
    as_buyer, as_partner, as_supervisor = map(client_for, (buyer, partner, supervisor))
    ledger = RestaurantLedgerEntry.objects.first()
    refund = Refund.objects.first()

    with time_machine.travel(NOW, tick=False):
        seller_ledger = as_partner.get(reverse("seller:ledger"))
        review = as_supervisor.get(reverse("admin:refunds_refundrequest_change", args=[claim.pk]))
        pages = {
            "buyer orders": as_buyer.get(reverse("orders:list")),
            "buyer order": as_buyer.get(reverse("orders:detail", args=[order.pk])),
            "buyer requests": as_buyer.get(reverse("refunds:list")),
            "buyer request": as_buyer.get(reverse("refunds:request", args=[claim.pk])),
            "wallet": as_buyer.get(reverse("credits:wallet")),
            "seller queue": as_partner.get(reverse("seller:queue")),
            "seller order": as_partner.get(reverse("seller:order", args=[order.pk])),
            "seller ledger": seller_ledger,
            "admin review": review,
            "admin request queue": as_supervisor.get(
                reverse("admin:refunds_refundrequest_changelist")
            ),
            "admin orders": as_supervisor.get(reverse("admin:orders_order_changelist")),
            "admin order": as_supervisor.get(reverse("admin:orders_order_change", args=[order.pk])),
            "admin refunds": as_supervisor.get(reverse("admin:refunds_refund_changelist")),
            "admin refund": as_supervisor.get(
                reverse("admin:refunds_refund_change", args=[refund.pk])
            ),
            "admin ledger": as_supervisor.get(
                reverse("admin:refunds_restaurantledgerentry_changelist")
            ),
            "admin ledger entry": as_supervisor.get(
                reverse("admin:refunds_restaurantledgerentry_change", args=[ledger.pk])
            ),
            "admin credit grants": as_supervisor.get(
                reverse("admin:credits_creditgrant_changelist")
            ),
            "admin credit ledger": as_supervisor.get(
                reverse("admin:credits_credittransaction_changelist")
            ),
            "admin payments": as_supervisor.get(reverse("admin:orders_payment_changelist")),
        }

    assert {name: long_decimals(page) for name, page in pages.items()} == {
        name: [] for name in pages
    }
    assert "28.20 USD" in seller_ledger.content.decode()
    assert "<strong>2.99 USD</strong> of the order is still refundable" in review.content.decode()
