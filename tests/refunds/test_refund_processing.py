"""Card refunds through the processor (D-7): committed pending, made outside transactions,
retried by key, handed to support after `refund_max_attempts`, and truthful to the buyer."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from core.errors import DomainError
from core.ledgers import ledger_violations
from core.models import Notification
from disputes.models import Intervention
from refunds.models import Refund, RestaurantLedgerEntry
from refunds.services.decisions import refund_request_offer_credit
from refunds.services.execution import refund_order
from refunds.services.processing import (
    refund_pay_as_account_credit,
    refund_process,
    refund_retry_by_support,
)
from refunds.services.requests import refund_request_submit
from tests.concurrency import run_concurrently
from tests.conftest import advance, place_order, processor_refunds, refunds_processed

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(buyer, restaurant, menu):
    return place_order(buyer, restaurant, {menu["Margherita"]: 1})


def start_refund(order, amount=None):
    [refund] = refund_order(
        order_id=order.pk,
        amount=amount or order.amount_paid,
        method="original",
        idempotency_key="r1",
        actor=None,
        role="policy",
        reason="Test refund",
    )
    return refund


def later(minutes):
    return time_machine.travel(timezone.now() + dt.timedelta(minutes=minutes))


def test_a_card_refund_is_committed_pending_and_says_it_is_on_its_way(order):
    refund = start_refund(order)

    assert (refund.status, refund.attempts, refund.processor_key) == ("pending", 0, "r1:card")
    assert processor_refunds() == []
    [event] = order.events.filter(name="refund_pending")
    assert "is on its way" in event.message
    assert "sent" not in event.message


def test_the_worker_makes_it_once_and_tells_the_buyer(order, buyer):
    refund = start_refund(order)

    assert refunds_processed() == {"succeeded": 1}
    assert refunds_processed() == {}
    refund.refresh_from_db()
    assert (refund.status, refund.next_attempt_at) == ("succeeded", None)
    [made] = processor_refunds()
    assert (made.reference, made.amount) == (refund.gateway_reference, order.amount_paid)
    assert "sent to your card" in Notification.objects.get(user=buyer).body


def test_a_decline_is_retried_as_a_new_attempt_with_a_key_of_its_own(order, settings):
    refund = start_refund(order)
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": "decline"}

    assert refunds_processed() == {"retrying": 1}
    refund.refresh_from_db()
    assert (refund.status, refund.attempts, refund.processor_key) == (
        "failed",
        1,
        "r1:card:attempt-2",
    )
    assert refund.next_attempt_at > timezone.now()
    assert refunds_processed() == {}  # not due before its backoff

    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}
    with later(2):
        assert refunds_processed() == {"succeeded": 1}
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert [(r.idempotency_key, r.status) for r in processor_refunds()] == [
        ("r1:card", "declined"),
        ("r1:card:attempt-2", "succeeded"),
    ]


@pytest.mark.parametrize("fault", ["timeout", "error"])
def test_an_unknown_outcome_is_retried_with_the_same_key_and_moves_money_once(
    order, settings, fault
):
    refund = start_refund(order)
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": fault}
    assert refunds_processed() == {"retrying": 1}
    refund.refresh_from_db()
    assert (refund.status, refund.processor_key) == ("failed", "r1:card")

    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}
    with later(2):
        assert refunds_processed() == {"succeeded": 1}
    made = processor_refunds()
    assert [(r.idempotency_key, r.status, r.amount) for r in made] == [
        ("r1:card", "succeeded", order.amount_paid)
    ]
    refund.refresh_from_db()
    assert refund.gateway_reference == made[0].reference


def test_the_ledgers_balance_while_a_refund_whose_answer_was_lost_waits_for_its_retry(
    order, settings
):
    """Found by the ledger state machine (tests/core/test_ledger_state_machine.py): the
    processor made the refund but its answer was lost, so lojix retries with the same key; until
    then `check_ledgers` must not call the processor's refund one lojix does not know."""
    refund = start_refund(order)
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": "timeout"}
    assert refunds_processed() == {"retrying": 1}
    [made] = processor_refunds()
    assert (made.idempotency_key, made.status) == ("r1:card", "succeeded")

    assert ledger_violations() == []

    # Had lojix moved on to another key, or paid it some other way, the refund is unknown again.
    Refund.objects.filter(pk=refund.pk).update(processor_key="r1:card:attempt-2")
    assert ledger_violations() == [
        f"Payment {made.amount} USD succeeded ({made.charge_reference}): the processor refunded "
        f"{made.amount} ({made.reference}, key r1:card) that lojix does not record as a "
        "succeeded refund",
        f"Payment {made.amount} USD succeeded ({made.charge_reference}): lojix refunded 0.00 to "
        f"the card, the processor {made.amount}",
    ]
    Refund.objects.filter(pk=refund.pk).update(processor_key="r1:card")
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}
    with later(2):
        assert refunds_processed() == {"succeeded": 1}


def test_the_backoff_doubles_from_the_first_delay_up_to_the_longest_of_the_settings(
    order, settings
):
    settings.LOJIX_REFUND_RETRY_FIRST_SECONDS = 2
    settings.LOJIX_REFUND_RETRY_LONGEST_SECONDS = 5
    refund = start_refund(order)
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": "error"}
    waits, start = [], timezone.now()
    for attempt in range(1, 4):
        with time_machine.travel(start + dt.timedelta(minutes=attempt), tick=False):
            assert refund_process(refund_id=refund.pk) == "retrying"
            refund.refresh_from_db()
            waits.append((refund.next_attempt_at - timezone.now()).total_seconds())

    assert waits == [2, 4, 5]


def test_a_refund_that_keeps_failing_goes_to_support_once(order, buyer, settings):
    refund = start_refund(order)
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": "decline"}
    outcomes = []
    for minutes in [0, 2, 5, 10, 20, 40]:
        with later(minutes):
            outcomes.append(refunds_processed())

    assert outcomes == [{"retrying": 1}] * 4 + [{"given_up": 1}, {}]
    refund.refresh_from_db()
    assert (refund.status, refund.attempts, refund.next_attempt_at) == ("failed", 5, None)
    [case] = Intervention.objects.filter(kind="refund_failed")
    assert (case.order, case.status) == (order, "open")
    assert "support team is on it" in Notification.objects.filter(user=buyer).first().body


def test_support_retries_a_given_up_refund_and_the_case_closes(order, agent, settings):
    refund = start_refund(order)
    Refund.objects.filter(pk=refund.pk).update(attempts=4)
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": "decline"}
    assert refunds_processed() == {"given_up": 1}
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}

    refund_retry_by_support(refund_id=refund.pk, actor=agent)
    assert refunds_processed() == {"succeeded": 1}

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    case = Intervention.objects.get(kind="refund_failed")
    assert (case.status, case.action_taken) == ("resolved", "The refund went through.")


def test_support_pays_a_given_up_refund_as_account_credit(order, agent, buyer, settings):
    refund = start_refund(order)
    Refund.objects.filter(pk=refund.pk).update(attempts=4)
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": "decline"}
    assert refunds_processed() == {"given_up": 1}

    credit = refund_pay_as_account_credit(refund_id=refund.pk, actor=agent)

    refund.refresh_from_db()
    assert refund.replaced_by == credit
    assert (credit.destination, credit.amount, credit.status) == (
        "account_credit",
        order.amount_paid,
        "succeeded",
    )
    assert buyer.credit_grants.get().remaining == order.amount_paid
    assert Intervention.objects.get(kind="refund_failed").status == "resolved"
    assert [r.status for r in processor_refunds()] == ["declined"]


def test_paying_as_credit_finds_a_refund_the_processor_made_after_all(order, agent, settings):
    refund = start_refund(order)
    Refund.objects.filter(pk=refund.pk).update(attempts=4)
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": "timeout"}  # made, answer lost
    assert refunds_processed() == {"given_up": 1}
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}

    with pytest.raises(DomainError) as refused:
        refund_pay_as_account_credit(refund_id=refund.pk, actor=agent)

    assert refused.value.code == "refund_made_after_all"
    refund.refresh_from_db()
    assert (refund.status, refund.replaced_by) == ("succeeded", None)
    assert Refund.objects.count() == 1


def test_support_actions_need_a_given_up_refund_and_support(order, agent, buyer):
    refund = start_refund(order)
    with pytest.raises(DomainError) as not_given_up:
        refund_retry_by_support(refund_id=refund.pk, actor=agent)
    with pytest.raises(DomainError) as not_support:
        refund_retry_by_support(refund_id=refund.pk, actor=buyer)
    assert (not_given_up.value.code, not_support.value.code) == ("refund_not_given_up", "not_found")


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_move_the_money_once(buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 1})
    with override_settings(LOJIX_SIMULATED_GATEWAY_FAULTS={"refund": "error"}):
        refund = start_refund(order)  # committed: its first try ran and did nothing
    refund.refresh_from_db()
    assert (refund.status, refund.attempts) == ("failed", 1)

    with later(2):
        outcomes = run_concurrently(lambda: refund_process(refund_id=refund.pk), 6)

    assert sorted(outcomes).count("succeeded") == 1
    assert len(processor_refunds()) == 1
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert refund.amount == D(order.amount_paid)


# -- admin: support's two ways out of a given-up refund (K-OV) ---------------------------------


@pytest.fixture
def given_up(order, settings):
    refund = start_refund(order)
    Refund.objects.filter(pk=refund.pk).update(attempts=4)
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": "decline"}
    assert refunds_processed() == {"given_up": 1}
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}
    return refund


@pytest.mark.parametrize(
    ("action", "status", "replaced"),
    [("retry_refunds", "succeeded", False), ("pay_refunds_as_account_credit", "failed", True)],
)
def test_an_agent_resolves_a_given_up_refund_from_admin(
    client, agent, given_up, action, status, replaced
):
    client.force_login(agent)
    response = client.post(
        reverse("admin:refunds_refund_changelist"),
        {"action": action, "_selected_action": [given_up.pk]},
        follow=True,
    )
    refunds_processed()

    assert response.status_code == 200
    given_up.refresh_from_db()
    assert (given_up.status, given_up.replaced_by_id is not None) == (status, replaced)
    assert Intervention.objects.get(kind="refund_failed").status == "resolved"


def test_a_buyer_cannot_reach_the_refund_actions(client, buyer, given_up):
    client.force_login(buyer)
    response = client.post(
        reverse("admin:refunds_refund_changelist"),
        {"action": "retry_refunds", "_selected_action": [given_up.pk]},
    )
    assert response.status_code == 302  # to the admin login
    given_up.refresh_from_db()
    assert (given_up.status, given_up.next_attempt_at) == ("failed", None)


def test_promotional_credit_is_not_deducted_from_the_restaurant(buyer, restaurant, menu, agent):
    order = advance(
        place_order(buyer, restaurant, {menu["Margherita"]: 1}),
        "accept",
        "start_preparation",
        "mark_ready",
        "dispatch",
        "deliver",
    )
    tiramisu_missing = refund_request_submit(
        order_id=order.pk,
        actor=buyer,
        reason="missing_items",
        items=[(order.items.get().pk, 1)],
        description="Not in the bag.",
    )
    refund_request_offer_credit(
        request_id=tiramisu_missing.pk,
        actor=agent,
        amount=D("5.00"),
        explanation="Have some credit on us instead.",
    )

    tiramisu_missing.refresh_from_db()
    assert tiramisu_missing.status == "refunded"
    assert not RestaurantLedgerEntry.objects.filter(kind="refund_deduction").exists()
