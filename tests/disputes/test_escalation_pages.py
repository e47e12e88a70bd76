"""Escalation pages (D-9, journey "Buyer" 6): the request page offers "Ask a supervisor to
review" only on a denied or partly approved request, the escalation page says by when a
supervisor decides, the final decision is emailed and shown marked final; K-DR on the order
page; photos only for those allowed."""

import re
from decimal import Decimal as D

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from disputes.models import Escalation, EscalationEvidence
from disputes.services.escalations import escalation_decide, escalation_open
from tests.conftest import NOW
from tests.disputes.escalation_setup import (
    approved_request,
    cancellation_denied_order,
    denied_request,
    photo,
)

pytestmark = pytest.mark.django_db
STATEMENT = "The tiramisu was not in the bag."
EXPLAINED = "The driver confirms the bag was short."


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def denied(buyer, restaurant, menu, agent):
    return denied_request(buyer, restaurant, menu, agent)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_a_denied_request_offers_the_escalation_form(buyer, denied):
    page = text(signed_in(buyer).get(denied.get_absolute_url()))

    assert 'id="escalation-form"' in page
    assert "Ask a supervisor to review" in page
    assert 'href="/policy/#L-8.1"' in page


def test_an_approved_request_offers_no_escalation(buyer, restaurant, menu, agent):
    request = approved_request(buyer, restaurant, menu, agent)

    page = text(signed_in(buyer).get(request.get_absolute_url()))

    assert "escalation-form" not in page
    assert "Ask a supervisor" not in page


def test_escalating_from_the_request_page(buyer, denied, django_capture_on_commit_callbacks):
    client = signed_in(buyer)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("disputes:escalate-request", args=[denied.pk]),
            {"statement": STATEMENT, "photos": [photo()]},
            follow=True,
        )

    escalation = Escalation.objects.get()
    assert response.redirect_chain[-1][0] == escalation.get_absolute_url()
    page = text(response)
    assert f"Escalation #{escalation.pk} sent" in page
    assert "A supervisor decides by Mon 30 Nov 2026" in page
    assert STATEMENT in page
    assert escalation.evidence.count() == 1
    request_page = text(client.get(denied.get_absolute_url()))
    assert "escalation-form" not in request_page
    assert "Waiting for a supervisor" in request_page
    assert [m.to for m in mail.outbox] == [[buyer.email]]
    assert "Mon 30 Nov 2026" in mail.outbox[0].subject


def test_a_refused_escalation_keeps_the_statement_and_stores_nothing(buyer, denied):
    bad = SimpleUploadedFile("x.png", b"not an image", content_type="image/png")
    url = reverse("disputes:escalate-request", args=[denied.pk])

    response = signed_in(buyer).post(url, {"statement": STATEMENT, "photos": [bad]})

    assert response.status_code == 400
    assert "Photos: x.png is not an image we can read." in text(response)
    page = response.content.decode()
    assert f'action="{url}"' in page
    assert f">{STATEMENT}</textarea>" in page
    assert f'href="{denied.get_absolute_url()}"' in page
    assert (Escalation.objects.count(), EscalationEvidence.objects.count()) == (0, 0)


def test_a_second_escalation_from_the_page_is_refused_with_the_clause(buyer, denied):
    escalation_open(request_id=denied.pk, actor=buyer, statement=STATEMENT)

    response = signed_in(buyer).post(
        reverse("disputes:escalate-request", args=[denied.pk]),
        {"statement": "Again."},
        follow=True,
    )

    # The message links the clause it cites (D-9).
    assert re.search(
        r"the supervisor&#x27;s decision is final\. Why\? "
        r'<a class="clause" href="/policy/#L-8\.1" title="L-8\.1 · Escalation Process\.',
        text(response),
    )
    assert Escalation.objects.count() == 1


def test_another_buyer_gets_404s(other_buyer, buyer, denied):
    escalation = escalation_open(request_id=denied.pk, actor=buyer, statement=STATEMENT)
    client = signed_in(other_buyer)

    assert client.get(escalation.get_absolute_url()).status_code == 404
    response = client.post(
        reverse("disputes:escalate-request", args=[denied.pk]), {"statement": STATEMENT}
    )
    assert response.status_code == 404
    assert Escalation.objects.count() == 1


def test_the_final_decision_is_emailed_and_shown_marked_final(
    buyer, denied, supervisor, django_capture_on_commit_callbacks
):
    escalation = escalation_open(request_id=denied.pk, actor=buyer, statement=STATEMENT)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        escalation_decide(
            escalation_id=escalation.pk,
            actor=supervisor,
            outcome="overturned",
            explanation=EXPLAINED,
            amount=D("6.00"),
        )

    client = signed_in(buyer)
    for url in (escalation.get_absolute_url(), denied.get_absolute_url()):
        page = text(client.get(url))
        assert "Overturned" in page
        assert "Final decision" in page
        assert 'New total refund: <strong id="escalation-amount">6.00' in page
        assert EXPLAINED in page
        assert "cannot be escalated again" in page
    request_page = text(client.get(denied.get_absolute_url()))
    assert "Refund of 6.00 USD to your card is on its way" in request_page  # on the timeline
    final = [m for m in mail.outbox if "final decision" in m.subject]
    assert [m.to for m in final] == [[buyer.email]]
    assert "This decision is final (L-8.1)." in final[0].body


def test_contesting_a_denied_cancellation_from_the_order_page(buyer, restaurant, partner):
    order = cancellation_denied_order(buyer, restaurant, partner)
    client = signed_in(buyer)
    page = text(client.get(order.get_absolute_url()))
    assert "The restaurant denied your cancellation request." in page
    assert 'name="subject" value="cancellation_denied"' in page

    response = client.post(
        reverse("disputes:escalate-order", args=[order.pk]),
        {"subject": "cancellation_denied", "statement": STATEMENT},
        follow=True,
    )

    escalation = Escalation.objects.get()
    assert (escalation.subject, escalation.order_id) == ("cancellation_denied", order.pk)
    assert "A supervisor decides by" in text(response)
    assert 'name="subject"' not in text(client.get(order.get_absolute_url()))


def test_escalation_photos_only_for_the_buyer_and_support(
    buyer, other_buyer, agent, partner, denied
):
    escalation = escalation_open(
        request_id=denied.pk, actor=buyer, statement=STATEMENT, photos=[photo()]
    )
    url = reverse("disputes:evidence", args=[escalation.evidence.get().pk])

    for user, status in [(buyer, 200), (agent, 200), (other_buyer, 404), (partner, 404)]:
        response = signed_in(user).get(url)
        assert response.status_code == status
        if status == 200:
            assert response["Content-Type"] == "image/jpeg"
            assert response["X-Content-Type-Options"] == "nosniff"
