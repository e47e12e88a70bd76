"""Escalations through the services on PostgreSQL (L-8.1, K-DR): who may open one, once; the
due date in business days; supervisors decide; an overturn moves exactly the difference once,
also when two supervisors decide at the same moment; the beat task flags and tells."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile

from core.errors import DomainError
from core.models import Notification, TaskRun
from disputes.models import Escalation, EscalationEvidence
from disputes.services.escalations import (
    escalation_decide,
    escalation_open,
    escalation_open_for_order,
    escalation_take,
)
from disputes.tasks import escalation_due_dates
from orders.models import OrderEvent
from refunds.models import Refund, RefundRequest, RefundRequestEvent, RestaurantLedgerEntry
from tests.concurrency import run_concurrently
from tests.conftest import NOW, processor_refunds, refunds_processed
from tests.disputes.escalation_setup import (
    approved_request,
    cancellation_denied_order,
    cancellation_fee_order,
    denied_request,
    partially_approved_request,
    photo,
    tiramisu_claim,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
STATEMENT = "The tiramisu was not in the bag; here is a photo of what came."


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def denied(clock, buyer, restaurant, menu, agent):
    return denied_request(buyer, restaurant, menu, agent)


def refused(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


def nothing_escalated():
    assert Escalation.objects.count() == 0
    assert EscalationEvidence.objects.count() == 0


# -- opening ----------------------------------------------------------------------------------


def test_a_denied_request_is_escalated_with_photos_due_in_five_business_days(
    denied, buyer, supervisor
):
    escalation = escalation_open(
        request_id=denied.pk, actor=buyer, statement=f"  {STATEMENT} ", photos=[photo()]
    )

    escalation.refresh_from_db()
    assert escalation.status == Escalation.Status.OPEN
    assert escalation.statement == STATEMENT
    assert (escalation.subject, escalation.order_id) == ("refund_decision", denied.order_id)
    # Fri 20 Nov 2026 noon: Mon 23, Tue 24, Wed 25, (Thanksgiving), Fri 27, Mon 30.
    assert escalation.due_at == dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    assert escalation.due_soon_at == dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    assert escalation.previous_amount == D("0.00")
    (evidence,) = escalation.evidence.all()
    assert (evidence.content_type, evidence.width, evidence.uploaded_by) == ("image/jpeg", 8, buyer)
    event = RefundRequestEvent.objects.get(request=denied, name="escalation_opened")
    assert event.clauses == ["L-8.1"]
    assert "Mon 30 Nov 2026" in event.message
    told = Notification.objects.get(user=buyer, title__startswith=f"Escalation #{escalation.pk}")
    assert "Mon 30 Nov 2026" in told.title
    assert Notification.objects.filter(user=supervisor).count() == 1
    assert OrderEvent.objects.filter(order=denied.order, name="escalation_opened").count() == 1


def test_a_partially_approved_request_is_escalated_with_what_it_gave(
    clock, buyer, restaurant, menu, agent
):
    request = partially_approved_request(buyer, restaurant, menu, agent, amount=D("4.00"))
    refunds_processed()
    request.refresh_from_db()
    assert request.status == RefundRequest.Status.REFUNDED

    escalation = escalation_open(request_id=request.pk, actor=buyer, statement=STATEMENT)

    assert escalation.previous_amount == D("4.00")


def test_an_approved_request_cannot_be_escalated(clock, buyer, restaurant, menu, agent):
    request = approved_request(buyer, restaurant, menu, agent)

    error = refused(lambda: escalation_open(request_id=request.pk, actor=buyer, statement="x"))

    assert (error.code, error.kind, error.clauses) == ("not_escalatable", "conflict", ("L-8.1",))
    nothing_escalated()


def test_an_undecided_request_cannot_be_escalated(clock, buyer, restaurant, menu):
    request = tiramisu_claim(buyer, restaurant, menu)

    error = refused(lambda: escalation_open(request_id=request.pk, actor=buyer, statement="x"))

    assert (error.code, error.clauses) == ("not_escalatable", ("L-8.1",))
    nothing_escalated()


def test_a_second_escalation_is_refused(denied, buyer):
    first = escalation_open(request_id=denied.pk, actor=buyer, statement=STATEMENT)

    error = refused(
        lambda: escalation_open(request_id=denied.pk, actor=buyer, statement="Again, please.")
    )

    assert (error.code, error.clauses) == ("already_escalated", ("L-8.1",))
    assert list(Escalation.objects.all()) == [first]


def test_another_buyer_gets_not_found(denied, other_buyer):
    error = refused(
        lambda: escalation_open(request_id=denied.pk, actor=other_buyer, statement=STATEMENT)
    )

    assert (error.code, error.kind) == ("not_found", "not_found")
    nothing_escalated()


@pytest.mark.parametrize(
    ("case", "statement", "photos", "code"),
    [
        ("no statement", "   ", [], "statement_required"),
        ("a statement too long", "x" * 4001, [], "statement_too_long"),
        (
            "a file that is not an image",
            STATEMENT,
            [SimpleUploadedFile("a.png", b"not a png", content_type="image/png")],
            "not_an_image",
        ),
        ("six photos", STATEMENT, [photo() for _ in range(6)], "too_many_photos"),
    ],
)
def test_bad_input_stores_nothing(denied, buyer, case, statement, photos, code):
    error = refused(
        lambda: escalation_open(
            request_id=denied.pk, actor=buyer, statement=statement, photos=photos
        )
    )

    assert (error.code, error.kind) == (code, "invalid")
    nothing_escalated()


# -- deciding -----------------------------------------------------------------------------------


@pytest.fixture
def escalation(denied, buyer):
    return escalation_open(request_id=denied.pk, actor=buyer, statement=STATEMENT)


def test_an_agent_cannot_decide(escalation, agent):
    for call in (
        lambda: escalation_take(escalation_id=escalation.pk, actor=agent),
        lambda: escalation_decide(
            escalation_id=escalation.pk, actor=agent, outcome="overturned", explanation="Yes."
        ),
    ):
        error = refused(call)
        assert (error.code, error.clauses) == ("supervisor_required", ("L-8.1",))

    escalation.refresh_from_db()
    assert escalation.status == Escalation.Status.OPEN
    assert Refund.objects.count() == 0


def test_upheld_moves_no_money_and_is_final(escalation, supervisor, buyer):
    escalation_take(escalation_id=escalation.pk, actor=supervisor)

    decided = escalation_decide(
        escalation_id=escalation.pk,
        actor=supervisor,
        outcome="upheld",
        explanation="The photo shows the tiramisu packed.",
    )

    assert (decided.status, decided.decided_by, decided.amount) == ("upheld", supervisor, None)
    assert decided.decided_at == NOW
    assert Refund.objects.count() == 0
    mail = Notification.objects.get(user=buyer, title__contains="final decision")
    assert "This decision is final (L-8.1)." in mail.body
    assert mail.email is True
    again = refused(
        lambda: escalation_decide(
            escalation_id=escalation.pk, actor=supervisor, outcome="overturned", explanation="No."
        )
    )
    assert again.code == "escalation_decided"
    assert Refund.objects.count() == 0


def test_overturned_refunds_the_difference_once_to_the_card(escalation, supervisor, buyer):
    decided = escalation_decide(
        escalation_id=escalation.pk,
        actor=supervisor,
        outcome="overturned",
        explanation="The driver confirms the bag was short.",
        amount=D("6.00"),
    )

    (refund,) = Refund.objects.all()
    assert (refund.amount, refund.destination, refund.idempotency_key) == (
        D("6.00"),
        "card",
        f"escalation:{decided.pk}:card",
    )
    assert refund.request_id == escalation.refund_request_id
    refunds_processed()
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert [r.amount for r in processor_refunds()] == [D("6.00")]
    # L-9: the restaurant caused it (missing items): deducted once the money moved.
    deduction = RestaurantLedgerEntry.objects.get(refund=refund)
    assert deduction.amount == D("-6.00")
    escalation.refund_request.refresh_from_db()
    assert escalation.refund_request.status == RefundRequest.Status.DENIED
    timeline = RefundRequestEvent.objects.filter(request=escalation.refund_request)
    assert timeline.filter(name="escalation_overturned").count() == 1
    mail = Notification.objects.get(user=buyer, title__contains="final decision (overturned)")
    assert "new total refund is 6.00" in mail.body


def test_overturn_without_an_amount_gives_everything_refundable(escalation, supervisor):
    escalation_decide(
        escalation_id=escalation.pk,
        actor=supervisor,
        outcome="overturned",
        explanation="Sorry, the bag was short.",
    )

    assert [r.amount for r in Refund.objects.all()] == [D("33.99")]


def test_overturn_of_a_partial_approval_moves_only_the_difference(
    clock, buyer, restaurant, menu, agent, supervisor
):
    request = partially_approved_request(buyer, restaurant, menu, agent, amount=D("4.00"))
    escalation = escalation_open(request_id=request.pk, actor=buyer, statement=STATEMENT)

    escalation_decide(
        escalation_id=escalation.pk,
        actor=supervisor,
        outcome="overturned",
        explanation="The whole tiramisu.",
        amount=D("6.00"),
    )
    refunds_processed()

    assert sorted(r.amount for r in Refund.objects.filter(status="succeeded")) == [
        D("2.00"),
        D("4.00"),
    ]
    request.refresh_from_db()
    assert request.status == RefundRequest.Status.REFUNDED


@pytest.mark.parametrize(
    ("case", "amount"), [("no more than before", D("0.00")), ("over what was paid", D("34.00"))]
)
def test_an_overturn_amount_out_of_bounds_is_refused(escalation, supervisor, case, amount):
    error = refused(
        lambda: escalation_decide(
            escalation_id=escalation.pk,
            actor=supervisor,
            outcome="overturned",
            explanation="The bag was short.",
            amount=amount,
        )
    )

    assert (error.code, error.kind) == ("invalid_amount", "invalid")
    escalation.refresh_from_db()
    assert escalation.status == Escalation.Status.OPEN
    assert Refund.objects.count() == 0


def test_a_decision_needs_an_explanation(escalation, supervisor):
    error = refused(
        lambda: escalation_decide(
            escalation_id=escalation.pk, actor=supervisor, outcome="upheld", explanation=" "
        )
    )

    assert error.code == "explanation_required"
    assert Escalation.objects.get().status == Escalation.Status.OPEN


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_supervisors_overturning_at_once_refund_the_difference_once(
    buyer, restaurant, menu, agent, supervisor
):
    other = UserFactory(username="boss2", is_staff=True, groups=["supervisor"])
    request = denied_request(buyer, restaurant, menu, agent)
    escalation = escalation_open(request_id=request.pk, actor=buyer, statement=STATEMENT)
    deciders = iter([supervisor, other])

    def decide():
        return escalation_decide(
            escalation_id=escalation.pk,
            actor=next(deciders),
            outcome="overturned",
            explanation="The bag was short.",
            amount=D("6.00"),
        )

    results = run_concurrently(decide, 2)

    decided = [r for r in results if isinstance(r, Escalation)]
    errors = [r for r in results if isinstance(r, DomainError)]
    assert len(decided) == 1
    assert [e.code for e in errors] == ["escalation_decided"]
    refunds_processed()
    assert [(r.amount, r.status) for r in Refund.objects.all()] == [(D("6.00"), "succeeded")]
    assert [r.amount for r in processor_refunds()] == [D("6.00")]


# -- K-DR: the restaurant's answer to a cancellation request ------------------------------------


def test_a_denied_cancellation_request_is_contested_and_overturned(
    clock, buyer, restaurant, partner, supervisor
):
    order = cancellation_denied_order(buyer, restaurant, partner)
    escalation = escalation_open_for_order(
        order_id=order.pk, actor=buyer, subject="cancellation_denied", statement=STATEMENT
    )
    assert (escalation.refund_request, escalation.previous_amount) == (None, D("0.00"))

    escalation_decide(
        escalation_id=escalation.pk,
        actor=supervisor,
        outcome="overturned",
        explanation="You asked within the window.",
        amount=D("5.00"),
    )
    refunds_processed()

    (refund,) = Refund.objects.all()
    assert (refund.amount, refund.status, refund.clauses) == (
        D("5.00"),
        "succeeded",
        ["K-DR", "L-8.1"],
    )
    second = refused(
        lambda: escalation_open_for_order(
            order_id=order.pk, actor=buyer, subject="cancellation_denied", statement=STATEMENT
        )
    )
    assert second.code == "already_escalated"


def test_a_kept_fee_is_contested_and_given_back(clock, buyer, restaurant, partner, supervisor):
    order = cancellation_fee_order(buyer, restaurant, partner)
    refunds_processed()
    fee = order.cancellation_fee
    assert fee > 0
    escalation = escalation_open_for_order(
        order_id=order.pk, actor=buyer, subject="cancellation_fee", statement=STATEMENT
    )
    assert escalation.previous_amount == order.amount_paid - fee

    escalation_decide(
        escalation_id=escalation.pk,
        actor=supervisor,
        outcome="overturned",
        explanation="The restaurant had not started.",
    )

    refunds_processed()
    fee_back = Refund.objects.get(idempotency_key=f"escalation:{escalation.pk}:card")
    assert (fee_back.amount, fee_back.status) == (fee, "succeeded")
    assert sum(r.amount for r in processor_refunds()) == order.amount_paid


def test_only_a_denial_or_a_kept_fee_can_be_contested(clock, buyer, other_buyer, restaurant, menu):
    order = tiramisu_claim(buyer, restaurant, menu).order

    for subject, code in [
        ("cancellation_denied", "not_escalatable"),
        ("cancellation_fee", "not_escalatable"),
        ("refund_decision", "invalid_subject"),
    ]:
        error = refused(
            lambda subject=subject: escalation_open_for_order(
                order_id=order.pk, actor=buyer, subject=subject, statement=STATEMENT
            )
        )
        assert error.code == code
    other = refused(
        lambda: escalation_open_for_order(
            order_id=order.pk, actor=other_buyer, subject="cancellation_denied", statement="x"
        )
    )
    assert other.code == "not_found"
    nothing_escalated()


# -- the beat task (L-8.1, K-OV) ----------------------------------------------------------------


def test_due_soon_at_three_business_days_overdue_tells_supervisors_once(
    escalation, clock, supervisor
):
    supervisor_notes = Notification.objects.filter(user=supervisor)
    before = supervisor_notes.count()

    clock.move_to(dt.datetime(2026, 11, 25, 11, 59, tzinfo=dt.UTC))
    assert escalation_due_dates() == {"due_soon": 0, "overdue": 0}
    clock.move_to(dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC))
    assert escalation_due_dates() == {"due_soon": 1, "overdue": 0}
    assert escalation_due_dates() == {"due_soon": 0, "overdue": 0}
    escalation.refresh_from_db()
    assert escalation.due_soon_flagged_at == dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    assert supervisor_notes.count() == before

    clock.move_to(dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC))
    assert escalation_due_dates() == {"due_soon": 0, "overdue": 1}
    assert escalation_due_dates() == {"due_soon": 0, "overdue": 0}
    overdue = supervisor_notes.get(title=f"Escalation #{escalation.pk} is overdue")
    assert "Mon 30 Nov 2026" in overdue.body
    assert TaskRun.objects.filter(name="disputes.tasks.escalation_due_dates").exists()


def test_a_decided_escalation_is_never_overdue(escalation, clock, supervisor):
    escalation_decide(
        escalation_id=escalation.pk,
        actor=supervisor,
        outcome="upheld",
        explanation="The decision stands.",
    )
    clock.move_to(dt.datetime(2026, 12, 30, tzinfo=dt.UTC))

    assert escalation_due_dates() == {"due_soon": 0, "overdue": 0}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_escalations_of_one_request_at_once_open_one(buyer, restaurant, menu, agent):
    request = denied_request(buyer, restaurant, menu, agent)

    results = run_concurrently(
        lambda: escalation_open(request_id=request.pk, actor=buyer, statement=STATEMENT), 2
    )

    assert sorted(type(r).__name__ for r in results) == ["DomainError", "Escalation"]
    assert [r.code for r in results if isinstance(r, DomainError)] == ["already_escalated"]
    assert Escalation.objects.count() == 1


def test_the_due_dates_run_on_beat(settings):
    assert settings.CELERY_BEAT_SCHEDULE["escalation-due-dates"] == {
        "task": "disputes.tasks.escalation_due_dates",
        "schedule": 900.0,
    }
