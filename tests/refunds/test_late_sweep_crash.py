"""A worker killed with SIGKILL in the middle of the late sweep (issue 8, must show): 5,000
deliveries over two hours late on the wall clock, a real Celery worker and beat as processes
(tests/processes.py) sweeping them and refunding them through the processor; the worker is
killed while refunds are being decided and made, a new one finishes the work, and every late
order has been refunded exactly once, in lojix and at the processor, and the ledgers balance.
Then the same with the processor losing its answer to a tenth of the refunds: it made them, and
the retry with the same key must find them rather than refund again."""

import datetime as dt
import time

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Count, Sum

from orders.gateway import get_gateway
from refunds.models import Refund
from refunds.tasks import auto_refund_late_orders
from tests.bulk_orders import orders_like
from tests.conftest import advance, place_order, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LATE_ORDERS = 5000
WORKER_CONCURRENCY = 2  # the Procfile's default
SWEEP = "refunds.tasks.auto_refund_late_orders"
RETRY = "refunds.tasks.retry_failed_refunds"
RELAY = "core.tasks.outbox_relay"
# The deployment's settings that make a retry come soon enough for a test: the first backoff
# after a lost answer, and how long a worker's claim on a refund outlives the worker.
FAST_RETRIES = {"LOJIX_REFUND_RETRY_FIRST_SECONDS": "1", "LOJIX_REFUND_CLAIM_LEASE_SECONDS": "5"}
STALL_SECONDS = 90


def decided() -> int:
    """Late orders the sweep has refunded (committed a refund for)."""
    return Refund.objects.count()


def made() -> int:
    """Refunds whose money the processor moved, as lojix recorded it."""
    return Refund.objects.filter(status="succeeded").count()


def wait_while_progressing(count, target: int) -> bool:
    """Wait until `count()` reaches `target`; give up (False) once it has not moved for
    STALL_SECONDS, however long the whole takes on a busy machine."""
    last, moved_at = count(), time.monotonic()
    while last < target:
        if time.monotonic() - moved_at > STALL_SECONDS:
            return False
        time.sleep(0.5)
        now = count()
        if now != last:
            last, moved_at = now, time.monotonic()
    return True


@pytest.fixture
def late_orders(buyer, restaurant):
    """5,000 delivery orders accepted and never dispatched, their estimated delivery 125
    minutes before now on the wall clock (the workers' clock is not the test's to move)."""
    minutes = restaurant.preparation_minutes + restaurant.delivery_minutes + 125
    placed_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)
    with time_machine.travel(placed_at, tick=False):
        first = advance(place_order(buyer, restaurant, {restaurant.menu.first(): 1}), "accept")
        orders = [first, *orders_like(first, LATE_ORDERS - 1)]
    assert first.estimated_delivery_at < dt.datetime.now(dt.UTC) - dt.timedelta(minutes=120)
    return orders


@pytest.mark.parametrize(
    "faults",
    [{}, {"refund": {"fault": "timeout", "one_in": 10}}],
    ids=["processor answers", "processor loses a tenth of its answers"],
)
def test_a_worker_killed_mid_sweep_leaves_every_late_order_refunded_exactly_once(
    celery_processes, late_orders, faults
):
    celery_processes.configure(LOJIX_SIMULATED_GATEWAY_FAULTS=faults, **FAST_RETRIES)
    celery_processes.start_beat()
    celery_processes.beat_every(5, SWEEP, RETRY, RELAY)
    # Batches of 50 (a tenth of the deployment's) make the sweep last long enough for the kill
    # to land in it however busy the machine is; what a kill loses is still one batch.
    celery_processes.task_kwargs(SWEEP, batch_size=50)
    celery_processes.start_worker(concurrency=WORKER_CONCURRENCY)

    assert wait_for(lambda: made() >= 1 and decided() >= LATE_ORDERS // 10, 300)
    celery_processes.kill_worker()
    assert decided() < LATE_ORDERS, "the sweep was over before the kill: kill it sooner"
    celery_processes.start_worker(concurrency=WORKER_CONCURRENCY)
    finished = wait_while_progressing(made, LATE_ORDERS)
    celery_processes.stop()

    assert finished, f"stalled at {decided()} refunds decided, {made()} made"
    assert auto_refund_late_orders()["acted_on"] == 0  # nothing left to decide
    paid = late_orders[0].amount_paid
    per_order = Refund.objects.values("order").annotate(n=Count("pk"), total=Sum("amount"))
    assert {row["order"] for row in per_order} == {order.pk for order in late_orders}
    assert {(row["n"], row["total"]) for row in per_order} == {(1, paid)}
    assert set(Refund.objects.values_list("status", "destination")) == {("succeeded", "card")}
    gateway = get_gateway()
    for refund in Refund.objects.select_related("payment").iterator(chunk_size=1000):
        at_processor = gateway.refunds_of(charge_reference=refund.payment.gateway_reference)
        assert [(r.reference, r.amount, r.status) for r in at_processor] == [
            (refund.gateway_reference, paid, "succeeded")
        ]
    call_command("check_ledgers")
    assert list(celery_processes.mail_folder.iterdir())  # buyers are being told (at least once)
    lost = set(gateway.faults_acted())
    answered_late = set(Refund.objects.filter(attempts=1).values_list("processor_key", flat=True))
    assert not Refund.objects.filter(attempts__gt=1).exists()
    assert answered_late <= lost
    if faults:
        assert 400 <= len(lost) <= 600, len(lost)
        # A lost answer that lojix did not record is a call the kill cut short (one per
        # pool process at most); the retry after the claim's lease found it just the same.
        assert len(lost - answered_late) <= WORKER_CONCURRENCY
    else:
        assert lost == set()
