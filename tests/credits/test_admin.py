"""Credits in admin: agents issue discount codes (amount or percent), see which are used and by
whom; credit grants and the ledger are read-only."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from credits.models import CreditGrant, CreditTransaction, DiscountCode
from tests.conftest import give_credit, place_order
from tests.factories import DiscountCodeFactory

ADD = reverse("admin:credits_discountcode_add")
CHANGELIST = reverse("admin:credits_discountcode_changelist")


def _change(code: DiscountCode) -> str:
    return reverse("admin:credits_discountcode_change", args=[code.pk])


@pytest.fixture
def agent_client(agent) -> Client:
    client = Client()
    client.force_login(agent)
    return client


def _code_form(**overrides) -> dict:
    data = {
        "code": "sorry5",
        "description": "Resolution for a cold pizza",
        "amount_off": "5.00",
        "percent_off": "",
        "min_order_subtotal": "0.00",
        "valid_from_0": "2020-01-01",
        "valid_from_1": "00:00:00",
        "is_active": "on",
    }
    return {key: value for key, value in (data | overrides).items() if value is not None}


@pytest.mark.django_db
def test_an_agent_issues_an_amount_code_stored_upper_case(agent_client, buyer):
    response = agent_client.post(ADD, _code_form(issued_to=str(buyer.pk)))

    assert response.status_code == 302
    code = DiscountCode.objects.get()
    assert (code.code, code.amount_off, code.percent_off) == ("SORRY5", Decimal("5.00"), None)
    assert code.issued_to == buyer
    assert (code.redeemed_by, code.redeemed_on_order, code.is_multi_use) == (None, None, False)


@pytest.mark.django_db
def test_an_agent_issues_a_percent_code(agent_client):
    response = agent_client.post(ADD, _code_form(code="TENOFF", amount_off="", percent_off="10"))

    assert response.status_code == 302
    code = DiscountCode.objects.get()
    assert (code.code, code.amount_off, code.percent_off) == ("TENOFF", None, Decimal("10.00"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "overrides", "errors"),
    [
        (
            "both",
            {"percent_off": "10"},
            {"amount_off": ["Give an amount off or a percent off, not both."]},
        ),
        (
            "neither",
            {"amount_off": ""},
            {"amount_off": ["Give an amount off or a percent off."]},
        ),
        (
            "percent over 100",
            {"amount_off": "", "percent_off": "150"},
            {"percent_off": ["Ensure this value is less than or equal to 100."]},
        ),
        (
            "duplicate in another case",
            {"code": " welcome5 "},
            {"code": ["Discount code with this Code already exists."]},
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_an_invalid_code_is_an_error_and_nothing_is_created(agent_client, case, overrides, errors):
    DiscountCodeFactory(code="WELCOME5")

    response = agent_client.post(ADD, _code_form(**overrides))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == errors
    assert list(DiscountCode.objects.values_list("code", flat=True)) == ["WELCOME5"]


@pytest.fixture
def codes(buyer, other_buyer, restaurant):
    """A used single-use code, a used multi-use code (no `redeemed_on_order`), an unused one."""
    used = DiscountCodeFactory(code="USED5")
    shared = DiscountCodeFactory(code="SHARED", is_multi_use=True)
    unused = DiscountCodeFactory(code="UNUSED")
    order = place_order(buyer, restaurant, discount_code="used5")
    place_order(other_buyer, restaurant, discount_code="shared")
    return {"used": used, "shared": shared, "unused": unused, "order": order}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("used", "expected"),
    [("yes", ["SHARED", "USED5"]), ("no", ["UNUSED"]), (None, ["SHARED", "UNUSED", "USED5"])],
)
def test_codes_filter_by_used(agent_client, codes, used, expected):
    response = agent_client.get(CHANGELIST, {"used": used} if used else {})

    assert response.status_code == 200
    assert sorted(code.code for code in response.context["cl"].result_list) == expected


@pytest.mark.django_db
def test_a_used_code_shows_who_redeemed_it_and_its_terms_are_read_only(agent_client, codes, buyer):
    used, order = codes["used"], codes["order"]
    url = _change(used)

    page = agent_client.get(url)
    response = agent_client.post(
        url,
        _code_form(
            code="CHANGED",
            amount_off="50.00",
            is_active=None,
            redeemed_by="",
            redeemed_on_order="",
        ),
    )

    assert set(page.context["adminform"].form.fields) == {"description", "valid_until", "is_active"}
    text = page.content.decode()
    assert buyer.username in text
    assert reverse("admin:orders_order_change", args=[order.pk]) in text
    assert response.status_code == 302
    used.refresh_from_db()
    assert (used.code, used.amount_off, used.is_active) == ("USED5", Decimal("5.00"), False)
    assert (used.redeemed_by, used.redeemed_on_order) == (buyer, order)


@pytest.mark.django_db
def test_a_used_code_cannot_be_deleted_even_by_a_superuser(admin_client, codes):
    response = admin_client.post(
        reverse("admin:credits_discountcode_delete", args=[codes["used"].pk]), {"post": "yes"}
    )

    assert response.status_code == 403
    assert DiscountCode.objects.filter(pk=codes["used"].pk).exists()


@pytest.mark.django_db
def test_credit_grants_and_the_ledger_are_read_only_for_agents(agent_client, buyer):
    grant = give_credit(buyer, "4.00")
    transaction = grant.transactions.get()

    grant_add = agent_client.get(reverse("admin:credits_creditgrant_add"))
    grant_change = agent_client.post(
        reverse("admin:credits_creditgrant_change", args=[grant.pk]),
        {"amount": "400.00", "remaining": "400.00"},
    )
    ledger_add = agent_client.get(reverse("admin:credits_credittransaction_add"))
    page = agent_client.get(reverse("admin:credits_creditgrant_change", args=[grant.pk]))

    assert [grant_add.status_code, grant_change.status_code, ledger_add.status_code] == [
        403,
        403,
        403,
    ]
    grant.refresh_from_db()
    assert (grant.amount, grant.remaining) == (Decimal("4.00"), Decimal("4.00"))
    assert CreditGrant.objects.count() == 1
    assert list(CreditTransaction.objects.all()) == [transaction]
    (ledger,) = page.context["inline_admin_formsets"]
    assert [form.instance for form in ledger.formset.forms] == [transaction]
