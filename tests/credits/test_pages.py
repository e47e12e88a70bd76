"""The wallet page: usable balances, every grant with origin and expiry, codes used (L-7)."""

import datetime as dt
import re
from decimal import Decimal as D

import pytest
import time_machine
from django.urls import reverse

from credits.models import CreditGrant
from credits.services import credit_expire
from tests.conftest import give_credit, place_order
from tests.factories import DiscountCodeFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).strip()


@pytest.fixture
def ada(client, buyer):
    client.force_login(buyer)
    return client


def test_wallet_shows_balances_and_grants_soonest_expiry_first(
    ada, buyer, other_buyer, restaurant, menu
):
    with time_machine.travel(NOW - dt.timedelta(days=40), tick=False):
        expired = give_credit(
            buyer,
            "5.00",
            kind="promo",
            expires_in_days=30,
            source=CreditGrant.Source.RESTAURANT_CANCEL_GOODWILL,
            reason="Trattoria Roma cancelled your order",
        )
    credit_expire(grant_id=expired.pk, now=NOW)
    give_credit(buyer, "7.50", kind="account", source=CreditGrant.Source.REFUND, reason="Refund")
    with time_machine.travel(NOW, tick=False):
        give_credit(buyer, "2.00", kind="promo", expires_in_days=60, reason="Late delivery")
        give_credit(
            buyer,
            "3.00",
            kind="promo",
            expires_in_days=30,
            source=CreditGrant.Source.PROMOTION,
            reason="Welcome offer",
        )
    give_credit(other_buyer, "99.00", kind="account")

    with time_machine.travel(NOW + dt.timedelta(days=1)):
        response = ada.get(reverse("credits:wallet"))

    page = text(response)
    assert "Promotional credit 5.00 USD" in page
    assert "Account credit 7.50 USD" in page
    assert "99.00" not in page
    assert (
        "Promotional credit Restaurant cancellation: Trattoria Roma cancelled your order "
        "Expired Tue 10 Nov 2026 0.00 USD of 5.00 USD "
        "Promotional credit Promotion: Welcome offer Sun 20 Dec 2026 3.00 USD of 3.00 USD "
        "Promotional credit Support resolution: Late delivery Tue 19 Jan 2027 2.00 USD of 2.00 USD "
        "Account credit Refund: Refund Never 7.50 USD of 7.50 USD"
    ) in page
    assert response.content.decode().count('<tr class="expired">') == 1


def test_wallet_shows_spent_credit_and_the_codes_used_with_their_orders(
    ada, buyer, other_buyer, restaurant, menu
):
    DiscountCodeFactory(code="WELCOME5", amount_off=D("5.00"), description="Welcome")
    DiscountCodeFactory(code="TENOFF", amount_off=None, percent_off=D("10"), is_multi_use=True)
    DiscountCodeFactory(code="NOTMINE", amount_off=D("1.00"))
    give_credit(buyer, "4.00", kind="account", reason="Goodwill")
    first = place_order(
        buyer, restaurant, {menu["Margherita"]: 1}, discount_code="WELCOME5", use_credit=True
    )
    second = place_order(buyer, restaurant, {menu["Tiramisu"]: 2}, discount_code="TENOFF")
    place_order(other_buyer, restaurant, {menu["Lemonade"]: 1}, discount_code="NOTMINE")
    place_order(other_buyer, restaurant, {menu["Lemonade"]: 1}, discount_code="TENOFF")

    page = text(ada.get(reverse("credits:wallet")))

    assert "Account credit 0.00 USD" in page
    assert "Account credit Support resolution: Goodwill Never 0.00 USD of 4.00 USD" in page
    assert f"TENOFF 10 % off · used on order #{second.pk} " in page
    assert f"WELCOME5 5.00 USD off · Welcome · used on order #{first.pk} " in page
    assert "NOTMINE" not in page


def test_an_empty_wallet(ada):
    page = text(ada.get(reverse("credits:wallet")))
    assert "Promotional credit 0.00 USD" in page
    assert "You have no credit yet." in page
    assert "You have not used a discount code." in page


def test_the_wallet_needs_a_sign_in(client):
    response = client.get(reverse("credits:wallet"))
    assert response["Location"] == f"{reverse('login')}?next=/wallet/"


@pytest.mark.parametrize("how_many", [1, 10])
def test_wallet_query_count_is_constant(
    ada, buyer, restaurant, menu, how_many, django_assert_num_queries
):
    for n in range(how_many):
        give_credit(buyer, "1.00", kind="promo")
        DiscountCodeFactory(code=f"C{n}", amount_off=D("1.00"))
        place_order(buyer, restaurant, {menu["Margherita"]: 1}, discount_code=f"C{n}")
    # user (the session is in Redis), nav membership, two balance sums, grants, codes, their orders
    with django_assert_num_queries(7):
        ada.get(reverse("credits:wallet"))
