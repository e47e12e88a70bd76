"""The authorization matrix (issue 11 §4; D-4, D-10, D-11): every role against every operation
of the OpenAPI schema and every page, in one table (`TABLE`), with zero leaks.

What is proven:
- `TABLE` covers every operation `/api/schema/` lists and every page route of the URL resolver
  (lojix's pages, the admin index, every registered model's changelist and change page and
  lojix's own admin views): a new endpoint or page without a row fails
  `test_the_table_covers_every_schema_operation_and_every_page`.
- Each cell is the status the role gets, through real token (API) and session (pages) auth:
  another buyer's or another restaurant's object is a 404 like one that does not exist (D-4);
  a role that may not use an endpoint at all is a 403 (API, the seller portal's "not a
  partner" page) or admin's sign-in; anonymous is a 401 (API) or sent to sign in.
- The suspended buyer is the buyer under an unlifted suspension (L-8.2): their reads still
  work; on the API everything that starts something new is a 403 `account_suspended` citing
  L-8.2 (D-10), and the pages refuse it with the reason.
- Every write's cell says whether it changed the database (`+`, a digest of every table before
  and after): an allowed write did, and a refused one (401, 403, 404, 400, 409, a redirect to
  sign in or back with a message) changed nothing at all.
- No answer, whatever its status, shows private data to a role that may not see it (D-4):
  canary strings planted in the buyer's delivery address, refund claim, escalation statement
  and credit, and in the restaurant's dispute of a deduction, each with the roles it may
  reach (`SEEN_BY`).

The objects in the paths (the buyer's orders in every state, requests, an escalation, a
chargeback, a deduction...) are built once for the module through the services, inside a
transaction that is rolled back at the end (as Django's `TestCase.setUpTestData`); each row is a
test, and each cell runs in a savepoint rolled back after it, so no cell sees another's effect.
"""

import datetime as dt
import io
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal as D
from http.cookies import SimpleCookie

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.shortcuts import resolve_url
from django.test import Client, TestCase
from django.urls import URLPattern, URLResolver, get_resolver
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from drf_spectacular.generators import SchemaGenerator
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.ledgers import ledger_violations
from core.models import IdempotencyRecord, Notification, TaskRun
from core.roles import SUPERVISOR, SUPPORT_AGENT, sync_role_permissions
from credits.models import CreditGrant
from disputes.models import GatewayEvent, Incident
from disputes.services.chargebacks import chargeback_open
from disputes.services.escalations import escalation_open
from disputes.services.interventions import intervention_open
from disputes.services.outages import incident_create
from disputes.services.suspensions import buyer_suspend
from orders.gateway import SimulatedGateway
from orders.models import Order, PolicyVersion
from orders.policy_seed import seed_version_1
from orders.services.cancellation import order_cancel_by_buyer, order_cancellation_deny
from orders.services.missing import order_report_missing
from refunds.models import RefundRequest, RestaurantLedgerEntry
from refunds.photos import photo_prepare
from refunds.services.decisions import refund_request_approve, refund_request_deny
from refunds.services.deductions import deduction_dispute_open
from refunds.services.evidence import refund_photos_hold
from refunds.services.requests import refund_request_ask_restaurant, refund_request_submit
from tests.conftest import NOW, advance, give_credit, place_order, refunds_processed
from tests.factories import DiscountCodeFactory, MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ROLES = (
    "anonymous",
    "buyer",
    "other_buyer",
    "partner",
    "other_partner",
    "agent",
    "supervisor",
    "suspended",
)
# Private data planted in the world, and the only roles any answer may show it to (D-4): the
# restaurant sees the buyer's address while the order is on its way and their claims, not
# their credit or their escalations; the buyer does not see the restaurant's dispute of a
# deduction; staff see everything.
STAFF = {"agent", "supervisor"}
BUYER = {"buyer", "suspended"}
CANARIES = {
    "address": "Canary Lane 7",  # of the open orders
    "done_address": "Canary Close 9",  # of the delivered ones
    "claim": "canary-claim: the tiramisu never came",
    "statement": "canary-statement: I disagree",
    "credit": "canary-credit for the trouble",
    "dispute_note": "canary-note: the bag was sealed",
}
SEEN_BY = {
    "address": BUYER | {"partner"} | STAFF,
    "done_address": BUYER | STAFF,
    "claim": BUYER | {"partner"} | STAFF,
    "statement": BUYER | STAFF,
    "credit": BUYER | STAFF,
    "dispute_note": {"partner"} | STAFF,
}
DELIVER = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")


# -- the world: the objects in the paths, built once ---------------------------------------


def _photo(name="bag.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 40, 40)).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@dataclass
class World:
    users: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    sessions: dict = field(default_factory=dict)
    fingerprint: dict = field(default_factory=dict)

    def __getattr__(self, name):
        try:
            return self.__dict__["objects"][name]
        except KeyError as error:
            raise AttributeError(name) from error


def _users() -> dict:
    buyer = UserFactory(username="adelheid", first_name="Adelheid")
    partner = UserFactory(username="luigi", first_name="Luigi")
    other_partner = UserFactory(username="marco", first_name="Marco")
    users = {
        "buyer": buyer,
        "other_buyer": UserFactory(username="grace", first_name="Grace"),
        "partner": partner,
        "other_partner": other_partner,
        "agent": UserFactory(username="agnes", is_staff=True, groups=[SUPPORT_AGENT]),
        "supervisor": UserFactory(username="sofia", is_staff=True, groups=[SUPERVISOR]),
        # Suspended before the matrix runs: the one a supervisor reinstates.
        "suspended_one": UserFactory(username="victor", first_name="Victor"),
    }
    return users


def _orders(w: World, buyer, roma, menu) -> None:
    o = w.objects

    def order(*actions, items=None, address=None, **kwargs):
        address = address or CANARIES["done_address" if "deliver" in actions else "address"]
        placed = place_order(
            buyer, roma, items or {menu["Margherita"]: 2, menu["Tiramisu"]: 1},
            delivery_address=address, **kwargs,
        )  # fmt: skip
        return advance(placed, *actions) if actions else placed

    o["placed"] = order()
    o["accepted"] = order("accept")
    o["preparing"] = order("accept", "start_preparation")
    o["ready"] = order(*DELIVER[:3])
    o["out"] = order(*DELIVER[:4])
    o["ready_pickup"] = order(*DELIVER[:3], fulfillment=Order.Fulfillment.PICKUP)
    o["ready_dine_in"] = order(*DELIVER[:3], fulfillment=Order.Fulfillment.DINE_IN)
    o["served"] = order(*DELIVER[:3], "serve", fulfillment=Order.Fulfillment.DINE_IN)
    o["delivered"] = order(*DELIVER)
    o["requested"] = order("accept")
    order_cancel_by_buyer(order_id=o["requested"].pk, actor=buyer)
    o["missing"] = order(*DELIVER[:4])
    order_report_missing(order_id=o["missing"].pk, actor=buyer)
    o["cancel_denied"] = order("accept", address=CANARIES["done_address"])
    order_cancel_by_buyer(order_id=o["cancel_denied"].pk, actor=buyer)
    order_cancellation_deny(order_id=o["cancel_denied"].pk, actor=w.users["partner"], reason="No")
    advance(o["cancel_denied"], *DELIVER[1:])
    o["cb_order"] = order(*DELIVER)
    for name in o:
        o[name].refresh_from_db()


def _claim(w: World, order, **kwargs) -> RefundRequest:
    kwargs.setdefault("reason", "missing_items")
    if "items" not in kwargs:
        kwargs["items"] = [(order.items.get(name="Tiramisu").pk, 1)]
    return refund_request_submit(
        order_id=order.pk, actor=w.users["buyer"], description=CANARIES["claim"], **kwargs
    )


def _requests(w: World, buyer, roma, menu) -> None:
    o, agent, partner = w.objects, w.users["agent"], w.users["partner"]

    def delivered(items=None):
        items = items or {menu["Margherita"]: 2, menu["Tiramisu"]: 1}
        order = place_order(buyer, roma, items, delivery_address=CANARIES["done_address"])
        return advance(order, *DELIVER)

    o["review"] = _claim(w, delivered(), photos=[_photo()])
    o["evidence"] = o["review"].evidence.get()
    o["verify"] = refund_request_ask_restaurant(
        request_id=_claim(w, delivered()).pk, actor=agent, question="Was it packed?"
    )
    o["denied"] = refund_request_deny(
        request_id=_claim(w, delivered()).pk, actor=agent, explanation="It was packed."
    )
    escalated = refund_request_deny(
        request_id=_claim(w, delivered()).pk, actor=agent, explanation="It was packed."
    )
    o["escalation"] = escalation_open(
        request_id=escalated.pk, actor=buyer, statement=CANARIES["statement"], photos=[_photo()]
    )
    o["escalation_evidence"] = o["escalation"].evidence.get()
    # Above the version's four-eyes threshold (50.00): approved by the agent, waiting for a
    # supervisor's second approval.
    big = delivered({menu["Margherita"]: 6})
    o["big"] = refund_request_approve(
        request_id=_claim(w, big, items=[(big.items.get().pk, 6)]).pk, actor=agent
    )
    deducted = [delivered(), delivered()]
    for order in deducted:
        refund_request_approve(request_id=_claim(w, order).pk, actor=agent)
    refunds_processed()
    o["deduction"], disputed = (
        RestaurantLedgerEntry.objects.get(kind="refund_deduction", order=order)
        for order in deducted
    )
    o["deduction_dispute"] = deduction_dispute_open(
        entry_id=disputed.pk, actor=partner, note=CANARIES["dispute_note"], now=NOW
    )
    o["allergen_request"] = _claim(w, delivered(), reason="allergic_reaction", items=[])
    refunds_processed()
    o["allergen"] = Incident.objects.get(refund_request=o["allergen_request"])
    [o["held_photo"]] = refund_photos_hold(
        order_id=o["delivered"].pk, actor=buyer, photos=[photo_prepare(_photo())]
    )
    o["chargeback"], _ = chargeback_open(
        order_id=o["cb_order"].pk, amount=D("5.00"), bank_reference="B-1", reason_code="fraud",
        actor=agent,
    )  # fmt: skip
    for name in ("review", "verify", "denied", "escalation", "big"):
        o[name].refresh_from_db()


def _the_rest(w: World, buyer, blu) -> None:
    o, supervisor = w.objects, w.users["supervisor"]
    o["outage"] = incident_create(
        actor=supervisor, kind=Incident.Kind.OUTAGE, title="Blu's terminal died",
        starts_at=NOW - dt.timedelta(days=3), ends_at=NOW - dt.timedelta(days=2),
        restaurant_ids=[blu.pk], now=NOW,
    )  # fmt: skip
    o["credit"] = give_credit(buyer, "4.00", reason=CANARIES["credit"])
    o["promo"] = give_credit(buyer, "2.00", kind=CreditGrant.Kind.PROMO, reason=CANARIES["credit"])
    o["discount_code"] = DiscountCodeFactory(code="AUTHZ5")
    o["intervention"] = intervention_open(
        order=o["requested"], kind="unanswered_cancellation", summary="No answer", now=NOW
    )
    o["notification"] = Notification.objects.filter(user=buyer).order_by("pk").first()
    o["task_run"] = TaskRun.objects.create(
        name="credits.tasks.expire_credits",
        started_at=NOW,
        finished_at=NOW,
        duration_ms=5,
        outcome="succeeded",
    )
    o["gateway_event"] = GatewayEvent.objects.create(
        event_id="evt_authz", type="refund.settled", payload={}
    )
    o["idempotency_record"] = IdempotencyRecord.objects.create(
        user=buyer, key="k-1", method="POST", path="/api/orders/", fingerprint="0" * 64,
        response_status=201, response_body="{}", completed_at=NOW,
    )  # fmt: skip


def _third_party_records() -> None:
    """One record of each third-party model admin lists, for its change page."""
    seen = {"user_agent": "test", "http_accept": "*/*", "path_info": "/accounts/login/"}
    AccessAttempt.objects.create(
        username="mallory", get_data="", post_data="", failures_since_start=1, **seen
    )
    AccessLog.objects.create(username="mallory", **seen)
    AccessFailureLog.objects.create(username="mallory", **seen)
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    ClockedSchedule.objects.create(clocked_time=NOW)
    CrontabSchedule.objects.create()
    SolarSchedule.objects.create(event="sunrise", latitude=D("52.37"), longitude=D("4.90"))
    PeriodicTask.objects.create(name="authz", task="core.tasks.outbox_relay", interval=every)


def _sign_in(w: World) -> None:
    for role, user in w.users.items():
        w.tokens[role] = Token.objects.get_or_create(user=user)[0].key
        client = Client()
        client.force_login(user)
        w.sessions[role] = client.cookies[settings.SESSION_COOKIE_NAME].value


def build_world() -> World:
    w = World()
    # What the migrations made, in case a transactional test flushed it before this module.
    seed_version_1(PolicyVersion)
    sync_role_permissions()
    w.users = _users()
    roma = RestaurantFactory(name="Trattoria Roma", slug="roma", members=[w.users["partner"]])
    blu = RestaurantFactory(name="Osteria Blu", slug="blu", members=[w.users["other_partner"]])
    menu = {
        "Margherita": MenuItemFactory(restaurant=roma, name="Margherita", price=D("12.50")),
        "Tiramisu": MenuItemFactory(restaurant=roma, name="Tiramisu", price=D("6.00")),
    }
    w.objects.update(roma=roma, blu=blu, dish=menu["Margherita"])
    _orders(w, w.users["buyer"], roma, menu)
    _requests(w, w.users["buyer"], roma, menu)
    _the_rest(w, w.users["buyer"], blu)
    _third_party_records()
    buyer_suspend(buyer_id=w.users["suspended_one"].pk, actor=w.users["supervisor"], reason="CB")
    _sign_in(w)
    return w


def _testcase_atomic():
    """A savepoint that services' durable blocks may nest in, as TestCase's own atomics."""
    atomic = transaction.atomic()
    atomic._from_testcase = True
    return atomic


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The module's objects, built once in a transaction rolled back after the last test; the
    processor's records of their charges and refunds are kept until then (the per-test
    `processor_reset` is switched off below)."""
    with django_db_blocker.unblock(), time_machine.travel(NOW, tick=False):
        outer = _testcase_atomic()
        outer.__enter__()
        try:
            with TestCase.captureOnCommitCallbacks(execute=True):
                built = build_world()
            assert ledger_violations() == []
            built.fingerprint = _fingerprint()
            yield built
            # Nothing a cell did outlived its savepoint, the processor's records included.
            assert ledger_violations() == []
            assert _fingerprint() == built.fingerprint
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            SimulatedGateway.reset()


@pytest.fixture(autouse=True)
def processor_reset():
    """Overrides conftest's: the module's payments stay in the processor between tests."""


@pytest.fixture(autouse=True)
def ledgers_balance(db):
    """Overrides conftest's check after every test, which would find each row's cells rolled
    back: the `world` fixture checks the ledgers of D-7 when it is built and after the last
    row, when the processor's records show whatever a cell did outside the database."""


@pytest.fixture(autouse=True)
def frozen(world):
    with time_machine.travel(NOW, tick=False):
        yield


# -- the table ---------------------------------------------------------------------------------
# Each row: the operation (method and path template, as the schema or the URL resolver writes
# it), then the status each role gets, in the order of ROLES:
#   anon   anonymous            buyer  the owner of every object in the paths
#   other  another buyer        partn  a partner of the objects' restaurant
#   o.par  another restaurant's partner
#   agent  support agent        super  supervisor
#   susp   the buyer, suspended (L-8.2)
# Cells: an HTTP status; `login` a redirect to sign in (/accounts/login/?next=..., or htmx's
# HX-Redirect there), `alogin` to admin's sign-in, `302` any other redirect (a page's form done,
# or refused with a message). On a write, `+` marks a cell whose request changed the database;
# a write's cell without it changed nothing at all (every table's digest is the same).
# Then the path's objects (`id="placed"`: the world's object of that name; `=x`: the text x;
# `user:role`: that user's id; `@app.model`: the first row of that model) and the body: every
# role sends the same, valid body (the webhook's is unsigned: its only credential is the
# signature), so a refusal is the role's and not the input's.


@dataclass(frozen=True)
class Row:
    op: str
    cells: str
    path: dict
    body: object = None
    encoding: str = "json"
    note: str = ""
    headers: dict = field(default_factory=dict)
    prepare: object = None  # prepare(w, client): what the role's browser did first

    @property
    def method(self) -> str:
        return self.op.split()[0]

    @property
    def template(self) -> str:
        return self.op.split()[1]


def R(op, cells, body=None, encoding="json", note="", headers=None, prepare=None, **path) -> Row:
    return Row(
        op=op,
        cells=" ".join(cells.split()),
        path=path,
        body=body,
        encoding=encoding,
        note=note,
        headers=headers or {},
        prepare=prepare,
    )


def _credentials(w, role):
    # Everyone asks for their own token; anonymous signs in as the other buyer.
    user = w.users["other_buyer" if role == "anonymous" else _user_role(role)]
    return {"username": user.username, "password": "pass-word-123"}


def _order_body(w, role):
    return {
        "restaurant": w.roma.pk,
        "items": [{"menu_item": w.dish.pk, "quantity": 1}],
        "fulfillment": "delivery",
        "delivery_address": "1 New Street",
    }


def _fill_cart(w, client):
    client.post("/cart/add/", {"menu_item": w.dish.pk, "quantity": 1})


def _checkout(w, role):
    return {
        "token": uuid.uuid4().hex,  # a fresh checkout: the cache (Redis) keeps used ones
        "fulfillment": "delivery",
        "delivery_address": "1 New Street",
        "discount_code": "",
        "action": "place",
        f"qty_{w.dish.pk}": 1,
    }


def _evidence(w, role):
    return {"file": _photo()}


# The rows' common cells.
ANYONE = "200 200 200 200 200 200 200 200"
SIGNED_IN = "401 200 200 200 200 200 200 200"  # everyone reads their own (maybe empty) list
PARTNERS = "401 403 403 200 200 403 403 403"  # any partner, each seeing their own restaurants
BUYER_READS = "401 200 404 404 404 404 404 200"  # the owner reads, suspended or not
BUYER_ACTS = "401 200+ 404 404 404 404 404 403"  # the owner acts, not when suspended
BUYER_OPENS = "401 201+ 404 404 404 404 404 403"
PARTNER_ACTS = "401 403 403 200+ 404 403 403 403"  # the objects' restaurant only
SUPPORT_READS = "401 403 403 403 403 200 200 403"
SUPPORT_ACTS = "401 403 403 403 403 200+ 200+ 403"
SUPERVISOR_ACTS = "401 403 403 403 403 403 200+ 403"

API = [
# operation                                    anon buyer other partn o.par agent super susp
R("POST /api/auth/token/",                      "200  200  200   200   200   200   200   200",
  body=_credentials, note="each asks for their own token; anonymous for the other buyer's"),
R("GET /api/credits/",                          SIGNED_IN),
R("GET /api/escalations/",                      SIGNED_IN),
R("GET /api/escalations/{id}/",                 BUYER_READS, id="escalation"),
R("POST /api/gateway/webhooks/",                "400  400  400   400   400   400   400   400",
  body={"id": "evt_1", "type": "refund.settled"},
  note="unsigned: the signature is its only credential, a token is none"),
R("GET /api/orders/",                           SIGNED_IN),
R("POST /api/orders/",                          "401  201+ 201+  201+  201+  201+  201+  403",
  body=_order_body, note="anyone signed in may order as a buyer"),
R("GET /api/orders/{id}/",                      BUYER_READS, id="placed"),
R("POST /api/orders/{id}/cancel/",              BUYER_ACTS, id="placed", body={}),
R("POST /api/orders/{id}/escalate/",            BUYER_OPENS, id="cancel_denied",
  body={"subject": "cancellation_denied", "statement": "I was in time."}),
R("POST /api/orders/{id}/report-missing/",      BUYER_ACTS, id="out", body={}),
R("GET /api/refund-requests/",                  SIGNED_IN),
R("POST /api/refund-requests/",                 BUYER_OPENS,
  body=lambda w, role: {"order": w.delivered.pk, "reason": "not_delivered"}),
R("GET /api/refund-requests/{id}/",             BUYER_READS, id="review"),
R("POST /api/refund-requests/{id}/escalate/",   BUYER_OPENS, id="denied",
  body={"statement": "It was not in the bag."}),
R("POST /api/refund-requests/{id}/evidence/",   BUYER_OPENS, id="review", body=_evidence,
  encoding="multipart"),
R("POST /api/refund-requests/{id}/reply/",      BUYER_OPENS, id="review",
  body={"body": "Here is more."}),
R("GET /api/restaurants/",                      ANYONE),
R("GET /api/restaurants/{id}/menu/",            ANYONE, id="roma"),
R("GET /api/seller/cancellation-requests/",     PARTNERS),
R("POST /api/seller/cancellation-requests/{order_id}/approve/", PARTNER_ACTS,
  order_id="requested", body={}),
R("POST /api/seller/cancellation-requests/{order_id}/deny/", PARTNER_ACTS,
  order_id="requested", body={"reason": "Already cooking."}),
R("GET /api/seller/ledger/",                    PARTNERS),
R("POST /api/seller/ledger/{id}/dispute/",      "401  403  403   201+  404   403   403   403",
  id="deduction", body={"note": "The bag was sealed."}),
R("GET /api/seller/orders/",                    PARTNERS),
R("POST /api/seller/orders/{id}/accept/",       PARTNER_ACTS, id="placed", body={}),
R("POST /api/seller/orders/{id}/cancel/",       PARTNER_ACTS, id="accepted",
  body={"reason": "item_unavailable", "explanation": "No mozzarella left."}),
R("POST /api/seller/orders/{id}/close/",        PARTNER_ACTS, id="served", body={}),
R("POST /api/seller/orders/{id}/delay/",        PARTNER_ACTS, id="out",
  body={"delay_cause": "traffic"}),
R("POST /api/seller/orders/{id}/deliver/",      PARTNER_ACTS, id="out", body={}),
R("POST /api/seller/orders/{id}/dispatch/",     PARTNER_ACTS, id="ready", body={}),
R("POST /api/seller/orders/{id}/hand-over/",    PARTNER_ACTS, id="ready_pickup", body={}),
R("POST /api/seller/orders/{id}/locate/",       PARTNER_ACTS, id="missing", body={}),
R("POST /api/seller/orders/{id}/mark-ready/",   PARTNER_ACTS, id="preparing", body={}),
R("POST /api/seller/orders/{id}/serve/",        PARTNER_ACTS, id="ready_dine_in", body={}),
R("POST /api/seller/orders/{id}/start-preparation/", PARTNER_ACTS, id="accepted", body={}),
R("GET /api/seller/refund-requests/",           PARTNERS),
R("POST /api/seller/refund-requests/{id}/verify/", PARTNER_ACTS, id="verify",
  body={"note": "It was packed."}),
R("POST /api/support/buyers/{user_id}/reinstate/", SUPERVISOR_ACTS, user_id="user:suspended_one",
  body={"note": "The bank ruled for them."}),
R("POST /api/support/buyers/{user_id}/suspend/", "401  403  403   403   403   403   201+  403",
  user_id="user:other_buyer", body={"reason": "Chargeback filed."}),
R("GET /api/support/chargebacks/",              SUPPORT_READS),
R("POST /api/support/chargebacks/",             "401  403  403   403   403   201+  201+  403",
  body=lambda w, role: {"order": w.delivered.pk, "amount": "5.00", "bank_reference": "B-2",
                        "reason_code": "13.1"}),
R("GET /api/support/chargebacks/{id}/",         SUPPORT_READS, id="chargeback"),
R("POST /api/support/chargebacks/{id}/accept/", SUPERVISOR_ACTS, id="chargeback", body={}),
R("GET /api/support/chargebacks/{id}/evidence.json", SUPPORT_READS, id="chargeback"),
R("GET /api/support/chargebacks/{id}/evidence.pdf", SUPPORT_READS, id="chargeback"),
R("POST /api/support/chargebacks/{id}/lost/",   SUPERVISOR_ACTS, id="chargeback", body={}),
R("POST /api/support/chargebacks/{id}/submit-evidence/", SUPPORT_ACTS, id="chargeback",
  body={"note": "Delivered at the door."}),
R("POST /api/support/chargebacks/{id}/won/",    SUPERVISOR_ACTS, id="chargeback", body={}),
R("GET /api/support/escalations/",              "401  403  403   403   403   403   200   403"),
R("POST /api/support/escalations/{id}/decide/", SUPERVISOR_ACTS, id="escalation",
  body={"outcome": "upheld", "explanation": "The photo shows it packed."}),
R("POST /api/support/escalations/{id}/take/",   SUPERVISOR_ACTS, id="escalation", body={}),
R("POST /api/support/incidents/",               "401  403  403   403   403   403   201+  403",
  body=lambda w, role: {"kind": "force_majeure", "title": "Storm", "restaurants": [w.blu.pk],
                        "starts_at": (NOW - dt.timedelta(hours=2)).isoformat(),
                        "ends_at": (NOW - dt.timedelta(hours=1)).isoformat()}),
R("GET /api/support/incidents/{id}/",           SUPPORT_READS, id="outage"),
R("POST /api/support/incidents/{id}/refund/",   "401  403  403   403   403   403   202+  403",
  id="outage", body={}, note="202: the bulk refund is queued"),
R("POST /api/support/refund-requests/{id}/approve/", SUPPORT_ACTS, id="review", body={}),
R("POST /api/support/refund-requests/{id}/ask-restaurant/", SUPPORT_ACTS, id="review",
  body={"question": "Was it packed?"}),
R("POST /api/support/refund-requests/{id}/deny/", SUPPORT_ACTS, id="review",
  body={"explanation": "It was packed."}),
R("POST /api/support/refund-requests/{id}/offer-credit/", SUPPORT_ACTS, id="review",
  body={"amount": "2.00", "explanation": "A small thing."}),
R("POST /api/support/refund-requests/{id}/offer-replacement/", SUPPORT_ACTS, id="review",
  body={"explanation": "A new tiramisu is on its way."}),
R("POST /api/support/refund-requests/{id}/partially-approve/", SUPPORT_ACTS, id="review",
  body={"amount": "3.00", "explanation": "Half of it was there."}),
R("POST /api/support/refund-requests/{id}/request-info/", SUPPORT_ACTS, id="review",
  body={"question": "Do you have a photo of the bag?"}),
R("POST /api/support/refund-requests/{id}/second-approval/", SUPERVISOR_ACTS, id="big", body={}),
]  # fmt: skip

# Pages: a page for signed-in users sends anonymous to sign in; a form refused by the state or
# the policy answers with why, on the page it came from (a redirect) or on the form again (400
# bad input, 409 a refusal), and changes nothing.
SIGNED_IN_PAGE = "login 200 200 200 200 200 200 200"
BUYER_PAGE = "login 200 404 404 404 404 404 200"
PARTNER_PAGE = "login 403 403 200 200 403 403 403"  # the portal's "not a partner" page
PARTNER_OBJ_PAGE = "login 404 404 200 404 404 404 404"
PARTNER_FORM = "login 404 404 302+ 404 404 404 404"
PARTNER_MENU_FORM = "login 403 403 302+ 404 403 403 403"  # no restaurant: "not a partner"

PAGES = [
# page                                         anon  buyer other partn o.par agent super susp
R("GET /",                                     "302  302   302   302   302   302   302   302"),
R("GET /api/schema/",                          ANYONE),
R("GET /api/docs/",                            ANYONE),
R("GET /policy/",                              ANYONE),
R("GET /accounts/signup/",                     "200  302   302   302   302   302   302   302",
  note="signed in: sent on"),
R("GET /accounts/login/",                      "200  302   302   302   302   302   302   302",
  note="signed in: sent on"),
R("POST /accounts/logout/",                    "302  302+  302+  302+  302+  302+  302+  302+",
  note="axes logs the sign-out"),
R("GET /restaurants/",                         ANYONE),
R("GET /restaurants/{slug}/",                  ANYONE, slug="=roma"),
R("GET /cart/",                                SIGNED_IN_PAGE),
R("POST /cart/",                               "login 302+ 302+  302+  302+  302+  302+  200",
  prepare=_fill_cart, body=_checkout, note="placing the cart's order; suspended: refused"),
R("POST /cart/add/",                           "login 302  302   302   302   302   302   302",
  body=lambda w, role: {"menu_item": w.dish.pk, "quantity": 1},
  note="the cart lives in the session: nothing is written"),
R("GET /orders/",                              SIGNED_IN_PAGE),
R("GET /orders/{order_id}/",                   BUYER_PAGE, order_id="placed"),
R("GET /orders/{order_id}/cancel/",            BUYER_PAGE, order_id="placed"),
R("POST /orders/{order_id}/cancel/",           "login 302+ 404  404   404   404   404   302",
  order_id="placed", body={"quote": "0.00"}),
R("POST /orders/{order_id}/missing/",          "login 302+ 404  404   404   404   404   302",
  order_id="out", body={}),
R("GET /notifications/",                       SIGNED_IN_PAGE),
R("POST /notifications/",                      "login 302+ 404  404   404   404   404   302+",
  body=lambda w, role: {"open": w.notification.pk},
  note="opening one's own notification marks it read, suspended or not"),
R("GET /wallet/",                              SIGNED_IN_PAGE),
R("GET /refunds/",                             SIGNED_IN_PAGE),
R("GET /refunds/new/{order_id}/",              BUYER_PAGE, order_id="delivered"),
R("POST /refunds/new/{order_id}/",             "login 302+ 404  404   404   404   404   409",
  order_id="delivered", body={"reason": "not_delivered", "description": "It never came.",
                              "preferred_method": "original", "action": "submit"}),
R("GET /refunds/{request_id}/",                BUYER_PAGE, request_id="review"),
R("POST /refunds/{request_id}/reply/",         "login 302+ 404  404   404   404   404   409",
  request_id="review", body={"body": "Here is more."},
  note="suspended: the form again with why (L-8.2), 409 as every page refusal"),
R("GET /refunds/evidence/{evidence_id}/",      "login 200  404   200   404   200   200   200",
  evidence_id="evidence", note="the order's restaurant and support see the claim's photos"),
R("GET /refunds/evidence/held/{photo_id}/",    BUYER_PAGE, photo_id="held_photo"),
R("GET /disputes/escalations/",                SIGNED_IN_PAGE),
R("GET /disputes/escalations/{escalation_id}/", BUYER_PAGE, escalation_id="escalation"),
R("POST /disputes/refund-requests/{request_id}/escalate/",
                                               "login 302+ 404  404   404   404   404   409",
  request_id="denied", body={"statement": "It was not in the bag."}),
R("POST /disputes/orders/{order_id}/escalate/", "login 302+ 404 404   404   404   404   409",
  order_id="cancel_denied", body={"subject": "cancellation_denied", "statement": "In time."}),
R("GET /disputes/evidence/{evidence_id}/",     "login 200  404   404   404   200   200   200",
  evidence_id="escalation_evidence", note="support sees the escalation's photos"),
R("GET /seller/",                              PARTNER_PAGE),
R("GET /seller/queue/fragment/",               PARTNER_PAGE, headers={"HX-Request": "true"},
  note="as htmx polls it"),
R("GET /seller/orders/{order_id}/",            PARTNER_OBJ_PAGE, order_id="placed"),
R("GET /seller/orders/{order_id}/cancel/",     PARTNER_OBJ_PAGE, order_id="accepted"),
R("POST /seller/orders/{order_id}/cancel/",    PARTNER_FORM, order_id="accepted",
  body={"reason": "item_unavailable", "explanation": "No mozzarella left."}),
R("POST /seller/orders/{order_id}/delay/",     PARTNER_FORM, order_id="out",
  body={"delay_cause": "traffic"}),
R("POST /seller/orders/{order_id}/locate/",    PARTNER_FORM, order_id="missing"),
R("POST /seller/orders/{order_id}/{action}/",  PARTNER_FORM, order_id="placed",
  action="=accept"),
R("GET /seller/cancellation-requests/",        PARTNER_PAGE),
R("POST /seller/cancellation-requests/{order_id}/approve/", PARTNER_FORM,
  order_id="requested"),
R("POST /seller/cancellation-requests/{order_id}/deny/", PARTNER_FORM, order_id="requested",
  body={"reason": "Already cooking."}),
R("GET /seller/verifications/",                PARTNER_PAGE),
R("POST /seller/verifications/{request_id}/answer/", PARTNER_FORM, request_id="verify",
  body={"note": "It was packed."}),
R("GET /seller/ledger/",                       PARTNER_PAGE),
R("GET /seller/ledger/{entry_id}/dispute/",    PARTNER_OBJ_PAGE, entry_id="deduction"),
R("POST /seller/ledger/{entry_id}/dispute/",   PARTNER_FORM, entry_id="deduction",
  body={"note": "The bag was sealed."}),
R("GET /seller/incidents/",                    PARTNER_PAGE),
R("POST /seller/incidents/{incident_id}/answer/", PARTNER_FORM, incident_id="allergen",
  body={"answer": "No nuts in our kitchen."}),
R("GET /seller/settings/",                     PARTNER_PAGE),
R("POST /seller/settings/",                    "login 403  403   302+  302+  403   403   403",
  body=lambda w, role: {"cancellation_window_minutes": 4, "cancellation_fee_percent": "12"},
  note="each partner sets their own restaurant's terms"),
R("GET /seller/menu/",                         PARTNER_PAGE),
R("POST /seller/menu/{item_id}/",              PARTNER_MENU_FORM, item_id="dish",
  body={"name": "Margherita", "price": "13.00", "allergens": ""}),
R("POST /seller/menu/{item_id}/sold-out/",     PARTNER_MENU_FORM, item_id="dish",
  body={"sold_out": "1"}),
]  # fmt: skip

# Admin: only staff get past its sign-in; what an agent and a supervisor see follows the groups'
# permissions (core.roles): agents view every lojix record, supervisors too, and neither sees
# the third-party apps' records (users, tokens, beat schedules, sign-in logs) or the stored
# idempotent responses, which are for superusers.
ADMIN_VIEW = "alogin alogin alogin alogin alogin 200 200 alogin"
ADMIN_NONE = "alogin alogin alogin alogin alogin 403 403 alogin"
ADMIN_SUPPORT_ACTS = "alogin alogin alogin alogin alogin 302+ 302+ alogin"
ADMIN_SUPERVISOR_ACTS = "alogin alogin alogin alogin alogin 403 302+ alogin"
ADMIN_SUPERVISOR_READS = "alogin alogin alogin alogin alogin 403 200 alogin"
ADMIN_SUPERVISOR_REFUSED = "alogin alogin alogin alogin alogin 403 302 alogin"
ADMIN_MODELS = {
    "auth.group": ADMIN_NONE, "auth.user": ADMIN_NONE, "authtoken.tokenproxy": ADMIN_NONE,
    "django_celery_beat.periodictask": ADMIN_NONE,
    "django_celery_beat.clockedschedule": ADMIN_NONE,
    "django_celery_beat.crontabschedule": ADMIN_NONE,
    "django_celery_beat.solarschedule": ADMIN_NONE,
    "django_celery_beat.intervalschedule": ADMIN_NONE,
    "axes.accessattempt": ADMIN_NONE, "axes.accesslog": ADMIN_NONE,
    "axes.accessfailurelog": ADMIN_NONE,
    "core.notification": ADMIN_VIEW, "core.idempotencyrecord": ADMIN_NONE,
    "core.outboxmessage": ADMIN_VIEW, "core.taskrun": ADMIN_VIEW,
    "orders.policyversion": ADMIN_VIEW, "orders.restaurant": ADMIN_VIEW,
    "orders.menuitem": ADMIN_VIEW, "orders.order": ADMIN_VIEW, "orders.orderitem": ADMIN_VIEW,
    "orders.orderevent": ADMIN_VIEW, "orders.payment": ADMIN_VIEW,
    "refunds.refund": ADMIN_VIEW, "refunds.restaurantledgerentry": ADMIN_VIEW,
    "refunds.refundrequest": ADMIN_VIEW, "refunds.refundrequestevent": ADMIN_VIEW,
    "refunds.refundmessage": ADMIN_VIEW, "refunds.refundevidence": ADMIN_VIEW,
    "refunds.heldphoto": ADMIN_VIEW, "refunds.refundrequestitem": ADMIN_VIEW,
    "refunds.deductiondispute": ADMIN_VIEW,
    "credits.creditgrant": ADMIN_VIEW, "credits.credittransaction": ADMIN_VIEW,
    "credits.discountcode": ADMIN_VIEW,
    "disputes.intervention": ADMIN_VIEW, "disputes.incident": ADMIN_VIEW,
    "disputes.escalation": ADMIN_VIEW, "disputes.chargeback": ADMIN_VIEW,
    "disputes.suspension": ADMIN_VIEW, "disputes.gatewayevent": ADMIN_VIEW,
}  # fmt: skip

ADMIN = [
# page                                         anon   buyer  other  partn  o.par  agent super susp
R("GET /admin/",                               ADMIN_VIEW),
R("GET /admin/approvals/",                     ADMIN_SUPERVISOR_READS),
R("POST /admin/approvals/{kind}/{object_id}/{verdict}/", ADMIN_SUPERVISOR_ACTS,
  kind="=refund-request", object_id="big", verdict="=approve"),
*(R(f"GET /admin/{label.replace('.', '/')}/", cells) for label, cells in ADMIN_MODELS.items()),
*(R(f"GET /admin/{label.replace('.', '/')}/{{object_id}}/change/", cells, object_id=f"@{label}")
  for label, cells in ADMIN_MODELS.items()),
R("GET /admin/auth/user/{id}/password/",       ADMIN_NONE, id="user:buyer"),
R("POST /admin/orders/policyversion/{object_id}/approve/", ADMIN_SUPERVISOR_REFUSED,
  object_id="@orders.policyversion", note="version 1 is in force: refused with a message"),
R("POST /admin/orders/policyversion/{object_id}/publish/", ADMIN_SUPERVISOR_REFUSED,
  object_id="@orders.policyversion", note="version 1 is in force: refused with a message"),
R("POST /admin/orders/order/{object_id}/advance/{action}/", ADMIN_SUPPORT_ACTS,
  object_id="placed", action="=accept"),
R("POST /admin/orders/order/{object_id}/cancellation-request/{decision}/", ADMIN_SUPPORT_ACTS,
  object_id="requested", decision="=approve"),
R("POST /admin/orders/order/{object_id}/cancel-for-restaurant/", ADMIN_SUPPORT_ACTS,
  object_id="accepted", body={"reason": "item_unavailable", "explanation": "No mozzarella."}),
R("POST /admin/orders/order/{object_id}/missing/{outcome}/", ADMIN_SUPPORT_ACTS,
  object_id="missing", outcome="=locate"),
R("POST /admin/refunds/refundrequest/{object_id}/decide/{decision}/", ADMIN_SUPPORT_ACTS,
  object_id="review", decision="=approve", body={"method": "original"}),
R("POST /admin/refunds/deductiondispute/{object_id}/decide/", ADMIN_SUPERVISOR_ACTS,
  object_id="deduction_dispute", body={"outcome": "upheld", "explanation": "Courier's loss."}),
R("POST /admin/disputes/intervention/{object_id}/decide/{decision}/", ADMIN_SUPPORT_ACTS,
  object_id="intervention", decision="=approve"),
R("POST /admin/disputes/incident/{object_id}/refund/", ADMIN_SUPERVISOR_ACTS,
  object_id="outage"),
R("POST /admin/disputes/incident/{object_id}/assign/", ADMIN_SUPPORT_ACTS,
  object_id="allergen", body=lambda w, role: {"assignee": w.users["agent"].pk}),
R("POST /admin/disputes/incident/{object_id}/work/", ADMIN_SUPPORT_ACTS, object_id="allergen",
  body={"findings": "A supplier's label was wrong."}),
R("POST /admin/disputes/escalation/{object_id}/decide/{decision}/", ADMIN_SUPERVISOR_ACTS,
  object_id="escalation", decision="=take"),
R("GET /admin/disputes/chargeback/{object_id}/evidence.{fmt}", ADMIN_VIEW,
  object_id="chargeback", fmt="=json"),
R("POST /admin/disputes/chargeback/{object_id}/act/{action}/", ADMIN_SUPPORT_ACTS,
  object_id="chargeback", action="=submit_evidence", body={"note": "Delivered."}),
]  # fmt: skip

TABLE = API + PAGES + ADMIN


# -- running a cell ----------------------------------------------------------------------------

REFUSED = {"400", "401", "403", "404", "405", "409", "login", "alogin"}
# The browser's session (a cart, a sign-out) is the client's state, not the product's records.
NOT_FINGERPRINTED = {"django_session"}


def _user_role(role: str) -> str:
    return "buyer" if role == "suspended" else role


def _path(w: World, row: Row) -> str:
    values = {}
    for name, spec in row.path.items():
        if spec.startswith("="):
            values[name] = spec[1:]
        elif spec.startswith("user:"):
            values[name] = w.users[spec[5:]].pk
        elif spec.startswith("@"):
            values[name] = _first_of(spec[1:]).pk
        else:
            values[name] = getattr(w, spec).pk
    return row.template.format(**values)


def _first_of(label: str):
    return apps.get_model(label).objects.order_by("pk").first()


def _client(w: World, row: Row, role: str):
    user_role = _user_role(role)
    if row.template.startswith("/api/"):
        client = APIClient(raise_request_exception=False)
        if role != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=f"Token {w.tokens[user_role]}")
        return client
    client = Client(raise_request_exception=False)
    if role != "anonymous":
        client.cookies = SimpleCookie({settings.SESSION_COOKIE_NAME: w.sessions[user_role]})
    return client


def _send(w: World, row: Row, role: str):
    client = _client(w, row, role)
    path = _path(w, row)
    body = row.body(w, role) if callable(row.body) else row.body
    headers = row.headers
    if row.prepare:
        row.prepare(w, client)
    if row.method == "GET":
        return client.get(path, headers=headers)
    if row.template.startswith("/api/"):
        return client.post(path, body, format=row.encoding, headers=headers)
    return client.post(path, body or {}, headers=headers)


def _cell(response) -> str:
    if response.headers.get("HX-Redirect", "").startswith(f"{resolve_url(settings.LOGIN_URL)}?"):
        return "login"  # htmx's redirect, for the page that polled
    if response.status_code in (301, 302):
        location = response["Location"]
        if location.startswith(f"{resolve_url(settings.LOGIN_URL)}?"):
            return "login"
        if location.startswith("/admin/login/?"):
            return "alogin"
        return "302"
    return str(response.status_code)


def _content(response) -> str:
    # A streamed file is closed by the test client once consumed.
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("utf-8", errors="replace")


def _fingerprint() -> dict:
    """A digest of every table's content, in one query (PostgreSQL)."""
    tables = sorted(set(connection.introspection.table_names()) - NOT_FINGERPRINTED)
    quote = connection.ops.quote_name
    sql = " UNION ALL ".join(
        f"SELECT %s, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
        f"FROM {quote(table)} AS t"
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, tables)
        return dict(cursor.fetchall())


def run_cell(w: World, row: Row, role: str) -> tuple[str, list[str], list[str]]:
    """The role's answer to the row's request, and what went wrong besides its status: a
    refused write that changed a table, a canary where it must not be. Rolled back."""
    problems, changed = [], []
    with _testcase_atomic():
        if role == "suspended":
            buyer_suspend(buyer_id=w.users["buyer"].pk, actor=w.users["supervisor"], reason="CB")
        writes = row.method != "GET"
        # Every cell starts from the world as built (the cells before it were rolled back).
        before = _fingerprint() if writes and role == "suspended" else w.fingerprint
        response = _send(w, row, role)
        cell = _cell(response)
        text = _content(response)
        problems += [
            f"{role}: the {name} canary in a {cell}"
            for name, canary in CANARIES.items()
            if canary in text and role not in SEEN_BY[name]
        ]
        # Where the buyer may act, the suspended buyer's 403 is the suspension's (D-10).
        buyer_may = row.cells.split()[ROLES.index("buyer")].rstrip("+") not in REFUSED
        if role == "suspended" and cell == "403" and buyer_may and row.template[:5] == "/api/":
            refusal = response.json()
            if (refusal["code"], refusal.get("clauses")) != ("account_suspended", ["L-8.2"]):
                problems.append(f"suspended: 403 {refusal}")
        if writes:
            after = _fingerprint()
            changed = sorted(t for t in after if after[t] != before[t])
            if changed and cell in REFUSED:
                problems.append(f"{role}: a refused {cell} changed {', '.join(changed)}")
            cell += "+" if changed else ""
        transaction.set_rollback(True)
    return cell, problems, changed


@pytest.mark.parametrize("row", TABLE, ids=[row.op for row in TABLE])
def test_cell(world, row):
    answers = {role: run_cell(world, row, role) for role in ROLES}
    actual = " ".join(answers[role][0] for role in ROLES)
    problems = [problem for _, found, _ in answers.values() for problem in found]
    written = {role: changed for role, (_, _, changed) in answers.items() if changed}
    assert (actual, problems) == (row.cells, []), (
        f"{row.op}\n expected {row.cells}\n actual   {actual}\n written  {written}"
    )


# -- the table covers everything -----------------------------------------------------------

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
# Admin routes without a row: Django's own views (sign-in and out, password change, the JS
# catalogue, autocomplete, "view on site", an app's index) and each model's add, delete and
# history pages, which the same model permissions guard as its change page (core.roles gives no
# role a delete permission).
ADMIN_DJANGO_OWN = {
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "autocomplete",
    "jsi18n",
    "view_on_site",
    "app_list",
}
ADMIN_LEFT_OUT_SUFFIXES = ("_add", "_delete", "_history")


def _schema_operations() -> set[str]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def _routes(resolver, prefix="", namespace=""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = ":".join(filter(None, [namespace, pattern.namespace or ""]))
            yield from _routes(pattern, route, inner if pattern.namespace else namespace)
        elif isinstance(pattern, URLPattern):
            yield route, namespace, pattern.name


def _shape(template: str) -> str:
    return re.sub(r"{\w+}", "{}", template)


def _page_routes(operations: set[str]) -> set[str]:
    """Every page's path template: the routes that are no schema operation (so the schema and
    its docs under /api/ too), and admin's as said above."""
    api_paths = {_shape(operation.split()[1]) for operation in operations}
    templates = set()
    for route, namespace, name in _routes(get_resolver()):
        template = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        if route.startswith("api/") and (not name or _shape(template) in api_paths):
            continue  # an operation, or the unnamed catch-all that answers the API's 404
        left_out = not name or name in ADMIN_DJANGO_OWN or name.endswith(ADMIN_LEFT_OUT_SUFFIXES)
        if namespace == "admin" and left_out:
            continue
        templates.add(template)
    return templates


def test_the_table_covers_every_schema_operation_and_every_page():
    """A new endpoint or page without a row here fails; so does a row for one that is gone."""
    operations = _schema_operations()
    pages = _page_routes(operations)
    api_rows = {row.op for row in TABLE if row.template not in pages}
    page_rows = {row.template for row in TABLE if row.template in pages}

    assert sorted(operations - api_rows) == [], "operations without a row"
    assert sorted(api_rows - operations) == [], "rows for no operation"
    assert sorted(pages - page_rows) == [], "pages without a row"
    assert sorted(page_rows - pages) == [], "rows for no page"
    assert len({row.op for row in TABLE}) == len(TABLE), "one row per operation"
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered == set(ADMIN_MODELS), "every model admin lists"


def test_the_canaries_reach_their_owner(world):
    """The leak check looks for strings that really are in their owners' answers."""
    answers = {
        "address": ("buyer", f"/api/orders/{world.placed.pk}/"),
        "done_address": ("buyer", f"/api/orders/{world.delivered.pk}/"),
        "claim": ("buyer", f"/api/refund-requests/{world.review.pk}/"),
        "statement": ("buyer", f"/api/escalations/{world.escalation.pk}/"),
        "credit": ("buyer", "/api/credits/"),
        "dispute_note": ("partner", "/api/seller/ledger/"),
    }
    assert set(answers) == set(CANARIES)
    for name, (role, path) in answers.items():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens[role]}")
        response = client.get(path)
        assert response.status_code == 200, name
        assert CANARIES[name] in response.content.decode(), name
