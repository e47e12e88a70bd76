"""The refund service: one money movement per idempotency key, never more than was paid."""

import datetime as dt
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.errors import DomainError, InvalidInput
from credits.models import CreditGrant, CreditTransaction
from orders.gateway import SimulatedGateway, get_gateway
from orders.models import Order, Payment
from refunds.models import Refund
from refunds.services.execution import refund_execute, refund_order
from tests.concurrency import run_concurrently
from tests.conftest import give_credit, place_order, processor_refunds, refunds_processed

pytestmark = pytest.mark.django_db


def refund(order, amount, key="k1", method="original", **kwargs):
    """Start a refund, then let the worker make its card part (D-7); the refunds as they are
    then."""
    refunds = refund_order(
        order_id=order.pk,
        amount=D(amount),
        method=method,
        idempotency_key=key,
        actor=None,
        role="policy",
        reason="Test refund",
        **kwargs,
    )
    refunds_processed()
    return [Refund.objects.get(pk=r.pk) for r in refunds]


@pytest.fixture
def mixed_order(now, buyer, restaurant, menu):
    """Paid 23.99 by card and 10.00 with account credit: amount_paid 33.99."""
    give_credit(buyer, "10.00")
    return place_order(
        buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 1}, use_credit=True
    )


def test_full_refund_goes_back_where_it_came_from(mixed_order):
    refunds = refund(mixed_order, "33.99")

    assert [(r.destination, r.amount, r.status) for r in refunds] == [
        ("card", D("23.99"), "succeeded"),
        ("account_credit", D("10.00"), "succeeded"),
    ]
    card = refunds[0]
    [made] = processor_refunds()
    assert (made.reference, made.amount, made.status) == (
        card.gateway_reference,
        D("23.99"),
        "succeeded",
    )
    # L-4.2 from Friday 20 Nov 2026: processed within 3 business days (Thanksgiving, 26 Nov, is
    # a US holiday), at the bank 5-10 business days later.
    assert card.expected_processed_by == dt.date(2026, 11, 25)
    assert card.expected_in_bank_from == dt.date(2026, 12, 1)
    assert card.expected_in_bank_by == dt.date(2026, 12, 10)
    grant = CreditGrant.objects.get(refund=refunds[1])
    assert (grant.kind, grant.amount, grant.expires_at) == ("account", D("10.00"), None)


def test_partial_refund_is_split_in_proportion(mixed_order):
    refunds = refund(mixed_order, "10.00")
    # 10.00 x 23.99 / 33.99 = 7.0579... -> 7.06 to the card, the rest as account credit.
    assert [(r.destination, r.amount) for r in refunds] == [
        ("card", D("7.06")),
        ("account_credit", D("2.94")),
    ]


def test_buyer_may_take_everything_as_account_credit(mixed_order):
    refunds = refund(mixed_order, "33.99", method="account_credit")
    assert [(r.destination, r.amount) for r in refunds] == [("account_credit", D("33.99"))]
    assert processor_refunds() == []


def test_the_same_key_returns_the_same_refunds(mixed_order):
    first = refund(mixed_order, "33.99")
    again = refund(mixed_order, "33.99")
    assert [r.pk for r in again] == [r.pk for r in first]
    assert Refund.objects.count() == 2
    assert len(processor_refunds()) == 1


def test_the_same_key_with_another_amount_is_refused(mixed_order):
    refund(mixed_order, "5.00")
    with pytest.raises(InvalidInput) as refused:
        refund(mixed_order, "6.00")
    assert refused.value.code == "idempotency_key_reused"
    assert Refund.objects.count() == 2


@pytest.mark.parametrize(
    ("first", "second", "code"),
    [
        ("33.99", "0.01", "refund_exceeds_paid"),
        ("30.00", "4.00", "refund_exceeds_paid"),
        (None, "34.00", "refund_exceeds_paid"),
        (None, "0.00", "invalid_amount"),
        (None, "-1.00", "invalid_amount"),
    ],
)
def test_refunds_beyond_what_was_paid_are_refused(mixed_order, first, second, code):
    if first:
        refund(mixed_order, first, key="first")
    count_before = (Refund.objects.count(), CreditTransaction.objects.count())

    with pytest.raises(DomainError) as refused:
        refund(mixed_order, second, key="second")

    assert refused.value.code == code
    assert (Refund.objects.count(), CreditTransaction.objects.count()) == count_before


def test_card_refund_cannot_exceed_the_card_charge(mixed_order):
    with pytest.raises(DomainError) as refused:
        refund_execute(
            order_id=mixed_order.pk,
            amount=D("24.00"),
            destination="card",
            idempotency_key="card-too-much",
            actor=None,
            role="policy",
            reason="Test",
        )
    assert refused.value.code == "refund_exceeds_card"
    assert not Refund.objects.exists()


def test_promotional_credit_is_not_money_and_expires(mixed_order):
    goodwill = refund_execute(
        order_id=mixed_order.pk,
        amount=D("5.00"),
        destination="promo_credit",
        idempotency_key="goodwill",
        actor=None,
        role="support",
        reason="Sorry for the wait",
    )
    grant = goodwill.credit_grant
    assert (grant.kind, grant.amount) == ("promo", D("5.00"))
    assert grant.expires_at == goodwill.created_at + dt.timedelta(days=30)
    # Promotional credit does not count against what can still be refunded (L-7.1).
    assert [r.amount for r in refund(mixed_order, "33.99")] == [D("23.99"), D("10.00")]


def test_a_failed_card_refund_is_recorded_and_moves_nothing(mixed_order):
    outside = get_gateway().refund(
        charge_reference=mixed_order.payments.get().gateway_reference,
        amount=D("23.00"),
        currency="USD",
        idempotency_key="outside",
    )
    assert outside.succeeded
    failed = refund_execute(
        order_id=mixed_order.pk,
        amount=D("23.99"),
        destination="card",
        idempotency_key="will-fail",
        actor=None,
        role="policy",
        reason="Test",
    )
    assert refunds_processed() == {"retrying": 1}
    failed.refresh_from_db()
    assert (failed.status, failed.failure_message) == ("failed", "Refund exceeds the charge.")
    assert (failed.attempts, failed.processor_key) == (1, "will-fail:attempt-2")
    SimulatedGateway.forget(idempotency_key="outside")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_calls_with_one_key_move_money_once(buyer, restaurant, menu):
    give_credit(buyer, "10.00")
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2}, use_credit=True)

    results = run_concurrently(lambda: refund(order, str(order.amount_paid), key="once"), 20)

    assert all(isinstance(r, list) for r in results), results
    assert {tuple(x.pk for x in r) for r in results} == {
        tuple(Refund.objects.order_by("pk").values_list("pk", flat=True))
    }
    assert Refund.objects.count() == 2
    assert len(processor_refunds()) == 1
    assert CreditGrant.objects.filter(refund__isnull=False).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_with_different_keys_never_exceed_what_was_paid(buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2})  # 27.99 by card
    keys = iter(f"key-{i}" for i in range(10))

    results = run_concurrently(lambda: refund(order, "5.00", key=next(keys)), 10)

    succeeded = [r for r in results if isinstance(r, list)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert (len(succeeded), len(refused)) == (5, 5)
    assert {r.code for r in refused} == {"refund_exceeds_paid"}
    assert sum(r.amount for r in Refund.objects.all()) == D("25.00")


def test_check_ledgers_passes_on_consistent_data(mixed_order, capsys):
    refund(mixed_order, "12.00")
    call_command("check_ledgers")
    assert "Ledgers balance" in capsys.readouterr().out


@pytest.mark.parametrize(
    "corruption", ["credit balance", "refund over paid", "phantom refund", "order arithmetic"]
)
def test_check_ledgers_fails_on_a_corrupted_ledger(mixed_order, corruption):
    refunds = refund(mixed_order, "33.99")
    if corruption == "credit balance":
        CreditGrant.objects.filter(refund=refunds[1]).update(remaining=D("9.00"))
        expected = "remaining 9.00 but ledger sums to 10.00"
    elif corruption == "refund over paid":
        Refund.objects.filter(pk=refunds[0].pk).update(amount=D("30.00"))
        expected = "but paid 33.99"
    elif corruption == "phantom refund":
        SimulatedGateway.forget(idempotency_key=refunds[0].idempotency_key)
        expected = f"no processor refund {refunds[0].gateway_reference} of 23.99"
    else:
        Order.objects.filter(pk=mixed_order.pk).update(total=D("30.00"))
        expected = "total 30.00 is not lines \\+ fee - discount"

    with pytest.raises(CommandError, match=expected):
        call_command("check_ledgers")

    # Put it right so the after-test ledger check can pass.
    Refund.objects.filter(pk=refunds[0].pk).update(amount=D("23.99"))
    CreditGrant.objects.filter(refund=refunds[1]).update(remaining=D("10.00"))
    Order.objects.filter(pk=mixed_order.pk).update(total=mixed_order.total)
    if corruption == "phantom refund":
        Refund.objects.filter(pk=refunds[0].pk).update(status="failed")


# -- check_ledgers reconciles lojix's card money with the processor's records (D-5) -----------


def _outside_refund(payment):
    get_gateway().refund(
        charge_reference=payment.gateway_reference,
        amount=D("1.00"),
        currency="USD",
        idempotency_key="outside",
    )


RECONCILIATION = {
    # case: (corrupt(payment, card refund), expected report, put right(payment, card refund))
    "processor lacks the charge": (
        lambda p, r: Payment.objects.filter(pk=p.pk).update(idempotency_key="ghost"),
        r"Payment 23.99 USD succeeded \(sim_ch_\w+\) \(ghost\): the processor has nothing",
        lambda p, r: Payment.objects.filter(pk=p.pk).update(idempotency_key=p.idempotency_key),
    ),
    "another charge reference": (
        lambda p, r: Payment.objects.filter(pk=p.pk).update(gateway_reference="sim_ch_other"),
        r"\(checkout:[\w-]+\): the processor charged 23.99 as sim_ch_\w+",
        lambda p, r: Payment.objects.filter(pk=p.pk).update(gateway_reference=p.gateway_reference),
    ),
    "processor lacks the refund": (
        lambda p, r: SimulatedGateway.forget(idempotency_key=r.idempotency_key),
        r"Refund 7.06 USD to the card \(succeeded\) \(k1:card\): no processor refund "
        r"sim_re_\w+ of 7.06",
        lambda p, r: Refund.objects.filter(pk=r.pk).update(status="failed"),
    ),
    "another refund amount": (
        lambda p, r: Refund.objects.filter(pk=r.pk).update(amount=D("7.00")),
        "lojix refunded 7.00 to the card, the processor 7.06",
        lambda p, r: Refund.objects.filter(pk=r.pk).update(amount=r.amount),
    ),
    "lojix records the refund as failed": (
        lambda p, r: Refund.objects.filter(pk=r.pk).update(status="failed"),
        r"the processor refunded 7.06 \(sim_re_\w+, key k1:card\) that lojix does not record",
        lambda p, r: Refund.objects.filter(pk=r.pk).update(status="succeeded"),
    ),
    "a refund lojix never made": (
        lambda p, r: _outside_refund(p),
        r"the processor refunded 1.00 \(sim_re_\w+, key outside\) that lojix does not record",
        lambda p, r: SimulatedGateway.forget(idempotency_key="outside"),
    ),
}


@pytest.mark.parametrize("case", RECONCILIATION)
def test_check_ledgers_fails_when_lojix_and_the_processor_disagree(mixed_order, case):
    corrupt, expected, put_right = RECONCILIATION[case]
    card, _ = refund(mixed_order, "10.00")  # 7.06 to the card
    payment = mixed_order.payments.get()
    call_command("check_ledgers")

    corrupt(payment, card)

    with pytest.raises(CommandError, match=expected):
        call_command("check_ledgers")
    put_right(payment, card)


def test_check_ledgers_fails_when_the_processor_voided_a_paid_charge(mixed_order):
    payment = mixed_order.payments.get()
    get_gateway().void(charge_reference=payment.gateway_reference, idempotency_key="void")

    with pytest.raises(CommandError, match=r"\(checkout:[\w-]+\): the processor has charge voided"):
        call_command("check_ledgers")
    # Put it right: a payment made through another processor is not asked about here.
    Payment.objects.filter(pk=payment.pk).update(gateway="retired")
