"""Chargebacks and suspensions in admin (L-8.2, D-4): every action by agent vs supervisor, as a
table; each goes through its service, and a refusal is a message that changes nothing."""

import io
import re
from decimal import Decimal as D

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from disputes.models import Chargeback, Suspension
from disputes.services.chargebacks import chargeback_open
from disputes.services.suspensions import buyer_suspend
from tests.conftest import advance, place_order

pytestmark = pytest.mark.django_db

DELIVER = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def delivered(now, buyer, restaurant):
    return advance(place_order(buyer, restaurant), *DELIVER)


@pytest.fixture
def chargeback(delivered, agent):
    chargeback, _ = chargeback_open(
        order_id=delivered.pk,
        amount=D("15.49"),
        bank_reference="BANK-1",
        reason_code="fraud",
        actor=agent,
    )
    return chargeback


def act_url(chargeback, action) -> str:
    return reverse("admin:disputes_chargeback_act", args=[chargeback.pk, action])


def state() -> tuple:
    return (
        list(Chargeback.objects.values_list("pk", "status", "decided_by", "settled_at")),
        list(Suspension.objects.values_list("pk", "lifted_at")),
    )


# action: (how to do it, what it leaves when it worked)
ACTIONS = {
    "enter a chargeback": "enter",
    "download the evidence PDF": "pdf",
    "download the evidence JSON": "json",
    "send the evidence": "submit_evidence",
    "record won": "won",
    "record lost": "lost",
    "accept": "accept",
    "suspend the buyer (chargeback page)": "suspend",
    "suspend a buyer (suspensions)": "suspend_add",
    "reinstate (suspensions action)": "reinstate",
}
# action: {role: allowed?}
TABLE = {
    "enter a chargeback":                  {"agent": True,  "supervisor": True},
    "download the evidence PDF":           {"agent": True,  "supervisor": True},
    "download the evidence JSON":          {"agent": True,  "supervisor": True},
    "send the evidence":                   {"agent": True,  "supervisor": True},
    "record won":                          {"agent": False, "supervisor": True},
    "record lost":                         {"agent": False, "supervisor": True},
    "accept":                              {"agent": False, "supervisor": True},
    "suspend the buyer (chargeback page)": {"agent": False, "supervisor": True},
    "suspend a buyer (suspensions)":       {"agent": False, "supervisor": True},
    "reinstate (suspensions action)":      {"agent": False, "supervisor": True},
}  # fmt: skip


@pytest.mark.parametrize("role", ["agent", "supervisor"])
@pytest.mark.parametrize("action", list(TABLE))
def test_who_may_do_what(
    action,
    role,
    users,
    buyer,
    supervisor,
    delivered,
    chargeback,
    django_capture_on_commit_callbacks,
):
    how, allowed = ACTIONS[action], TABLE[action][role]
    if how == "reinstate":
        buyer_suspend(buyer_id=buyer.pk, actor=supervisor, reason="Chargeback filed.")
    client = client_for(users[role])
    before = state()

    with django_capture_on_commit_callbacks(execute=True):
        response = _do(client, how, chargeback, delivered, buyer)

    after = state()
    if how in ("pdf", "json"):
        assert response.status_code == 200
        assert response["Content-Type"] == f"application/{how}"
    elif allowed:
        assert response.status_code == 302, response.content[:400]
        assert after != before
        assert not [m for m in messages_of(response) if m[0] == "error"]
    else:
        assert after == before
        if how == "reinstate":  # the action is not offered to an agent at all
            assert response.status_code == 200
            assert 'value="reinstate"' not in response.content.decode()
        elif response.status_code == 302:
            assert [level for level, _ in messages_of(response)] == ["error"]
        else:
            assert response.status_code == 403


def _do(client, how, chargeback, delivered, buyer):
    if how == "enter":
        return client.post(
            reverse("admin:disputes_chargeback_add"),
            {"order": delivered.pk, "amount": "2.00", "bank_reference": "B-2", "reason_code": "x"},
        )
    if how in ("pdf", "json"):
        return client.get(reverse("admin:disputes_chargeback_evidence", args=[chargeback.pk, how]))
    if how == "suspend":
        return client.post(act_url(chargeback, "suspend"), {"reason": "Chargeback filed."})
    if how == "suspend_add":
        return client.post(
            reverse("admin:disputes_suspension_add"),
            {"buyer": buyer.username, "reason": "Fraud suspected.", "suspected_fraud": "on"},
        )
    if how == "reinstate":
        return client.post(
            reverse("admin:disputes_suspension_changelist"),
            {
                "action": "reinstate",
                "_selected_action": list(Suspension.objects.values_list("pk", flat=True)),
            },
        )
    return client.post(act_url(chargeback, how), {"note": "From admin."})


@pytest.mark.parametrize(
    ("role", "buttons"),
    [
        ("agent", ["submit_evidence"]),
        ("supervisor", ["submit_evidence", "won", "lost", "accept", "suspend"]),
    ],
)
def test_the_page_offers_each_role_its_buttons(role, buttons, users, chargeback):
    response = client_for(users[role]).get(
        reverse("admin:disputes_chargeback_change", args=[chargeback.pk])
    )

    assert response.status_code == 200
    assert re.findall(r'data-action="(\w+)"', response.content.decode()) == buttons
    assert "15.49" in response.content.decode()


def test_a_lost_chargeback_in_admin_moves_the_money_and_says_so(
    supervisor, chargeback, django_capture_on_commit_callbacks
):
    client = client_for(supervisor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(act_url(chargeback, "lost"), {"note": "Bank ruled."})

    chargeback.refresh_from_db()
    assert (chargeback.status, chargeback.decided_by) == ("lost", supervisor)
    assert chargeback.settled_at is not None
    assert messages_of(response) == [("success", f"{chargeback}: lost.")]
    again = client.post(act_url(chargeback, "won"), {})
    assert messages_of(again)[-1] == ("error", f"Chargeback #{chargeback.pk} is already lost.")


def test_entering_a_chargeback_for_an_unknown_order_shows_the_error(agent):
    response = client_for(agent).post(
        reverse("admin:disputes_chargeback_add"),
        {"order": 999999, "amount": "2.00", "bank_reference": "B", "reason_code": "x"},
    )

    assert response.status_code == 200
    assert "There is no order 999999." in response.content.decode()
    assert Chargeback.objects.count() == 0


def test_the_admin_evidence_pdf_opens(agent, chargeback, delivered):
    response = client_for(agent).get(
        reverse("admin:disputes_chargeback_evidence", args=[chargeback.pk, "pdf"])
    )

    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert f"order #{delivered.pk}" in text
    assert delivered.payments.get().gateway_reference in text


def test_buyers_and_partners_do_not_reach_the_admin(buyer, partner, chargeback):
    for user in (buyer, partner):
        response = client_for(user).get(
            reverse("admin:disputes_chargeback_evidence", args=[chargeback.pk, "pdf"])
        )
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
