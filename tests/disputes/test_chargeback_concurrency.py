"""Chargebacks under real concurrency (D-11, L-8.2): two supervisors deciding one chargeback at
the same moment record one outcome and move its money once; the same dispute entered twice at
once is recorded once; a lost chargeback settles on a real Celery worker over Redis."""

from decimal import Decimal as D

import pytest

from core.errors import DomainError
from core.models import OutboxMessage
from disputes.models import Chargeback
from disputes.services.chargebacks import chargeback_lose, chargeback_open, chargeback_win
from disputes.tasks import settle_chargebacks
from orders.gateway import get_gateway
from orders.models import OrderEvent
from tests.concurrency import run_concurrently
from tests.conftest import advance, place_order, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DELIVER = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def codes(results) -> list:
    return sorted(r.code if isinstance(r, DomainError) else type(r).__name__ for r in results)


def test_two_supervisors_deciding_at_once_record_one_outcome_and_move_money_once(
    buyer, restaurant, agent, supervisor
):
    order = advance(place_order(buyer, restaurant), *DELIVER)
    chargeback, _ = chargeback_open(
        order_id=order.pk, amount=D("15.49"), bank_reference="B", reason_code="x", actor=agent
    )

    results = run_concurrently(
        lambda: chargeback_lose(chargeback_id=chargeback.pk, actor=supervisor), 2
    ) + run_concurrently(lambda: chargeback_win(chargeback_id=chargeback.pk, actor=supervisor), 2)
    settle_chargebacks()
    settle_chargebacks()

    assert codes(results) == [
        "Chargeback",
        "chargeback_decided",
        "chargeback_decided",
        "chargeback_decided",
    ]
    chargeback = Chargeback.objects.get()
    assert chargeback.status == "lost"
    made = get_gateway().chargebacks_of(charge_reference=order.payments.get().gateway_reference)
    assert [(c.amount, c.status) for c in made] == [(D("15.49"), "succeeded")]
    assert OrderEvent.objects.filter(name="chargeback_settled").count() == 1


def test_the_same_dispute_entered_twice_at_once_is_recorded_once(buyer, restaurant, agent):
    order = advance(place_order(buyer, restaurant), *DELIVER)

    results = run_concurrently(
        lambda: chargeback_open(
            order_id=order.pk, amount=D("5.00"), bank_reference="B", reason_code="x", actor=agent
        ),
        3,
    )

    assert codes(results) == ["chargeback_exists", "chargeback_exists", "tuple"]
    assert Chargeback.objects.count() == 1
    assert OrderEvent.objects.filter(name="chargeback_received").count() == 1


def test_a_lost_chargeback_settles_on_a_real_worker_through_the_outbox(
    worker, buyer, restaurant, agent, supervisor
):
    order = advance(place_order(buyer, restaurant), *DELIVER)
    chargeback, _ = chargeback_open(
        order_id=order.pk, amount=D("15.49"), bank_reference="B", reason_code="x", actor=agent
    )

    chargeback_lose(chargeback_id=chargeback.pk, actor=supervisor)

    assert wait_for(lambda: Chargeback.objects.get().settled_at is not None)
    made = get_gateway().chargebacks_of(charge_reference=order.payments.get().gateway_reference)
    assert [(c.amount, c.status) for c in made] == [(D("15.49"), "succeeded")]
    assert OutboxMessage.objects.filter(task="disputes.tasks.settle_chargeback").count() == 1
