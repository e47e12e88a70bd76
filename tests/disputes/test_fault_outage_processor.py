"""An outage's bulk refund while the processor fails a tenth of the refunds (issue 11 §4): a
real Celery worker and beat (tests/processes.py) refund 150 affected orders (L-10) through the
simulated processor, which fails (`error`: it did nothing) or loses the answer (`timeout`: it
made the refund) on the first call for one key in ten, chosen by a hash of the key
(deterministic, `LOJIX_SIMULATED_GATEWAY_FAULTS`); beat's retry sweep tries again with the
same key.

Proven: in the end every affected order is refunded exactly once, in lojix and at the
processor (one succeeded processor refund per charge, the one lojix recorded); the refunds the
processor failed are exactly the ones retried, each once; the outage closes with every order
counted; `check_ledgers` passes.
"""

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Count, Sum

from config.celery import app as celery_app
from disputes.models import Incident
from disputes.services.outages import outage_refund_start
from orders.gateway import get_gateway
from tests.bulk_orders import orders_like
from tests.conftest import place_order, wait_for
from tests.disputes.test_outage_concurrency import AFTER, START, outage, outage_refunds
from tests.refunds.test_late_sweep_crash import FAST_RETRIES

pytestmark = [
    pytest.mark.long,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(200),
]

AFFECTED = 150
ONE_IN = 10
RETRY = "refunds.tasks.retry_failed_refunds"
RELAY = "core.tasks.outbox_relay"


def refunded_and_closed(incident) -> bool:
    return (
        outage_refunds().filter(status="succeeded").count() == AFFECTED
        and Incident.objects.filter(pk=incident.pk, status=Incident.Status.CLOSED).exists()
    )


@pytest.mark.parametrize("fault", ["error", "timeout"])
def test_an_outage_refund_with_a_tenth_of_the_processor_calls_failing_refunds_each_order_once(
    celery_processes, buyer, restaurant, supervisor, monkeypatch, fault
):
    with time_machine.travel(START + dt.timedelta(minutes=1), tick=False):
        first = place_order(buyer, restaurant)
        affected = [first, *orders_like(first, AFFECTED - 1)]
    incident = outage(supervisor, [restaurant.pk])
    celery_processes.configure(
        LOJIX_SIMULATED_GATEWAY_FAULTS={"refund": {"fault": fault, "one_in": ONE_IN}},
        LOJIX_OUTAGE_BATCH_SIZE="50",
        **FAST_RETRIES,
    )
    celery_processes.start_beat()
    celery_processes.beat_every(1, RETRY, RELAY)
    celery_processes.start_worker(concurrency=2)
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)  # to the worker

    outage_refund_start(incident_id=incident.pk, actor=supervisor, now=AFTER)

    assert wait_for(lambda: refunded_and_closed(incident), 150), (
        f"{outage_refunds().filter(status='succeeded').count()} of {AFFECTED} refunded"
    )
    celery_processes.stop()
    paid = first.amount_paid
    per_order = outage_refunds().values("order").annotate(n=Count("pk"), total=Sum("amount"))
    assert {row["order"]: (row["n"], row["total"]) for row in per_order} == {
        order.pk: (1, paid) for order in affected
    }
    gateway = get_gateway()
    for refund in outage_refunds().select_related("payment"):
        at_processor = gateway.refunds_of(charge_reference=refund.payment.gateway_reference)
        assert [(r.reference, r.amount, r.status) for r in at_processor] == [
            (refund.gateway_reference, paid, "succeeded")
        ]
    failed = gateway.faults_acted()
    assert set(failed.values()) == {fault}
    # About one in ten, by a hash of keys that differ per run: bounds a run never falls outside.
    assert AFFECTED // 50 <= len(failed) <= AFFECTED // 5, len(failed)
    retried = set(outage_refunds().filter(attempts=1).values_list("processor_key", flat=True))
    assert retried == set(failed)  # each failed call was tried again, once
    assert not outage_refunds().filter(attempts__gt=1).exists()
    incident.refresh_from_db()
    assert (incident.affected_orders, incident.refunded_orders) == (AFFECTED, AFFECTED)
    assert incident.refunded_amount == paid * AFFECTED
    call_command("check_ledgers")
