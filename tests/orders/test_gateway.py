"""The simulated processor (D-5 `Payment`): its own store outside lojix's transactions, dedup by
idempotency key, the faults of `LOJIX_SIMULATED_GATEWAY_FAULTS`, and the over-refund refusal."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from orders.gateway import GatewayOutcome, GatewayResult, SimulatedGateway, get_gateway
from orders.models import Order, Payment
from tests.concurrency import run_concurrently
from tests.conftest import NOW, place_order, processor_charges, processor_refunds

UNKNOWN = GatewayOutcome.UNKNOWN


@pytest.fixture
def gateway():
    return get_gateway()


def charge(gateway, key="ch-1", amount="27.99", currency="USD") -> GatewayResult:
    return gateway.charge(
        amount=D(amount), currency=currency, idempotency_key=key, description="lojix order 1"
    )


def refund(gateway, charge_reference, key="re-1", amount="5.00") -> GatewayResult:
    return gateway.refund(
        charge_reference=charge_reference, amount=D(amount), currency="USD", idempotency_key=key
    )


def test_the_configured_gateway_is_the_simulated_processor(gateway):
    assert isinstance(gateway, SimulatedGateway)
    assert gateway.name == "simulated"


def test_a_charge_is_recorded_in_the_processor(gateway):
    with time_machine.travel(NOW, tick=False):
        result = charge(gateway)

    assert (result.outcome, result.succeeded, result.message) == ("succeeded", True, "")
    record = gateway.find(idempotency_key="ch-1")
    assert (record.kind, record.reference, record.amount, record.currency, record.status) == (
        "charge", result.reference, D("27.99"), "USD", "succeeded",
    )  # fmt: skip
    assert (record.charge_reference, record.created_at) == ("", NOW)
    assert gateway.find(idempotency_key="never-used") is None


def test_the_same_key_returns_the_first_result_and_moves_money_once(gateway):
    first = charge(gateway)
    again = charge(gateway)
    assert again == first
    assert len(processor_charges()) == 1

    refunded = refund(gateway, first.reference)
    assert refund(gateway, first.reference) == refunded
    assert [(r.reference, r.amount) for r in processor_refunds()] == [
        (refunded.reference, D("5.00"))
    ]


def test_a_key_reused_for_another_amount_is_declined_and_stores_nothing(gateway):
    first = charge(gateway, amount="27.99")

    other = charge(gateway, amount="30.00")

    assert (other.outcome, other.reference) == ("declined", "")
    assert other.message == "The idempotency key was already used for a different request."
    assert [(c.reference, c.amount) for c in processor_charges()] == [(first.reference, D("27.99"))]


@pytest.mark.parametrize("amount", ["0.00", "-1.00", "1.005"])
def test_an_invalid_amount_is_declined(gateway, amount):
    result = charge(gateway, amount=amount)
    assert (result.outcome, result.message) == ("declined", "Invalid amount.")


# -- faults, read at each call -----------------------------------------------------------------


def test_a_declined_charge_is_replayed_for_its_key_and_a_new_key_succeeds(settings, gateway):
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"charge": "decline"}
    declined = charge(gateway, key="first")
    assert (declined.outcome, declined.message) == ("declined", "Card declined.")
    assert gateway.find(idempotency_key="first").status == "declined"

    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}
    assert charge(gateway, key="first") == declined
    assert charge(gateway, key="second").succeeded
    assert [c.status for c in processor_charges()] == ["declined", "succeeded"]


def test_an_error_does_nothing_and_the_retry_with_the_same_key_charges_once(settings, gateway):
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"charge": "error"}
    failed = charge(gateway)
    assert (failed.outcome, failed.reference) == (UNKNOWN, "")
    assert failed.message == "Processor error (simulated): nothing was done."
    assert gateway.find(idempotency_key="ch-1") is None

    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}
    retried = charge(gateway)
    assert retried.succeeded
    assert [c.reference for c in processor_charges()] == [retried.reference]


def test_a_timeout_charges_then_loses_the_answer_and_the_retry_finds_it(settings, gateway):
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"charge": "timeout"}
    lost = charge(gateway)
    assert (lost.outcome, lost.reference) == (UNKNOWN, "")
    assert lost.message == "The processor did not answer (simulated timeout)."
    made = gateway.find(idempotency_key="ch-1")
    assert (made.status, made.amount) == ("succeeded", D("27.99"))

    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}
    retried = charge(gateway)
    assert (retried.outcome, retried.reference) == ("succeeded", made.reference)
    assert len(processor_charges()) == 1


def test_refund_faults(settings, gateway):
    paid = charge(gateway)
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"charge": "decline", "refund": "error"}
    assert refund(gateway, paid.reference, key="a").outcome == UNKNOWN
    assert gateway.find(idempotency_key="a") is None

    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": "timeout"}
    assert refund(gateway, paid.reference, key="b").outcome == UNKNOWN
    assert gateway.find(idempotency_key="b").status == "succeeded"

    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": "decline"}
    declined = refund(gateway, paid.reference, key="c")
    assert (declined.outcome, declined.message) == ("declined", "Refund declined.")

    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}
    assert refund(gateway, paid.reference, key="a").succeeded
    assert (
        refund(gateway, paid.reference, key="b").reference
        == gateway.find(idempotency_key="b").reference
    )
    assert refund(gateway, paid.reference, key="c") == declined
    made = processor_refunds()
    assert [(r.idempotency_key, r.status) for r in made] == [
        ("b", "succeeded"), ("c", "declined"), ("a", "succeeded"),
    ]  # fmt: skip


def test_a_timeout_on_one_key_in_four_loses_each_chosen_answer_once(settings, gateway):
    paid = charge(gateway, amount="100.00")
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": {"fault": "timeout", "one_in": 4}}
    keys = [f"re-{n}" for n in range(40)]

    first = {key: refund(gateway, paid.reference, key=key, amount="1.00") for key in keys}
    again = {key: refund(gateway, paid.reference, key=key, amount="1.00") for key in keys}

    lost = [key for key, result in first.items() if result.outcome == UNKNOWN]
    assert len(lost) == 11
    assert gateway.faults_acted() == dict.fromkeys(lost, "timeout")
    assert all(first[key].succeeded for key in keys if key not in lost)
    made = {r.idempotency_key: r for r in processor_refunds()}
    assert sorted(made) == sorted(keys)
    assert {r.status for r in made.values()} == {"succeeded"}
    assert all(again[key].reference == made[key].reference for key in keys)

    SimulatedGateway.reset()  # the same keys are chosen on every run
    paid = charge(gateway, amount="100.00")
    chosen = [
        k for k in keys if not refund(gateway, paid.reference, key=k, amount="1.00").reference
    ]
    assert chosen == lost


def test_an_error_on_a_chosen_key_does_nothing_once_and_the_retry_makes_it(settings, gateway):
    paid = charge(gateway)
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": {"fault": "error", "one_in": 1}}

    failed = refund(gateway, paid.reference, key="a")
    assert (failed.outcome, gateway.find(idempotency_key="a")) == (UNKNOWN, None)
    retried = refund(gateway, paid.reference, key="a")

    assert retried.succeeded
    assert [r.reference for r in processor_refunds()] == [retried.reference]
    assert gateway.faults_acted() == {"a": "error"}


@pytest.mark.parametrize(
    "faults",
    [
        {"charge": "explode"},
        ["charge"],
        {"charge": {"fault": "timeout"}},
        {"charge": {"fault": "timeout", "one_in": 0}},
        {"charge": {"fault": "timeout", "one_in": "10"}},
        {"charge": {"fault": "explode", "one_in": 10}},
    ],
    ids=["unknown fault", "not a dict", "no one_in", "one_in 0", "one_in text", "unknown, one in"],
)
def test_a_misconfigured_fault_is_a_configuration_error(settings, gateway, faults):
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = faults
    with pytest.raises(ImproperlyConfigured):
        charge(gateway)


# -- refunds never exceed the charge -----------------------------------------------------------


def test_a_refund_over_the_charge_is_declined(gateway):
    paid = charge(gateway, amount="27.99")
    assert refund(gateway, paid.reference, key="a", amount="20.00").succeeded

    over = refund(gateway, paid.reference, key="b", amount="8.00")

    assert (over.outcome, over.message) == ("declined", "Refund exceeds the charge.")
    assert refund(gateway, paid.reference, key="c", amount="7.99").succeeded
    assert [(r.amount, r.status) for r in gateway.refunds_of(charge_reference=paid.reference)] == [
        (D("20.00"), "succeeded"), (D("8.00"), "declined"), (D("7.99"), "succeeded"),
    ]  # fmt: skip


def test_a_refund_of_an_unknown_or_declined_charge_is_declined(settings, gateway):
    assert refund(gateway, "sim_ch_nothing").message == "No such charge."
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"charge": "decline"}
    declined = charge(gateway)
    assert refund(gateway, declined.reference, key="re-2").message == "The charge did not succeed."


def test_ten_concurrent_refunds_with_different_keys_never_exceed_the_charge(gateway):
    paid = charge(gateway, amount="10.00")
    keys = iter(f"key-{i}" for i in range(10))

    results = run_concurrently(lambda: refund(gateway, paid.reference, next(keys), "3.00"), 10)

    assert sorted(r.outcome for r in results) == ["declined"] * 7 + ["succeeded"] * 3
    assert {r.message for r in results if not r.succeeded} == {"Refund exceeds the charge."}
    made = gateway.refunds_of(charge_reference=paid.reference)
    assert sum(r.amount for r in made if r.status == "succeeded") == D("9.00")


# -- outside lojix's transactions ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_lojix_transaction_leaves_the_charge_in_the_processor(buyer, restaurant):
    placed = []

    def place_then_fail():
        with transaction.atomic():
            placed.append(place_order(buyer, restaurant, checkout_key="rolled-back"))
            raise RuntimeError("something after the charge failed")

    with pytest.raises(RuntimeError):
        place_then_fail()

    assert (Order.objects.count(), Payment.objects.count()) == (0, 0)
    orphan = get_gateway().find(idempotency_key="rolled-back")
    assert (orphan.kind, orphan.status, orphan.amount) == ("charge", "succeeded", placed[0].total)


def test_reset_wipes_the_store(gateway):
    charge(gateway)
    SimulatedGateway.reset()
    assert gateway.find(idempotency_key="ch-1") is None


# -- void: cancel an orphan charge in full -----------------------------------------------------


def test_void_cancels_a_charge_in_full(gateway):
    paid = charge(gateway)

    voided = gateway.void(charge_reference=paid.reference, idempotency_key="void-1")

    assert voided.succeeded
    assert gateway.find(idempotency_key="ch-1").status == "voided"
    record = gateway.find(idempotency_key="void-1")
    assert (record.kind, record.amount, record.charge_reference) == (
        "void", D("27.99"), paid.reference,
    )  # fmt: skip
    assert gateway.void(charge_reference=paid.reference, idempotency_key="void-1") == voided
    again = gateway.void(charge_reference=paid.reference, idempotency_key="void-2")
    assert (again.outcome, again.message) == ("declined", "The charge was voided.")
    after = refund(gateway, paid.reference)
    assert (after.outcome, after.message) == ("declined", "The charge was voided.")


def test_void_is_refused_once_anything_was_refunded(gateway):
    paid = charge(gateway)
    refund(gateway, paid.reference, amount="1.00")

    refused = gateway.void(charge_reference=paid.reference, idempotency_key="void-1")

    assert (refused.outcome, refused.message) == (
        "declined", "The charge has refunds and cannot be voided.",
    )  # fmt: skip
    assert gateway.find(idempotency_key="ch-1").status == "succeeded"


# -- reconciliation reads ----------------------------------------------------------------------


def test_charges_between_lists_the_charges_of_a_window_oldest_first(gateway):
    for key, hours in [("before", -2), ("start", 0), ("inside", 1), ("end", 3)]:
        with time_machine.travel(NOW + dt.timedelta(hours=hours), tick=False):
            charge(gateway, key=key)
    paid = gateway.find(idempotency_key="inside")
    refund(gateway, paid.reference)  # a refund is not a charge

    window = gateway.charges_between(start=NOW, end=NOW + dt.timedelta(hours=3))

    assert [(c.idempotency_key, c.kind) for c in window] == [
        ("start", "charge"), ("inside", "charge"),
    ]  # fmt: skip
    assert window[1].created_at == NOW + dt.timedelta(hours=1)
