"""The credit wallet API (D-10): the buyer's own grants and usable balance."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from credits.models import CreditGrant
from credits.services import credit_expire
from tests.conftest import give_credit, place_order
from tests.factories import RestaurantFactory, UserFactory

pytestmark = pytest.mark.django_db

CREDITS = "/api/credits/"


def _iso(moment):
    return None if moment is None else timezone.localtime(moment).isoformat().replace("+00:00", "Z")


def test_wallet_lists_grants_soonest_expiring_first_with_the_balance(api_as, buyer, restaurant):
    now = timezone.now()
    account = give_credit(buyer, "4.00", reason="Refund of order 12")
    late = give_credit(
        buyer,
        "2.00",
        kind="promo",
        expires_at=now + dt.timedelta(days=60),
        source=CreditGrant.Source.LATE_DELIVERY,
        reason="Late delivery",
    )
    soon = give_credit(
        buyer,
        "5.00",
        kind="promo",
        expires_at=now + dt.timedelta(days=3),
        source=CreditGrant.Source.RESTAURANT_CANCEL_GOODWILL,
        reason="Sorry",
    )
    place_order(buyer, restaurant, use_credit=True)  # 15.49: spends soon 5, late 2, account 4

    response = api_as(buyer).get(CREDITS)

    assert response.status_code == 200
    body = response.json()
    assert body["balance"] == {"promo": "0.00", "account": "0.00", "total": "0.00"}
    assert body["count"] == 3
    assert body["results"] == [
        {
            "id": soon.pk,
            "kind": "promo",
            "amount": "5.00",
            "remaining": "0.00",
            "expires_at": _iso(soon.expires_at),
            "source": "restaurant_cancel_goodwill",
            "reason": "Sorry",
            "created_at": _iso(soon.created_at),
        },
        {
            "id": late.pk,
            "kind": "promo",
            "amount": "2.00",
            "remaining": "0.00",
            "expires_at": _iso(late.expires_at),
            "source": "late_delivery",
            "reason": "Late delivery",
            "created_at": _iso(late.created_at),
        },
        {
            "id": account.pk,
            "kind": "account",
            "amount": "4.00",
            "remaining": "0.00",
            "expires_at": None,
            "source": "agent",
            "reason": "Refund of order 12",
            "created_at": _iso(account.created_at),
        },
    ]


def test_balance_counts_unexpired_promo_and_account_credit(api_as, buyer):
    now = timezone.now()
    give_credit(buyer, "7.50")
    give_credit(buyer, "2.25", kind="promo", expires_in_days=30)
    expired = give_credit(buyer, "9.00", kind="promo", expires_at=now - dt.timedelta(hours=1))
    stale = give_credit(buyer, "1.00", kind="promo", expires_at=now - dt.timedelta(hours=2))
    credit_expire(grant_id=stale.pk, now=now)

    body = api_as(buyer).get(CREDITS).json()

    assert body["balance"] == {"promo": "2.25", "account": "7.50", "total": "9.75"}
    remaining = {row["id"]: row["remaining"] for row in body["results"]}
    assert (remaining[expired.pk], remaining[stale.pk]) == ("9.00", "0.00")


def test_an_empty_wallet(api_as, buyer):
    assert api_as(buyer).get(CREDITS).json() == {
        "balance": {"promo": "0.00", "account": "0.00", "total": "0.00"},
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_wallet_query_count_does_not_grow_with_grants(api_as, buyer, django_assert_num_queries):
    client = api_as(buyer)
    give_credit(buyer, "1.00")
    with django_assert_num_queries(4):  # count, page, promo and account balances
        client.get(CREDITS)
    for _ in range(5):
        give_credit(buyer, "1.00", kind="promo")
    with django_assert_num_queries(4):
        assert len(client.get(CREDITS).json()["results"]) == 6


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 200),
        ("other_buyer", 200),
        ("partner", 200),
        ("other_partner", 200),
        ("agent", 200),
    ],
)
def test_matrix_wallet_shows_only_ones_own_credit(
    buyer, other_buyer, partner, agent, role, expected
):
    other_partner = UserFactory(username="marco")
    RestaurantFactory(slug="osteria-blu", members=[other_partner])
    users = {
        "anonymous": None,
        "buyer": buyer,
        "other_buyer": other_buyer,
        "partner": partner,
        "other_partner": other_partner,
        "agent": agent,
    }
    grant = give_credit(buyer, "3.00")
    client = APIClient()
    if users[role] is not None:
        token = Token.objects.create(user=users[role])
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = client.get(CREDITS)

    assert response.status_code == expected
    if expected == 200:
        body = response.json()
        own = role == "buyer"
        assert [row["id"] for row in body["results"]] == ([grant.pk] if own else [])
        assert body["balance"]["total"] == ("3.00" if own else "0.00")
    else:
        assert response.json()["code"] == "not_authenticated"


def test_the_wallet_is_read_only(api_as, buyer):
    response = api_as(buyer).post(CREDITS, {"amount": "100.00"}, format="json")
    assert response.status_code == 405
    assert not CreditGrant.objects.exists()
