"""The D-7 money invariants under random sequences of everything that moves money (issue 11 §4).

A hypothesis `RuleBasedStateMachine` drives the real services (not the API) through orders
placed with card, credit and discount codes, their lifecycle, cancellations by the buyer and the
restaurant, refund claims with their items and photos, support's decisions (approve, partial,
deny, promotional credit, replacement, questions to the buyer and the restaurant, four eyes),
escalations and their final decisions, chargebacks opened, contested, won, lost and accepted,
suspensions, outage and force-majeure incidents, missing orders, and the timed rules on beat (the
late sweep, credit expiry, refund retries, missing orders given up ...) with the clock moved by
time-machine and the simulated processor made to decline, fail or time out.

Checked after every step of every sequence drawn (16 derandomized sequences of up to 30 steps,
the same on every run; raise `max_examples` locally to explore further):

- `core.ledgers.ledger_violations()` is empty (the checker behind `manage.py check_ledgers`):
  money refunded never exceeds what was paid, each refund moved money once, credit balances
  equal their ledgers, card payments equal the charges, restaurant ledgers balance, and lojix
  agrees with the processor's own records;
- what is refunded or on its way (pending and failed refunds included) plus what chargebacks not
  won take never exceeds what the buyer paid, nor the card part what the card was charged;
- no credit grant is negative or above what it granted, and its ledger never goes negative;
- a single-use discount code is on one order at most;
- a request marked refunded has moved all the money its decision gave.

And every action a state forbids is refused with the project's `DomainError` and changes
nothing in lojix's tables; anything else it raises fails the test (a 500 at the edges).
The actions run as they do in production: each commits (on-commit callbacks executed, so the
outbox relay hands the card refunds, chargeback settlements and outage refunds to the eager
Celery tasks, which call the simulated processor). The run fails if it no longer reaches the
states it is there for (MUST_REACH): a claim decided, an escalation decided, a chargeback lost or
accepted, an outage refunded, the late sweep refunding, credit expiring.
"""

import datetime as dt
import io
from collections import Counter
from decimal import Decimal as D

import pytest
import time_machine
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.db.models import F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.test import TestCase, override_settings
from django.utils import timezone
from hypothesis import HealthCheck, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from PIL import Image

from config.celery import app as celery_app
from core.errors import DomainError
from core.ledgers import ledger_violations
from core.models import Notification, OutboxMessage
from core.money_db import MONEY_FIELD, Cents, MoneySum
from credits.models import CreditGrant, CreditTransaction, DiscountCode
from disputes.models import Chargeback, Escalation, Incident, Intervention, Suspension
from disputes.policy import CANCELLATION_DENIED, CANCELLATION_FEE
from disputes.services.chargebacks import (
    chargeback_accept,
    chargeback_lose,
    chargeback_open,
    chargeback_submit_evidence,
    chargeback_win,
)
from disputes.services.escalations import (
    escalation_decide,
    escalation_open,
    escalation_open_for_order,
    escalation_take,
)
from disputes.services.outages import incident_create
from disputes.services.suspensions import buyer_reinstate, buyer_suspend
from orders.gateway import SimulatedGateway
from orders.models import Order, OrderEvent, OrderItem, Payment
from orders.services.cancellation import (
    order_cancel_by_buyer,
    order_cancel_by_restaurant,
    order_cancellation_approve,
    order_cancellation_deny,
)
from orders.services.delays import order_set_delay_cause
from orders.services.lifecycle import order_advance
from orders.services.missing import order_missing_locate, order_report_missing
from refunds.models import (
    Refund,
    RefundRequest,
    RefundRequestItem,
    RestaurantLedgerEntry,
)
from refunds.policy import QUALITY_REASONS, Reason
from refunds.services.decisions import (
    refund_request_approve,
    refund_request_deny,
    refund_request_offer_credit,
    refund_request_offer_replacement,
    refund_request_partially_approve,
    refund_request_second_approve,
    refund_request_second_reject,
)
from refunds.services.processing import refund_pay_as_account_credit, refund_retry_by_support
from refunds.services.requests import (
    refund_request_ask_restaurant,
    refund_request_reply,
    refund_request_request_info,
    refund_request_restaurant_verify,
    refund_request_submit,
)
from tests.conftest import NOW, give_credit, place_order
from tests.factories import DiscountCodeFactory

pytestmark = pytest.mark.django_db

CENT = D("0.01")
EXPLANATION = "Checked the photos and the restaurant's notes."
NEXT_STEP = {  # the restaurant's next lifecycle action from each state, per fulfilment
    "placed": "accept",
    "accepted": "start_preparation",
    "preparing": "mark_ready",
    "out_for_delivery": "deliver",
    "served": "close",
}
FROM_READY = {"delivery": "dispatch", "pickup": "hand_over", "dine_in": "serve"}
# Hypothesis draws the first of a list most often: the reasons support reviews (or that move
# money) come first, then every reason.
REASONS = [
    Reason.MISSING_ITEMS,
    Reason.WRONG_ORDER,
    Reason.NOT_DELIVERED,
    Reason.INCORRECT_ITEMS,
    Reason.TEMPERATURE,
    Reason.LATE_DELIVERY,
    *sorted(v for k, v in vars(Reason).items() if k.isupper() and isinstance(v, str)),
]
# What a refused action must leave exactly as it was: every row of these, field by field.
WATCHED = (
    Order,
    OrderItem,
    Payment,
    Refund,
    RefundRequest,
    RefundRequestItem,
    RestaurantLedgerEntry,
    CreditGrant,
    CreditTransaction,
    DiscountCode,
    Chargeback,
    Escalation,
    Incident,
    Intervention,
    Suspension,
    OrderEvent,
    OutboxMessage,
    Notification,
)
# What the actions and timed rules did over the whole run (`pytest -s` prints it), and what
# the run must have reached at least once, lest the invariants hold vacuously.
REACHED: Counter[str] = Counter()
MUST_REACH = {
    "an order placed": ["place: done"],
    "a claim support reviews": [f"claim {r}: done" for r in REASONS[:6]],
    "support's decision": [f"agent {d}: done" for d in ("approve", "partial", "deny", "credit")],
    "an escalation decided": ["escalation overturned: done", "escalation upheld: done"],
    "a chargeback that moves money": ["chargeback lose: done", "chargeback accept: done"],
    "an outage's bulk refund": ["outage here: done", "outage everywhere: done"],
    "the late sweep's refund": ["late sweep: refunded"],
    "promotional credit expired": ["credit expiry: expired"],
}
LATE_SWEEP = "refunds.tasks.auto_refund_late_orders"
CREDIT_EXPIRY = "credits.tasks.expire_credits"
MINUTES = [125, 1, 3, 6, 20, 45, 70, 60 * 5, 60 * 26, 60 * 24 * 8, 60 * 24 * 95]


def snapshot() -> dict:
    """Every row of the watched tables: on PostgreSQL a digest of each table's rows in one
    query (the machine takes one before every action), elsewhere the rows themselves."""
    if connection.vendor != "postgresql":
        return {m._meta.label: list(m.objects.order_by("pk").values_list()) for m in WATCHED}
    digests = ", ".join(
        f"(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t.{m._meta.pk.column}), '')) "
        f"FROM {m._meta.db_table} t)"
        for m in WATCHED
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {digests}")
        return dict(zip([m._meta.label for m in WATCHED], cursor.fetchone(), strict=True))


def total(queryset, field: str):
    """The sum of `field` over `queryset`, correlated to the outer order (0.00 over none)."""
    sums = queryset.order_by().values("order").annotate(sum=MoneySum(field)).values("sum")
    return Cents(Coalesce(Subquery(sums), Value(D("0.00")), output_field=MONEY_FIELD))


def photo() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    return SimpleUploadedFile("spill.png", buffer.getvalue(), content_type="image/png")


def cents(value: int) -> D:
    return (D(value) / 100).quantize(CENT)


class LedgerMachine(RuleBasedStateMachine):
    """One marketplace day (and the weeks after it): a restaurant, two buyers, an agent and a
    supervisor, from the test's fixtures. Each example runs inside a savepoint rolled back at
    teardown, with the processor's store wiped, on a frozen clock only the rules move."""

    orders = Bundle("orders")
    requests = Bundle("requests")
    escalations = Bundle("escalations")
    chargebacks = Bundle("chargebacks")

    def __init__(self, world: dict):
        super().__init__()
        self.world = world
        self.last_refusal = ""
        self.faults: dict[str, str] = {}
        self.fault_actions_left = 0
        self.codes: list[str] = []
        self.serial = 0
        SimulatedGateway.reset()
        self._travel = time_machine.travel(NOW, tick=False)
        self.clock = self._travel.start()
        self._savepoint = transaction.atomic()
        self._savepoint.__enter__()

    def teardown(self):
        transaction.set_rollback(True)
        self._savepoint.__exit__(None, None, None)
        self._travel.stop()
        SimulatedGateway.reset()

    # -- how every action runs ------------------------------------------------------------------

    def act(self, name: str, call, *, records: str = ""):
        """Run one action as production does (committed: its on-commit callbacks run, so the
        outbox relay runs the tasks it requested, eagerly), with the processor's faults of the
        moment. A refusal must be a DomainError that changed nothing (but for the code
        `records`, whose caller checks what it recorded); returns None for it."""
        before = snapshot()
        refusal = None
        try:
            with (
                override_settings(LOJIX_SIMULATED_GATEWAY_FAULTS=self.faults_now()),
                TestCase.captureOnCommitCallbacks(execute=True),
            ):
                result = call()
        except DomainError as error:
            refusal = error
        finally:
            self.clock.shift(dt.timedelta(seconds=1))
        if refusal is None:
            self.last_refusal = ""
            REACHED[f"{name}: done"] += 1
            return result
        self.last_refusal = refusal.code
        REACHED[f"{name}: refused {refusal.code}"] += 1
        note(f"{name}: refused {refusal.code}: {refusal.detail}")
        if refusal.code != records:
            assert snapshot() == before, f"{name} refused ({refusal.code}) but changed something"
        return None

    def faults_now(self) -> dict:
        """The processor's faults for one more action; they pass after the drawn number."""
        faults = dict(self.faults)
        self.fault_actions_left -= 1
        if self.fault_actions_left <= 0:
            self.faults = {}
        return faults

    def run_task(self, name: str, task, **kwargs):
        with (
            override_settings(LOJIX_SIMULATED_GATEWAY_FAULTS=self.faults_now()),
            TestCase.captureOnCommitCallbacks(execute=True),
        ):
            result = task(**kwargs)
        note(f"{name}: {result}")
        self.clock.shift(dt.timedelta(seconds=1))
        return result

    def first_in_queue(self, request_id: int, **waiting) -> int:
        """The first request (by SLA) in the queue `waiting` selects, or `request_id`."""
        first = RefundRequest.objects.filter(**waiting).order_by("review_due_at", "pk").first()
        return request_id if first is None else first.pk

    def order(self, order_id: int) -> Order:
        return Order.objects.get(pk=order_id)

    def buyer(self, order_id: int, who: str):
        """The order's buyer, or the other buyer (whose every action on it is a 404)."""
        owner = self.order(order_id).buyer
        if who == "owner":
            return owner
        return next(u for u in (self.world["buyer"], self.world["other_buyer"]) if u != owner)

    # -- orders ---------------------------------------------------------------------------------

    @rule(
        target=orders,
        who=st.sampled_from(["buyer", "other_buyer"]),
        lines=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 3)), min_size=1, max_size=3),
        fulfillment=st.sampled_from(["delivery", "delivery", "pickup", "dine_in"]),
        use_credit=st.booleans(),
        code=st.sampled_from(["", "", "", "amount", "percent", "used"]),
    )
    def place(self, who, lines, fulfillment, use_credit, code):
        buyer, menu = self.world[who], self.world["menu"]
        discount = ""
        if code in ("amount", "percent"):
            self.serial += 1
            discount = f"SM{self.serial}"
            DiscountCodeFactory(
                code=discount,
                amount_off=D("4.00") if code == "amount" else None,
                percent_off=D("25") if code == "percent" else None,
                min_order_subtotal=D("10.00"),
            )
            self.codes.append(discount)
        elif code == "used" and self.codes:
            discount = self.codes[0]
        items = {}
        for index, quantity in lines:
            items[menu[index]] = items.get(menu[index], 0) + quantity
        order = self.act(
            "place",
            lambda: place_order(
                buyer,
                self.world["restaurant"],
                items,
                fulfillment=fulfillment,
                use_credit=use_credit,
                discount_code=discount,
            ),
        )
        return multiple() if order is None else order.pk

    @initialize(
        target=orders,
        fulfillments=st.lists(
            st.tuples(
                st.sampled_from(["delivery", "delivery", "pickup", "dine_in"]), st.booleans()
            ),
            min_size=2,
            max_size=3,
        ),
        credit=st.sampled_from(["promo", "account", ""]),
    )
    def open_for_business(self, fulfillments, credit):
        """The first orders of the day, the buyer's paid partly with credit an agent gave, and
        those drawn done taken to the end of their path (delivered, picked up, closed)."""
        buyer, other = self.world["buyer"], self.world["other_buyer"]
        if credit:
            give_credit(buyer, "6.00", kind=credit, expires_in_days=30)
        menu = self.world["menu"]
        placed = [
            self.act(
                "open",
                lambda i=index, f=fulfillment: place_order(
                    buyer if i % 2 == 0 else other,
                    self.world["restaurant"],
                    {menu[i % 3]: 1 + i % 2, menu[2]: 1},
                    fulfillment=f,
                    use_credit=bool(credit),
                ),
            )
            for index, (fulfillment, _) in enumerate(fulfillments)
        ]
        for order, (_, done) in zip(placed, fulfillments, strict=True):
            if done:
                self.restaurant_moves_on(order.pk, steps=6)
        return multiple(*(order.pk for order in placed))

    @rule(who=st.sampled_from(["buyer", "other_buyer"]), kind=st.sampled_from(["promo", "account"]))
    def agent_gives_credit(self, who, kind):
        give_credit(self.world[who], "6.00", kind=kind, expires_in_days=30)

    @rule(order=orders, steps=st.integers(1, 5))
    def restaurant_moves_on(self, order, steps):
        """The restaurant takes the order along its fulfilment's path."""
        for _ in range(steps):
            current = self.order(order)
            action = NEXT_STEP.get(current.status) or (
                FROM_READY[current.fulfillment] if current.status == "ready" else None
            )
            if action is None:
                return
            done = self.act(
                f"advance {action}",
                lambda a=action: order_advance(
                    order_id=order, action=a, actor=self.world["partner"]
                ),
            )
            assert done is not None, f"{action} from {current.status} was refused"

    @rule(
        order=orders,
        action=st.sampled_from(
            [f"try {a}" for a in [*FROM_READY.values(), *NEXT_STEP.values()]]
            + ["cancel item_unavailable", "cancel cannot_fulfill", "cancel bogus"]
            + ["approve cancellation", "deny cancellation", "locate"]
            + ["delay weather", "delay restaurant", "delay none"]
        ),
    )
    def restaurant_acts(self, order, action):
        """Anything a partner does to an order, allowed or not from its state: a lifecycle
        action, a cancellation with a reason (L-2.2), an answer to the buyer's cancellation
        request (K-B1), a missing order located (L-6.2), a delay cause (L-3.3)."""
        partner = self.world["partner"]
        verb, _, what = action.partition(" ")
        calls = {
            "try": lambda: order_advance(order_id=order, action=what, actor=partner),
            "cancel": lambda: order_cancel_by_restaurant(
                order_id=order, actor=partner, reason=what, explanation="The oven broke down."
            ),
            "approve": lambda: order_cancellation_approve(order_id=order, actor=partner),
            "deny": lambda: order_cancellation_deny(
                order_id=order, actor=partner, reason="It is already in the oven."
            ),
            "locate": lambda: order_missing_locate(order_id=order, actor=partner),
            "delay": lambda: order_set_delay_cause(order_id=order, actor=partner, delay_cause=what),
        }
        self.act(action, calls[verb])

    @rule(
        order=orders,
        action=st.sampled_from(
            [
                "cancel",
                "cancel",
                "cancel as a stranger",
                "report missing",
                f"contest {CANCELLATION_DENIED}",
                f"contest {CANCELLATION_FEE}",
            ]
        ),
    )
    def buyer_acts(self, order, action):
        """The buyer cancels (L-2.1, K-B1) (another buyer trying is a 404), reports the delivery
        missing (L-6.2), or contests the restaurant's answer to a cancellation request (K-DR)."""
        actor = self.buyer(order, "stranger" if action.endswith("stranger") else "owner")
        if action.startswith("cancel"):
            done = self.act(action, lambda: order_cancel_by_buyer(order_id=order, actor=actor))
            if action.endswith("stranger"):
                assert done is None
                assert self.last_refusal == "not_found"
        elif action == "report missing":
            self.act(action, lambda: order_report_missing(order_id=order, actor=actor))
        else:
            self.act(
                action,
                lambda: escalation_open_for_order(
                    order_id=order,
                    actor=actor,
                    subject=action.split()[1],
                    statement="I asked in time.",
                ),
            )

    # -- refund requests and support's decisions --------------------------------------------------

    @rule(
        target=requests,
        order=orders,
        reason=st.sampled_from(REASONS),
        picks=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([1, 1, 1, 2])), max_size=2),
        method=st.sampled_from(["original", "original", "account_credit"]),
        with_photo=st.sampled_from([True, True, False]),
        who=st.sampled_from(["owner"] * 5 + ["stranger"]),
        when_done=st.sampled_from([True, True, False]),
        picked_up=st.sampled_from(["approve", "partial", "deny", "credit", "info", None]),
        amount=st.integers(1, 3000),
    )
    def buyer_claims(
        self, order, reason, picks, method, with_photo, who, when_done, picked_up, amount
    ):
        """A refund request (L-4.1), mostly once the order reached its end (as buyers do), with
        its items for a partial claim (L-3.2) and a photo for a quality one (L-5.2); an agent
        may pick it up at once (`agent_decides` does later)."""
        if when_done:
            self.restaurant_moves_on(order, steps=6)
        actor = self.buyer(order, who)
        lines = list(OrderItem.objects.filter(order_id=order).order_by("pk"))
        items = [(lines[i % len(lines)].pk, quantity) for i, quantity in picks]
        photos = [photo()] if with_photo and reason in QUALITY_REASONS else []
        request = self.act(
            f"claim {reason}",
            lambda: refund_request_submit(
                order_id=order,
                actor=actor,
                reason=reason,
                items=items,
                description="The bag was soaked and a dish was missing.",
                preferred_method=method,
                photos=photos,
            ),
        )
        if who == "stranger":
            assert request is None
            assert self.last_refusal == "not_found"
        if request is None:
            return multiple()
        if picked_up:
            self.agent_decides(request.pk, picked_up, None, amount, from_queue=False)
        return request.pk

    @rule(
        request=requests,
        decision=st.sampled_from(
            ["approve", "partial", "deny", "credit", "info", "restaurant", "replace"]
        ),
        method=st.sampled_from([None, "original", "account_credit"]),
        amount=st.integers(-100, 6000),
        from_queue=st.sampled_from([True, True, False]),
    )
    def agent_decides(self, request, decision, method, amount, from_queue):
        """Support decides (L-4.1): mostly the request first in its queue (by SLA), else any
        request, whose state may forbid it."""
        if from_queue:
            request = self.first_in_queue(
                request, status__in=["under_review", "awaiting_restaurant"]
            )
        agent = self.world["agent"]
        calls = {
            "approve": lambda: refund_request_approve(
                request_id=request, actor=agent, method=method
            ),
            "partial": lambda: refund_request_partially_approve(
                request_id=request,
                actor=agent,
                amount=cents(amount),
                explanation=EXPLANATION,
                method=method,
            ),
            "deny": lambda: refund_request_deny(
                request_id=request, actor=agent, explanation=EXPLANATION
            ),
            "credit": lambda: refund_request_offer_credit(
                request_id=request, actor=agent, amount=cents(amount), explanation=EXPLANATION
            ),
            "info": lambda: refund_request_request_info(
                request_id=request, actor=agent, question="Could you send a photo of the bag?"
            ),
            "restaurant": lambda: refund_request_ask_restaurant(
                request_id=request, actor=agent, question="Was the dessert in the bag?"
            ),
            "replace": lambda: refund_request_offer_replacement(
                request_id=request, actor=agent, explanation=EXPLANATION
            ),
        }
        self.act(f"agent {decision}", calls[decision])

    @rule(request=requests, by_buyer=st.booleans())
    def question_answered(self, request, by_buyer):
        """The buyer answers support's question (the SLA clock restarts), or the restaurant
        confirms the claim (L-4.1): the first such question waiting, if any."""
        waiting = "info_requested" if by_buyer else "awaiting_restaurant"
        request = self.first_in_queue(request, status=waiting)
        if by_buyer:
            actor = RefundRequest.objects.get(pk=request).buyer
            self.act(
                "buyer replies",
                lambda: refund_request_reply(
                    request_id=request, actor=actor, body="Here it is.", photos=[photo()]
                ),
            )
        else:
            self.act(
                "restaurant verifies",
                lambda: refund_request_restaurant_verify(
                    request_id=request, actor=self.world["partner"], note="Yes, we forgot it."
                ),
            )

    @rule(request=requests, approve=st.booleans(), by=st.sampled_from(["supervisor", "agent"]))
    def second_approval(self, request, approve, by):
        """A supervisor (or, refused, the agent) gives or refuses the second approval above the
        four-eyes threshold (D-6): the first decision waiting for one, if any."""
        request = self.first_in_queue(
            request, needs_second_approval=True, second_approved_by__isnull=True
        )
        actor = self.world[by]
        if approve:
            self.act(
                "second approval",
                lambda: refund_request_second_approve(request_id=request, actor=actor),
            )
        else:
            self.act(
                "second rejection",
                lambda: refund_request_second_reject(
                    request_id=request, actor=actor, explanation="Too generous for this."
                ),
            )

    # -- escalations (L-8.1, K-DR) --------------------------------------------------------------

    @rule(
        target=escalations,
        request=requests,
        decided=st.sampled_from(["overturned", "upheld", None]),
        amount=st.one_of(st.none(), st.integers(0, 6000)),
    )
    def buyer_escalates(self, request, decided, amount):
        """The buyer asks a supervisor to review a decision (L-8.1), who may decide it at once
        (`supervisor_decides_escalation` does later)."""
        actor = RefundRequest.objects.get(pk=request).buyer
        escalation = self.act(
            "escalate",
            lambda: escalation_open(
                request_id=request, actor=actor, statement="The whole order was inedible."
            ),
        )
        if escalation is None:
            return multiple()
        if decided:
            self.supervisor_decides_escalation(escalation.pk, decided, amount)
        return escalation.pk

    @rule(
        escalation=escalations,
        outcome=st.sampled_from(["overturned", "upheld", "take"]),
        amount=st.one_of(st.none(), st.integers(0, 6000)),
    )
    def supervisor_decides_escalation(self, escalation, outcome, amount):
        supervisor = self.world["supervisor"]
        if outcome == "take":
            self.act(
                "take escalation",
                lambda: escalation_take(escalation_id=escalation, actor=supervisor),
            )
            return
        self.act(
            f"escalation {outcome}",
            lambda: escalation_decide(
                escalation_id=escalation,
                actor=supervisor,
                outcome=outcome,
                explanation="Having looked at everything again.",
                amount=None if amount is None else cents(amount),
            ),
        )

    # -- chargebacks and suspensions (L-8.2) ----------------------------------------------------

    @rule(target=chargebacks, order=orders, percent=st.sampled_from([None, None, 100, 40, 150]))
    def bank_opens_chargeback(self, order, percent):
        """The buyer's bank disputes the card payment, or part of it, or more than it (refused),
        as an agent enters it (L-8.2); most times the bank disputes nothing (None): a dispute
        blocks every later claim on the order, and the machine has more to explore."""
        if percent is None:
            return multiple()
        charged = self.order(order).amount_charged
        amount = max((charged * percent / 100).quantize(CENT), CENT)
        self.serial += 1
        reference = f"BANK-{self.serial}"
        opened = self.act(
            "chargeback opened",
            lambda: chargeback_open(
                order_id=order,
                amount=amount,
                bank_reference=reference,
                reason_code="fraud",
                actor=self.world["agent"],
            ),
        )
        if opened is None:
            return multiple()
        return opened[0].pk

    @rule(
        chargeback=chargebacks,
        step=st.sampled_from(["lose", "accept", "evidence", "win", "again"]),
    )
    def chargeback_moves(self, chargeback, step):
        """Support sends the evidence, the bank rules, the platform accepts; or an agent enters
        the same bank reference again (refused: it is the same dispute)."""
        agent, supervisor = self.world["agent"], self.world["supervisor"]
        if step == "again":
            existing = Chargeback.objects.get(pk=chargeback)
            done = self.act(
                "chargeback again",
                lambda: chargeback_open(
                    order_id=existing.order_id,
                    amount=existing.amount,
                    bank_reference=existing.bank_reference,
                    reason_code="fraud",
                    actor=agent,
                ),
            )
            assert done is None
            assert self.last_refusal == "chargeback_exists"
            return
        calls = {
            "evidence": lambda: chargeback_submit_evidence(chargeback_id=chargeback, actor=agent),
            "win": lambda: chargeback_win(chargeback_id=chargeback, actor=supervisor),
            "lose": lambda: chargeback_lose(chargeback_id=chargeback, actor=supervisor),
            "accept": lambda: chargeback_accept(chargeback_id=chargeback, actor=supervisor),
        }
        self.act(f"chargeback {step}", calls[step])

    @rule(
        action=st.sampled_from(
            ["suspend", "reinstate", "outage here", "outage everywhere", "force majeure"]
        ),
        who=st.sampled_from(["buyer", "other_buyer"]),
        minutes_back=st.sampled_from([2, 30, 180, 60 * 24 * 3]),
    )
    def supervisor_acts(self, action, who, minutes_back):
        """Suspends or reinstates a buyer (L-8.2), or enters an incident over the last minutes
        (L-10): an outage's bulk refund starts at once, force majeure holds the automatic
        rules for its orders."""
        supervisor, buyer = self.world["supervisor"], self.world[who]
        if action == "suspend":
            self.act(
                action,
                lambda: buyer_suspend(
                    buyer_id=buyer.pk, actor=supervisor, reason="Repeated chargebacks."
                ),
            )
            return
        if action == "reinstate":
            self.act(action, lambda: buyer_reinstate(buyer_id=buyer.pk, actor=supervisor))
            return
        now = timezone.now()
        self.act(
            action,
            lambda: incident_create(
                actor=supervisor,
                kind="force_majeure" if action == "force majeure" else "outage",
                title="Payments were down",
                starts_at=now - dt.timedelta(minutes=minutes_back),
                ends_at=now - dt.timedelta(seconds=1),
                restaurant_ids=[self.world["restaurant"].pk] if action == "outage here" else [],
                now=now,
                start_refund=True,
            ),
        )

    # -- the processor and support's hand on failed refunds -------------------------------------

    @rule(
        trouble=st.sampled_from(
            [
                ("refund", "decline"),
                ("refund", "error"),
                ("refund", "timeout"),
                ("charge", "decline"),
                ("charge", "timeout"),
                ("chargeback", "error"),
                None,
            ]
        ),
        actions=st.integers(1, 6),
    )
    def processor(self, trouble, actions):
        """The processor fails one kind of operation for the next few actions and timed rules
        (None: it recovers at once)."""
        if trouble is None:
            self.faults = {}
        else:
            operation, fault = trouble
            self.faults[operation] = fault
            self.fault_actions_left = actions

    @rule(pay_as_credit=st.booleans())
    def support_takes_over_a_failed_refund(self, pay_as_credit):
        refund = Refund.objects.filter(status=Refund.Status.FAILED).order_by("pk").first()
        if refund is None:
            return
        agent = self.world["agent"]
        if pay_as_credit:
            movements = Refund.objects.count(), CreditGrant.objects.count()
            self.act(
                "pay as credit",
                lambda: refund_pay_as_account_credit(refund_id=refund.pk, actor=agent),
                # The one refusal that records what it found: the processor made it after all.
                records="refund_made_after_all",
            )
            if self.last_refusal == "refund_made_after_all":
                refund.refresh_from_db()
                assert refund.status == Refund.Status.SUCCEEDED
                assert (Refund.objects.count(), CreditGrant.objects.count()) == movements
        else:
            self.act(
                "retry refund", lambda: refund_retry_by_support(refund_id=refund.pk, actor=agent)
            )

    # -- time and the timed rules (D-8) ---------------------------------------------------------

    @rule(
        minutes=st.sampled_from(MINUTES),
        then=st.sampled_from(["beat", "late sweep", "beat", "refund retries", "nothing"]),
    )
    def time_passes(self, minutes, then):
        """The clock moves on and beat runs every timed rule once (CELERY_BEAT_SCHEDULE, D-8),
        or only the late sweep or the refund retries, or nothing (beat was down)."""
        self.clock.shift(dt.timedelta(minutes=minutes))
        tasks = {
            "beat": [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()],
            "late sweep": [LATE_SWEEP],
            "refund retries": ["refunds.tasks.retry_failed_refunds"],
            "nothing": [],
        }[then]
        celery_app.loader.import_default_modules()
        for name in tasks:
            result = self.run_task(name, celery_app.tasks[name])
            if name == LATE_SWEEP and result["acted_on"]:
                REACHED["late sweep: refunded"] += 1
            if name == CREDIT_EXPIRY and result:
                REACHED["credit expiry: expired"] += 1

    # -- the invariants, after every step -------------------------------------------------------

    @invariant()
    def ledgers_balance(self):
        assert ledger_violations() == []

    @invariant()
    def nothing_goes_back_beyond_what_was_paid(self):
        """Refunds pending, failed or made (until support replaced one) and chargebacks not won
        never take back more than the buyer paid, nor more than the card was charged."""
        refunds = Refund.objects.filter(order=OuterRef("pk"), replaced_by__isnull=True)
        chargebacks = Chargeback.objects.filter(order=OuterRef("pk")).exclude(status="won")
        too_much = Order.objects.annotate(
            money=total(refunds.exclude(destination=Refund.Destination.PROMO_CREDIT), "amount"),
            card=total(refunds.filter(destination=Refund.Destination.CARD), "amount"),
            taken=total(chargebacks, "amount_at_stake"),
        ).filter(
            Q(money__gt=F("amount_charged") + F("account_credit_applied") - F("taken"))
            | Q(card__gt=F("amount_charged") - F("taken"))
        )
        assert list(too_much.values_list("pk", "amount_charged", "money", "card", "taken")) == []

    @invariant()
    def credit_never_negative(self):
        assert not CreditGrant.objects.filter(
            Q(remaining__lt=0) | Q(remaining__gt=F("amount"))
        ).exists()
        balances = CreditTransaction.objects.values("grant_id").annotate(total=MoneySum("amount"))
        assert not balances.filter(total__lt=0).exists()

    @invariant()
    def a_single_use_code_is_used_once(self):
        codes = Order.objects.filter(discount_code__is_multi_use=False).values("discount_code")
        assert codes.count() == codes.distinct().count()

    @invariant()
    def a_refunded_request_moved_all_its_decided_money(self):
        """A request is `refunded` only once its decision's money moved (D-7); an overturned
        escalation's difference (key `escalation:<id>`) may still be on its way after that."""
        unmoved = Refund.objects.filter(
            request__status=RefundRequest.Status.REFUNDED,
            idempotency_key__startswith="refund-request:",
            replaced_by__isnull=True,
        ).exclude(status=Refund.Status.SUCCEEDED)
        assert list(unmoved) == []


def test_the_ledgers_balance_after_every_step_of_any_sequence(
    buyer, other_buyer, partner, agent, supervisor, restaurant, menu
):
    world = {
        "buyer": buyer,
        "other_buyer": other_buyer,
        "partner": partner,
        "agent": agent,
        "supervisor": supervisor,
        "restaurant": restaurant,
        "menu": [menu["Margherita"], menu["Tiramisu"], menu["Lemonade"]],
    }
    run_state_machine_as_test(
        lambda: LedgerMachine(world),
        settings=hypothesis_settings(
            max_examples=16,
            stateful_step_count=30,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    for outcome, times in sorted(REACHED.items()):
        print(f"{times:5} {outcome}")
    missed = [what for what, outcomes in MUST_REACH.items() if not any(map(REACHED.get, outcomes))]
    assert not missed, f"the machine no longer reaches: {missed}"
