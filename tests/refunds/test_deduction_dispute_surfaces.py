"""Where a deduction dispute is seen and worked: `POST /api/seller/ledger/{id}/dispute/` and the
ledger's dispute state (D-10), the seller portal's deduction page (journey "Restaurant partner"
5), and admin, where supervisors decide and agents only look (as a table)."""

import re
from decimal import Decimal as D

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from refunds.models import DeductionDispute, RestaurantLedgerEntry
from refunds.services.deductions import deduction_dispute_open
from tests.conftest import token_client
from tests.refunds.test_deduction_disputes import deducted

pytestmark = pytest.mark.django_db

LEDGER_API = reverse("api-seller-ledger")
REVERSAL = RestaurantLedgerEntry.Kind.DEDUCTION_REVERSAL


@pytest.fixture
def deduction(now, buyer, restaurant, menu, agent):
    return deducted(buyer, restaurant, menu, agent)


def dispute_api(entry) -> str:
    return reverse("api-seller-deduction-dispute", args=[entry.pk])


def opened(entry, partner) -> DeductionDispute:
    return deduction_dispute_open(
        entry_id=entry.pk, actor=partner, note="Not ours", now=timezone.now()
    )


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def visible(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# -- the API ----------------------------------------------------------------------------------


def test_the_ledger_shows_each_deduction_with_its_reason_clauses_and_dispute(
    deduction, partner, supervisor
):
    client = token_client(partner)
    row = next(e for e in client.get(LEDGER_API).json()["results"] if e["id"] == deduction.pk)
    assert (row["kind"], row["amount"], row["clauses"]) == (
        "refund_deduction",
        "-6.00",
        ["L-3.2", "L-9"],
    )
    assert (row["disputable"], row["dispute"]) == (True, None)
    assert row["reason"]

    created = client.post(dispute_api(deduction), {"note": "The bag was sealed."}, format="json")

    assert created.status_code == 201
    body = created.json()
    assert body["disputable"] is False
    assert (body["dispute"]["status"], body["dispute"]["note"]) == ("open", "The bag was sealed.")
    again = client.post(dispute_api(deduction), {"note": "Again"}, format="json")
    assert (again.status_code, again.json()["code"], again.json()["clauses"]) == (
        409,
        "already_disputed",
        ["L-9", "K-DR"],
    )
    assert DeductionDispute.objects.count() == 1


def test_a_sale_cannot_be_disputed_and_a_blank_note_is_refused(deduction, partner):
    client = token_client(partner)
    sale = RestaurantLedgerEntry.objects.get(kind="sale")
    refused = client.post(dispute_api(sale), {"note": "No"}, format="json")
    blank = client.post(dispute_api(deduction), {"note": ""}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (409, "not_a_deduction")
    assert (blank.status_code, blank.json()["code"]) == (400, "note_required")
    assert not DeductionDispute.objects.exists()


def test_a_retried_dispute_with_its_idempotency_key_replays_the_first_answer(deduction, partner):
    client = token_client(partner)
    body = {"note": "The bag was sealed."}

    first = client.post(dispute_api(deduction), body, format="json", HTTP_IDEMPOTENCY_KEY="d-1")
    again = client.post(dispute_api(deduction), body, format="json", HTTP_IDEMPOTENCY_KEY="d-1")
    changed = client.post(
        dispute_api(deduction), {"note": "Other"}, format="json", HTTP_IDEMPOTENCY_KEY="d-1"
    )

    assert (first.status_code, again.status_code, changed.status_code) == (201, 201, 422)
    assert again.json() == first.json()
    assert DeductionDispute.objects.count() == 1


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 403),
        ("other_buyer", 403),
        ("partner", 201),
        ("other_partner", 404),
        ("agent", 403),
        ("supervisor", 403),
    ],
)
def test_matrix_dispute_a_deduction(users, deduction, role, expected):
    response = token_client(users[role]).post(dispute_api(deduction), {"note": "x"}, format="json")
    assert response.status_code == expected
    assert DeductionDispute.objects.count() == (1 if expected == 201 else 0)


# -- the seller portal ------------------------------------------------------------------------


def test_the_partner_reads_why_and_disputes_from_the_portal(deduction, partner, supervisor):
    client = client_for(partner)
    ledger = client.get(reverse("seller:ledger")).content.decode()
    row = re.search(rf'<tr id="entry-{deduction.pk}".*?</tr>', ledger, re.S).group(0)
    assert "Why? Dispute" in visible(row)
    page_url = reverse("seller:deduction-dispute", args=[deduction.pk])

    page = visible(client.get(page_url).content.decode())
    assert "Deduction of -6.00 USD" in page
    assert "Why? L-3.2 , L-9" in page
    assert "Send dispute" in page

    sent = client.post(page_url, {"note": "The courier signed for a full bag."}, follow=True)
    page = visible(sent.content.decode())
    assert "Your dispute: Waiting for support" in page
    assert "Send dispute" not in page
    assert DeductionDispute.objects.get().note == "The courier signed for a full bag."


def test_another_restaurants_deduction_page_is_not_found(deduction, other_partner):
    page = client_for(other_partner).get(reverse("seller:deduction-dispute", args=[deduction.pk]))
    assert page.status_code == 404


# -- admin: supervisors decide, agents look ----------------------------------------------------


@pytest.mark.parametrize(
    ("role", "changelist", "form_shown", "decide", "reversed_"),
    [
        ("agent", 200, False, 403, False),
        ("supervisor", 200, True, 302, True),
    ],
)
def test_admin_dispute_actions_by_role(
    users, deduction, partner, role, changelist, form_shown, decide, reversed_
):
    dispute = opened(deduction, partner)
    client = client_for(users[role])
    change = reverse("admin:refunds_deductiondispute_change", args=[dispute.pk])
    decide_url = reverse("admin:refunds_deductiondispute_decide", args=[dispute.pk])

    listed = client.get(reverse("admin:refunds_deductiondispute_changelist"))
    assert listed.status_code == changelist
    assert ('id="dispute-decision"' in client.get(change).content.decode()) is form_shown
    response = client.post(decide_url, {"outcome": "upheld", "explanation": "Courier's loss."})

    assert response.status_code == decide
    reversals = RestaurantLedgerEntry.objects.filter(kind=REVERSAL)
    assert [r.amount for r in reversals] == ([D("6.00")] if reversed_ else [])


def test_admin_refuses_a_decision_without_explanation_with_a_message(
    deduction, partner, supervisor
):
    dispute = opened(deduction, partner)
    client = client_for(supervisor)
    response = client.post(
        reverse("admin:refunds_deductiondispute_decide", args=[dispute.pk]),
        {"outcome": "upheld", "explanation": ""},
    )
    assert [m.level_tag for m in get_messages(response.wsgi_request)] == ["error"]
    dispute.refresh_from_db()
    assert dispute.status == "open"
    assert not RestaurantLedgerEntry.objects.filter(kind=REVERSAL).exists()
