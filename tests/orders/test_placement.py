"""Placing an order through the service: money, code, credit and card, on PostgreSQL."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError, InvalidInput
from credits.models import CreditGrant, CreditTransaction, DiscountCode
from orders.gateway import get_gateway
from orders.models import Order, OrderEvent, Payment
from orders.services.placement import order_void_orphan_charges
from orders.tasks import void_orphan_charges
from tests.concurrency import run_concurrently
from tests.conftest import give_credit, place_order, processor_charges
from tests.factories import DiscountCodeFactory, MenuItemFactory, RestaurantFactory

pytestmark = pytest.mark.django_db


def test_order_with_code_and_credit_records_every_figure(buyer, restaurant, menu):
    DiscountCodeFactory(code="WELCOME5", amount_off=D("5.00"))
    promo = give_credit(buyer, "3.00", kind="promo")
    account = give_credit(buyer, "4.00", kind="account")

    order = place_order(
        buyer,
        restaurant,
        {menu["Margherita"]: 2, menu["Tiramisu"]: 1},
        discount_code="welcome5",
        use_credit=True,
    )

    assert (order.subtotal, order.delivery_fee, order.discount_amount, order.total) == (
        D("31.00"), D("2.99"), D("5.00"), D("28.99"),
    )  # fmt: skip
    assert (order.promo_credit_applied, order.account_credit_applied) == (D("3.00"), D("4.00"))
    assert (order.amount_charged, order.amount_paid) == (D("21.99"), D("25.99"))
    assert order.policy_version.label == "1"
    assert [(i.name, i.unit_price, i.quantity) for i in order.items.all()] == [
        ("Margherita", D("12.50"), 2),
        ("Tiramisu", D("6.00"), 1),
    ]
    payment = order.payments.get()
    assert (payment.amount, payment.status) == (D("21.99"), Payment.Status.SUCCEEDED)
    charge = get_gateway().find(idempotency_key=payment.idempotency_key)
    assert (charge.reference, charge.amount, charge.status) == (
        payment.gateway_reference, D("21.99"), "succeeded",
    )  # fmt: skip
    promo.refresh_from_db()
    account.refresh_from_db()
    assert (promo.remaining, account.remaining) == (D("0.00"), D("0.00"))
    spends = CreditTransaction.objects.filter(order=order, kind="spend")
    assert sorted(t.amount for t in spends) == [D("-4.00"), D("-3.00")]
    code = DiscountCode.objects.get(code="WELCOME5")
    assert (code.redeemed_by, code.redeemed_on_order) == (buyer, order)
    assert list(order.events.values_list("name", flat=True)) == ["place", "charge"]


def test_fully_credited_order_charges_nothing(buyer, restaurant, menu):
    give_credit(buyer, "100.00")
    order = place_order(buyer, restaurant, {menu["Tiramisu"]: 1}, use_credit=True)
    assert (order.amount_charged, order.account_credit_applied) == (D("0.00"), D("8.99"))
    assert not order.payments.exists()
    assert processor_charges() == []


def _nothing_created():
    return (
        Order.objects.count(),
        Payment.objects.count(),
        len([c for c in processor_charges() if c.status == "succeeded"]),
        CreditTransaction.objects.exclude(kind="grant").count(),
        OrderEvent.objects.count(),
    ) == (0, 0, 0, 0, 0)


def test_a_used_code_is_refused_and_nothing_is_created(buyer, other_buyer, restaurant):
    DiscountCodeFactory(code="ONCE")
    place_order(buyer, restaurant, discount_code="ONCE")
    orders_before = Order.objects.count()

    with pytest.raises(InvalidInput) as refused:
        place_order(other_buyer, restaurant, discount_code="ONCE", use_credit=True)

    assert (refused.value.code, refused.value.clauses) == ("code_used", ("L-7.2",))
    assert Order.objects.count() == orders_before


def test_a_used_code_stays_used_when_reused_by_the_same_buyer_on_a_multi_use_code(
    buyer, restaurant
):
    DiscountCodeFactory(code="EVERYONE", is_multi_use=True)
    place_order(buyer, restaurant, discount_code="EVERYONE")
    with pytest.raises(InvalidInput, match="already been used"):
        place_order(buyer, restaurant, discount_code="EVERYONE")


@pytest.mark.parametrize(
    ("setup", "expected_code"),
    [
        ("closed", "restaurant_closed"),
        ("unknown item", "unknown_menu_item"),
        ("other restaurant", "item_from_other_restaurant"),
        ("quantity 0", "invalid_quantity"),
        ("quantity 10000", "invalid_quantity"),
        ("unavailable", "item_unavailable"),
        ("no address", "address_required"),
        ("no dine-in", "fulfillment_not_offered"),
        ("unknown code", "code_unknown"),
        ("declined card", "payment_declined"),
    ],
)
def test_refusals_create_nothing(now, settings, buyer, restaurant, menu, setup, expected_code):
    item, quantity, kwargs = menu["Margherita"], 1, {}
    if setup == "closed":
        restaurant.opens_at, restaurant.closes_at = dt.time(3, 0), dt.time(3, 1)
        restaurant.save()
    elif setup == "unknown item":
        item = MenuItemFactory.build(pk=999_999, restaurant=restaurant)
    elif setup == "other restaurant":
        item = MenuItemFactory(restaurant=RestaurantFactory())
    elif setup.startswith("quantity"):
        quantity = int(setup.split()[1])
    elif setup == "unavailable":
        item.is_available = False
        item.save()
    elif setup == "no address":
        kwargs["delivery_address"] = "  "
    elif setup == "no dine-in":
        restaurant.offers_dine_in = False
        restaurant.save()
        kwargs["fulfillment"] = "dine_in"
    elif setup == "unknown code":
        kwargs["discount_code"] = "NOPE"
    elif setup == "declined card":
        settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"charge": "decline"}
    give_credit(buyer, "5.00")

    with pytest.raises(DomainError) as refused:
        place_order(buyer, restaurant, {item: quantity}, use_credit=True, **kwargs)

    assert refused.value.code == expected_code
    assert refused.value.kind == "invalid"
    assert _nothing_created()
    assert CreditGrant.objects.get(buyer=buyer).remaining == D("5.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_checkouts_with_one_code_one_wins(buyer, other_buyer, restaurant):
    DiscountCodeFactory(code="RACE", amount_off=D("5.00"))

    buyers = iter([buyer, other_buyer])
    results = run_concurrently(
        lambda: place_order(next(buyers), restaurant, discount_code="RACE"), 2
    )

    orders = [r for r in results if isinstance(r, Order)]
    refusals = [r for r in results if isinstance(r, InvalidInput)]
    assert len(orders) == 1
    assert [r.code for r in refusals] == ["code_used"]
    code = DiscountCode.objects.get(code="RACE")
    assert code.redeemed_on_order_id == orders[0].pk
    assert Order.objects.count() == 1
    assert Payment.objects.count() == 1


# -- the charge: keyed by the checkout, outside transactions, reconciled (D-7) ------------------


def test_a_placement_whose_answer_was_lost_is_retried_with_its_key_and_charges_once(
    api_as, buyer, restaurant, settings
):
    client = api_as(buyer)
    body = {
        "restaurant": restaurant.pk,
        "items": [{"menu_item": restaurant.menu.order_by("pk").first().pk, "quantity": 1}],
        "fulfillment": "delivery",
        "delivery_address": "7 Harbour Road",
    }
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"charge": "timeout"}
    lost = client.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}
    retry = client.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="c-1")

    assert (lost.status_code, lost.json()["code"]) == (503, "payment_unconfirmed")
    assert retry.status_code == 201
    assert Order.objects.count() == 1
    charges = processor_charges()
    assert [(c.status, c.amount) for c in charges] == [("succeeded", Order.objects.get().total)]
    assert Payment.objects.get().gateway_reference == charges[0].reference


def _charge_then_fail_to_commit(buyer, restaurant, *, checkout_key):
    with transaction.atomic():
        place_order(buyer, restaurant, checkout_key=checkout_key)
        raise RuntimeError("the placement failed after the charge")


def test_an_orphan_charge_is_voided_and_a_recorded_one_is_kept(buyer, restaurant):
    kept = place_order(buyer, restaurant, checkout_key="kept")
    with pytest.raises(RuntimeError):
        _charge_then_fail_to_commit(buyer, restaurant, checkout_key="orphan")
    gateway = get_gateway()
    orphan = gateway.find(idempotency_key="orphan")

    too_soon = order_void_orphan_charges(now=timezone.now())
    voided = order_void_orphan_charges(now=timezone.now() + dt.timedelta(minutes=16))
    again = order_void_orphan_charges(now=timezone.now() + dt.timedelta(minutes=16))

    assert (too_soon, voided, again) == ([], [orphan.reference], [])
    assert gateway.find(idempotency_key="orphan").status == "voided"
    assert gateway.find(idempotency_key="kept").status == "succeeded"
    assert Payment.objects.get().order == kept
    with pytest.raises(DomainError) as refused:
        place_order(buyer, restaurant, checkout_key="orphan")
    assert refused.value.code == "payment_declined"
    assert Order.objects.count() == 1


def test_the_beat_task_voids_orphan_charges(buyer, restaurant):
    with pytest.raises(RuntimeError):
        _charge_then_fail_to_commit(buyer, restaurant, checkout_key="orphan")

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=20)):
        assert void_orphan_charges.delay().get() == 1
    assert get_gateway().find(idempotency_key="orphan").status == "voided"
