"""The processor's webhook (D-10, L-8.2): a call with no signature, a wrong one, a stale
timestamp or a replayed event id changes nothing; a good one opens the chargeback once, even
when it is delivered twice (one after the other, or at the same moment)."""

import datetime as dt
import json
import time
from decimal import Decimal as D

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from core.models import Notification
from disputes.models import Chargeback, GatewayEvent
from orders.gateway import webhook_signature
from orders.models import OrderEvent
from tests.concurrency import run_concurrently
from tests.conftest import advance, place_order

pytestmark = pytest.mark.django_db

URL = "/api/gateway/webhooks/"
DELIVER = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")


@pytest.fixture
def delivered(buyer, restaurant, supervisor):
    return advance(place_order(buyer, restaurant), *DELIVER)


def chargeback_event(order, event_id="evt_1", bank_reference="BANK-77", amount="15.49") -> dict:
    return {
        "id": event_id,
        "type": "chargeback.opened",
        "data": {
            "charge_reference": order.payments.get().gateway_reference,
            "amount": amount,
            "currency": settings.LOJIX_CURRENCY,
            "bank_reference": bank_reference,
            "reason_code": "10.4",
            "evidence_due_by": "2026-12-04T12:00:00+00:00",
        },
    }


def post(body: bytes, signature: str | None):
    headers = {} if signature is None else {"HTTP_LOJIX_SIGNATURE": signature}
    return APIClient().post(URL, body, content_type="application/json", **headers)


def signed(payload, *, secret=None, at=None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    timestamp = int(time.time()) if at is None else at
    secret = settings.LOJIX_GATEWAY_WEBHOOK_SECRET if secret is None else secret
    return body, webhook_signature(secret=secret, body=body, timestamp=timestamp)


def stored() -> tuple:
    return (
        Chargeback.objects.count(),
        GatewayEvent.objects.count(),
        OrderEvent.objects.filter(name="chargeback_received").count(),
        Notification.objects.count(),
    )


def test_a_good_event_opens_the_chargeback_with_the_banks_due_date(delivered, supervisor):
    response = post(*signed(chargeback_event(delivered)))

    assert response.status_code == 200, response.content
    chargeback = Chargeback.objects.get()
    assert response.json() == {
        "event": "evt_1",
        "type": "chargeback.opened",
        "handled": True,
        "chargeback": chargeback.pk,
    }
    assert (chargeback.order, chargeback.amount, chargeback.amount_at_stake) == (
        delivered,
        D("15.49"),
        D("15.49"),
    )
    assert (chargeback.source, chargeback.created_by, chargeback.reason_code) == (
        "processor",
        None,
        "10.4",
    )
    assert chargeback.evidence_due_by == dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC)
    assert GatewayEvent.objects.get().chargeback == chargeback
    assert Notification.objects.filter(user=supervisor).count() == 1


@pytest.mark.parametrize(
    ("case", "make", "code"),
    [
        ("no signature", lambda body, sig: (body, None), "signature_missing"),
        ("empty signature", lambda body, sig: (body, ""), "signature_missing"),
        ("malformed", lambda body, sig: (body, "v1=abc"), "signature_invalid"),
        (
            "wrong secret",
            lambda body, sig: signed(body, secret="whsec-someone-else"),
            "signature_invalid",
        ),
        ("body changed after signing", lambda body, sig: (body + b" ", sig), "signature_invalid"),
        (
            "stale timestamp",
            lambda body, sig: signed(body, at=int(time.time()) - 400),
            "signature_stale",
        ),
        (
            "from the future",
            lambda body, sig: signed(body, at=int(time.time()) + 400),
            "signature_stale",
        ),
    ],
)
def test_a_bad_signature_changes_nothing(case, make, code, delivered):
    body, signature = make(*signed(chargeback_event(delivered)))
    before = stored()

    response = post(body, signature)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert stored() == before == (0, 0, 0, 0)


def test_a_signature_just_inside_the_tolerance_is_accepted(delivered):
    assert post(*signed(chargeback_event(delivered), at=int(time.time()) - 290)).status_code == 200


def test_a_replayed_event_id_changes_nothing(delivered):
    first = post(*signed(chargeback_event(delivered)))
    assert first.status_code == 200
    before = stored()

    # The same call again (a replay), then the same event id freshly signed (a redelivery).
    replayed = [post(*signed(chargeback_event(delivered))) for _ in range(2)]
    exact = post(first.wsgi_request.body, first.wsgi_request.headers["Lojix-Signature"])

    assert [r.status_code for r in [*replayed, exact]] == [409, 409, 409]
    assert {r.json()["code"] for r in [*replayed, exact]} == {"event_replayed"}
    assert stored() == before
    assert before[:3] == (1, 1, 1)


def test_the_same_chargeback_under_two_event_ids_opens_once(delivered):
    post(*signed(chargeback_event(delivered, event_id="evt_1")))

    second = post(*signed(chargeback_event(delivered, event_id="evt_2")))

    assert second.status_code == 200
    assert second.json()["chargeback"] == Chargeback.objects.get().pk
    assert GatewayEvent.objects.count() == 2
    assert OrderEvent.objects.filter(name="chargeback_received").count() == 1


@pytest.mark.parametrize(
    ("case", "payload", "code"),
    [
        ("not JSON", b"{nope", "invalid_event"),
        ("a list", b"[]", "invalid_event"),
        ("no id", {"type": "chargeback.opened", "data": {}}, "invalid_event"),
        ("unknown type", {"id": "evt_9", "type": "payout.paid", "data": {}}, "unknown_event_type"),
        ("unknown charge", "UNKNOWN_CHARGE", "unknown_charge"),
        ("over the charge", "OVER", "chargeback_exceeds_charge"),
    ],
)
def test_a_well_signed_but_bad_event_changes_nothing(case, payload, code, delivered):
    if payload == "UNKNOWN_CHARGE":
        payload = chargeback_event(delivered)
        payload["data"]["charge_reference"] = "sim_ch_nothing"
    elif payload == "OVER":
        payload = chargeback_event(delivered, amount="15.50")

    response = post(*signed(payload))

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert stored() == (0, 0, 0, 0)


def test_a_refund_event_is_recorded_and_acts_on_nothing(delivered):
    payload = {"id": "evt_r", "type": "refund.settled", "data": {"refund": "sim_re_1"}}

    response = post(*signed(payload))

    assert response.status_code == 200
    assert response.json()["handled"] is False
    assert GatewayEvent.objects.get().type == "refund.settled"
    assert Chargeback.objects.count() == 0


def test_no_secret_configured_refuses_every_call(delivered, settings):
    body, signature = signed(chargeback_event(delivered))
    settings.LOJIX_GATEWAY_WEBHOOK_SECRET = ""

    response = post(body, signature)

    assert (response.status_code, response.json()["code"]) == (400, "webhook_not_configured")
    assert stored() == (0, 0, 0, 0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_good_event_delivered_twice_at_the_same_moment_opens_the_chargeback_once(
    buyer, restaurant, supervisor
):
    order = advance(place_order(buyer, restaurant), *DELIVER)
    body, signature = signed(chargeback_event(order))

    results = run_concurrently(lambda: post(body, signature).status_code, 4)

    assert sorted(results) == [200, 409, 409, 409]
    assert Chargeback.objects.count() == 1
    assert GatewayEvent.objects.count() == 1
    assert OrderEvent.objects.filter(name="chargeback_received").count() == 1
