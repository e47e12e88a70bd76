"""Chargebacks (L-8.2, L-7.2): opened by support, counted against what can still be refunded,
decided by a supervisor; a lost or accepted one moves its money back on the processor once."""

import datetime as dt
import re
import sqlite3
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.errors import DomainError, InvalidInput
from core.models import Notification
from disputes.models import Chargeback
from disputes.services.chargebacks import (
    chargeback_accept,
    chargeback_lose,
    chargeback_open,
    chargeback_settle,
    chargeback_submit_evidence,
    chargeback_win,
)
from disputes.tasks import settle_chargebacks
from orders import gateway as gateway_module
from orders.gateway import SimulatedGateway, get_gateway
from orders.models import OrderEvent
from refunds.models import Refund, RefundRequest
from refunds.selectors import paid_facts
from refunds.services.execution import refund_order
from refunds.services.requests import refund_request_submit
from tests.conftest import NOW, advance, give_credit, place_order, refunds_processed

pytestmark = pytest.mark.django_db

PAID = D("15.49")  # Margherita 12.50 + delivery 2.99, all by card


@pytest.fixture
def delivered(now, buyer, restaurant):
    order = place_order(buyer, restaurant)
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def open_chargeback(order, actor, amount=PAID, reference="BANK-1", **kwargs):
    chargeback, created = chargeback_open(
        order_id=order.pk,
        amount=amount,
        bank_reference=reference,
        reason_code="fraud",
        actor=actor,
        **kwargs,
    )
    assert created
    return chargeback


def processor_chargebacks(order):
    payment = order.payments.get()
    return get_gateway().chargebacks_of(charge_reference=payment.gateway_reference)


def test_an_agent_opens_a_chargeback_due_in_the_versions_days_and_supervisors_are_told(
    delivered, agent, supervisor
):
    chargeback = open_chargeback(delivered, agent)

    assert (chargeback.status, chargeback.amount, chargeback.amount_at_stake) == (
        "received",
        PAID,
        PAID,
    )
    assert chargeback.source == "agent"
    assert chargeback.created_by == agent
    assert chargeback.evidence_due_by == chargeback.received_at + dt.timedelta(days=7)
    event = delivered.events.get(name="chargeback_received")
    assert (event.clauses, event.amount) == (["L-8.2"], PAID)
    assert Notification.objects.filter(user=supervisor, title__contains="Chargeback").count() == 1
    # Until the bank decides, nothing more can be refunded (L-7.2).
    assert paid_facts(delivered).refundable == D("0.00")


def test_money_already_refunded_counts_against_the_disputed_amount(delivered, agent):
    refund_order(
        order_id=delivered.pk,
        amount=D("5.00"),
        method="original",
        idempotency_key="goodwill",
        actor=agent,
        role="support",
        reason="Goodwill",
    )
    refunds_processed()

    chargeback = open_chargeback(delivered, agent)

    assert (chargeback.amount, chargeback.amount_at_stake) == (PAID, D("10.49"))
    assert (
        "5.00 USD of it was already refunded"
        in delivered.events.get(name="chargeback_received").message
    )


def test_a_refund_request_after_a_chargeback_is_refused(delivered, buyer, agent):
    open_chargeback(delivered, agent)

    with pytest.raises(DomainError) as refused:
        refund_request_submit(order_id=delivered.pk, actor=buyer, reason="not_delivered")

    assert (refused.value.code, refused.value.clauses) == ("chargeback_filed", ("L-7.2", "L-8.2"))
    assert RefundRequest.objects.count() == 0
    assert Refund.objects.count() == 0


def test_a_refund_after_a_chargeback_cannot_take_back_more_than_was_paid(delivered, agent):
    open_chargeback(delivered, agent, amount=D("10.00"))

    with pytest.raises(DomainError) as refused:
        refund_order(
            order_id=delivered.pk,
            amount=D("6.00"),
            method="original",
            idempotency_key="late-goodwill",
            actor=agent,
            role="support",
            reason="Goodwill",
        )

    assert refused.value.code == "refund_exceeds_paid"
    assert Refund.objects.count() == 0


def test_a_lost_chargeback_moves_the_money_back_on_the_processor_once(
    delivered, agent, supervisor, django_capture_on_commit_callbacks
):
    chargeback = open_chargeback(delivered, agent)
    chargeback_submit_evidence(chargeback_id=chargeback.pk, actor=agent, note="Delivered.")

    with django_capture_on_commit_callbacks(execute=True):
        chargeback_lose(chargeback_id=chargeback.pk, actor=supervisor, note="Bank ruled.")
    assert chargeback_settle(chargeback_id=chargeback.pk) == "skipped"

    chargeback.refresh_from_db()
    assert chargeback.status == "lost"
    assert chargeback.decided_by == supervisor
    assert chargeback.settled_at is not None
    [made] = processor_chargebacks(delivered)
    assert (made.reference, made.amount, made.status) == (
        chargeback.settlement_reference,
        PAID,
        "succeeded",
    )
    assert delivered.events.get(name="chargeback_settled").amount == PAID
    assert call_command("check_ledgers") is None


def test_a_won_chargeback_moves_nothing_and_frees_the_money_again(delivered, agent, supervisor):
    chargeback = open_chargeback(delivered, agent)
    chargeback_submit_evidence(chargeback_id=chargeback.pk, actor=agent)

    chargeback_win(chargeback_id=chargeback.pk, actor=supervisor)

    chargeback.refresh_from_db()
    assert (chargeback.status, chargeback.settled_at, chargeback.settlement_key) == (
        "won",
        None,
        "",
    )
    assert processor_chargebacks(delivered) == []
    assert paid_facts(delivered).refundable == PAID


def test_accepting_moves_the_money_and_a_processor_error_is_retried_on_beat(
    delivered, agent, supervisor, settings, django_capture_on_commit_callbacks
):
    chargeback = open_chargeback(delivered, agent)
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"chargeback": "error"}
    with django_capture_on_commit_callbacks(execute=True):
        chargeback_accept(chargeback_id=chargeback.pk, actor=supervisor)
    chargeback.refresh_from_db()
    assert (chargeback.status, chargeback.settled_at) == ("accepted", None)
    assert chargeback.settlement_error.startswith("Processor error")

    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}
    assert settings.CELERY_BEAT_SCHEDULE["settle-chargebacks"] == {
        "task": "disputes.tasks.settle_chargebacks",
        "schedule": 300.0,
    }
    assert settle_chargebacks() == {"settled": 1}
    assert settle_chargebacks() == {}

    chargeback.refresh_from_db()
    assert chargeback.settled_at is not None
    assert len(processor_chargebacks(delivered)) == 1


def test_a_chargeback_wholly_covered_by_refunds_moves_nothing_when_lost(
    delivered, agent, supervisor, django_capture_on_commit_callbacks
):
    refund_order(
        order_id=delivered.pk,
        amount=PAID,
        method="original",
        idempotency_key="full",
        actor=agent,
        role="support",
        reason="Full refund",
    )
    refunds_processed()
    chargeback = open_chargeback(delivered, agent)
    assert chargeback.amount_at_stake == D("0.00")

    with django_capture_on_commit_callbacks(execute=True):
        chargeback_lose(chargeback_id=chargeback.pk, actor=supervisor)

    chargeback.refresh_from_db()
    assert chargeback.settled_at is not None
    assert processor_chargebacks(delivered) == []


@pytest.mark.parametrize(
    ("case", "decide"),
    [
        ("won", chargeback_win),
        ("lost", chargeback_lose),
        ("accepted", chargeback_accept),
    ],
)
def test_an_agent_cannot_decide_a_chargeback(case, decide, delivered, agent):
    chargeback = open_chargeback(delivered, agent)

    with pytest.raises(DomainError) as refused:
        decide(chargeback_id=chargeback.pk, actor=agent)

    assert (refused.value.code, refused.value.kind) == ("supervisor_required", "forbidden")
    chargeback.refresh_from_db()
    assert chargeback.status == "received"


def test_a_decided_chargeback_is_not_decided_again(delivered, agent, supervisor):
    chargeback = open_chargeback(delivered, agent)
    chargeback_win(chargeback_id=chargeback.pk, actor=supervisor)

    with pytest.raises(DomainError) as refused:
        chargeback_lose(chargeback_id=chargeback.pk, actor=supervisor)

    assert refused.value.code == "chargeback_decided"
    assert Chargeback.objects.get().status == "won"


def test_contested_chargebacks_are_not_accepted_and_late_evidence_is_refused(
    now, delivered, agent, supervisor
):
    first = open_chargeback(delivered, agent)
    chargeback_submit_evidence(chargeback_id=first.pk, actor=agent)
    with pytest.raises(DomainError) as contested:
        chargeback_accept(chargeback_id=first.pk, actor=supervisor)
    assert contested.value.code == "chargeback_contested"

    second = open_chargeback(
        delivered, agent, amount=D("0.01"), reference="BANK-2", evidence_due_by=NOW
    )
    now.shift(dt.timedelta(days=1))
    with pytest.raises(DomainError) as late:
        chargeback_submit_evidence(chargeback_id=second.pk, actor=agent)
    assert (late.value.code, late.value.clauses) == ("evidence_overdue", ("L-8.2",))


@pytest.mark.parametrize(
    ("case", "amount", "reference", "code"),
    [
        ("over the charge", "15.50", "B", "chargeback_exceeds_charge"),
        ("negative", "-1.00", "B", "invalid_amount"),
        ("fractions of a cent", "1.001", "B", "invalid_amount"),
        ("not a number", "ten", "B", "invalid_amount"),
        ("no bank reference", "1.00", "  ", "bank_reference_required"),
    ],
)
def test_bad_input_opens_nothing(case, amount, reference, code, delivered, agent):
    with pytest.raises(InvalidInput) as refused:
        chargeback_open(
            order_id=delivered.pk,
            amount=amount,
            bank_reference=reference,
            reason_code="fraud",
            actor=agent,
        )

    assert refused.value.code == code
    assert Chargeback.objects.count() == 0
    assert not delivered.events.filter(name="chargeback_received").exists()


def test_the_same_bank_reference_twice_is_refused_for_an_agent_and_kept_for_the_processor(
    delivered, agent
):
    first = open_chargeback(delivered, agent)

    with pytest.raises(DomainError) as refused:
        open_chargeback(delivered, agent)
    again, created = chargeback_open(
        order_id=delivered.pk, amount=PAID, bank_reference="BANK-1", reason_code="x", actor=None
    )

    assert refused.value.code == "chargeback_exists"
    assert (again, created) == (first, False)
    assert Chargeback.objects.count() == 1
    assert delivered.events.filter(name="chargeback_received").count() == 1


def test_a_buyer_or_partner_cannot_open_one(delivered, buyer, partner):
    for actor in (buyer, partner):
        with pytest.raises(DomainError) as refused:
            open_chargeback(delivered, actor)
        assert (refused.value.code, refused.value.kind) == ("forbidden", "forbidden")
    assert Chargeback.objects.count() == 0


def test_an_order_paid_only_with_credit_has_nothing_to_charge_back(now, buyer, restaurant, agent):
    give_credit(buyer, "50.00")
    order = place_order(buyer, restaurant, use_credit=True)

    with pytest.raises(DomainError) as refused:
        open_chargeback(order, agent)

    assert refused.value.code == "no_card_payment"
    assert OrderEvent.objects.filter(name="chargeback_received").count() == 0


# -- check_ledgers and the processor count chargebacks (L-8.2, D-7) --------------------------


def _lost(order, agent, supervisor, capture) -> Chargeback:
    chargeback = open_chargeback(order, agent)
    with capture(execute=True):
        chargeback_lose(chargeback_id=chargeback.pk, actor=supervisor)
    chargeback.refresh_from_db()
    return chargeback


@pytest.mark.parametrize(
    "corruption", ["refund on top", "phantom chargeback", "unknown chargeback"]
)
def test_check_ledgers_fails_when_chargebacks_do_not_add_up(
    corruption, delivered, agent, supervisor, django_capture_on_commit_callbacks
):
    chargeback = _lost(delivered, agent, supervisor, django_capture_on_commit_callbacks)
    payment = delivered.payments.get()
    if corruption == "refund on top":
        # A card refund lojix thinks it made on top of the lost chargeback.
        refund = Refund.objects.create(
            order=delivered,
            payment=payment,
            amount=D("1.00"),
            destination="card",
            idempotency_key="forged",
            status="succeeded",
            reason="Forged",
        )
        expected = "charged back 15.49 but paid 15.49"
    elif corruption == "phantom chargeback":
        SimulatedGateway.forget(idempotency_key=chargeback.settlement_key)
        expected = f"no processor chargeback {chargeback.settlement_reference} of 15.49"
    else:
        Chargeback.objects.filter(pk=chargeback.pk).update(settled_at=None)
        expected = "by a chargeback lojix does not record as settled"

    with pytest.raises(CommandError, match=re.escape(expected)):
        call_command("check_ledgers")

    # Put it right so the after-test ledger check can pass.
    if corruption == "refund on top":
        refund.delete()
    elif corruption == "phantom chargeback":
        Chargeback.objects.filter(pk=chargeback.pk).update(settled_at=None, status="won")
    else:
        Chargeback.objects.filter(pk=chargeback.pk).update(settled_at=chargeback.settled_at)


def test_the_processor_never_lets_refunds_and_chargebacks_exceed_the_charge(
    delivered, agent, supervisor, django_capture_on_commit_callbacks
):
    _lost(delivered, agent, supervisor, django_capture_on_commit_callbacks)
    gateway = get_gateway()
    charge = delivered.payments.get().gateway_reference

    refund = gateway.refund(
        charge_reference=charge, amount=D("0.01"), currency="USD", idempotency_key="more"
    )
    again = gateway.chargeback(
        charge_reference=charge, amount=D("0.01"), currency="USD", idempotency_key="more-cb"
    )

    assert (refund.outcome, refund.message) == ("declined", "Refund exceeds the charge.")
    assert (again.outcome, again.message) == ("declined", "Chargeback exceeds the charge.")


def test_a_processor_store_made_before_chargebacks_is_upgraded_with_its_rows(tmp_path, settings):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        gateway_module._SCHEMA.replace(", 'chargeback'", "")
        + "INSERT INTO operation VALUES ('sim_ch_1', 'k1', 'charge', '10.00', 'USD', "
        "'succeeded', '', '', '', '2026-11-20T12:00:00.000000+00:00');"
    )
    old.close()
    settings.LOJIX_SIMULATED_GATEWAY_PATH = path

    result = get_gateway().chargeback(
        charge_reference="sim_ch_1", amount=D("4.00"), currency="USD", idempotency_key="cb"
    )

    assert result.outcome == "succeeded"
    assert get_gateway().find(idempotency_key="k1").amount == D("10.00")
    assert [c.amount for c in get_gateway().chargebacks_of(charge_reference="sim_ch_1")] == [
        D("4.00")
    ]
    SimulatedGateway.reset()
