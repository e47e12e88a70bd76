"""Schemathesis over `/api/schema/` (issue 11 §2): every operation of the schema, called as a
buyer, a restaurant partner and a support agent with the schema's examples, schemathesis's
coverage cases (boundary values, missing and wrong-typed inputs, other content types,
OPTIONS) and a bounded number of generated requests, valid and invalid, answers as the schema
says. Schemathesis's own checks prove it: no 5xx (`not_a_server_error`), a documented status
code, content type and headers (`status_code_conformance`, `content_type_conformance`,
`response_headers_conformance`) and a body that validates against the schema of its status
code (`response_schema_conformance`), errors included.

A valid request with an id in its path is sent a second time with the id of a real object
(an open order, a refund request, a chargeback...), so the success bodies of detail and action
endpoints are checked too, not only their 404s. An `Idempotency-Key` the API accepts is made
unique per request, so each request reaches its handler instead of being refused as a key
reused for another body (422); keys the API refuses are sent as generated.

In-process through Django's WSGI application: the same stack as a live server without the
threads, so it runs inside the test's transaction; the ledgers of D-7 are checked after it."""

import itertools
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.idempotency import HEADER as IDEMPOTENCY_HEADER
from core.idempotency import MAX_KEY_LENGTH
from disputes.services.chargebacks import chargeback_open
from disputes.services.escalations import escalation_open
from refunds.models import RestaurantLedgerEntry
from refunds.services.decisions import refund_request_deny
from refunds.services.requests import refund_request_submit
from tests.conftest import advance, place_order

pytestmark = pytest.mark.django_db

# Per operation and role, on top of the examples and coverage cases (about 35 more): about 70 s
# for the three roles and the 63 operations, inside the CI budget of 120 s.
EXAMPLES_PER_OPERATION = 3
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
DELIVER = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")
# Which object a path's id names, by the path's start.
OBJECT_BY_PATH = {
    "/api/restaurants/": "restaurant",
    "/api/orders/": "order",
    "/api/seller/orders/": "order",
    "/api/seller/cancellation-requests/": "order",
    "/api/refund-requests/": "refund_request",
    "/api/seller/refund-requests/": "refund_request",
    "/api/support/refund-requests/": "refund_request",
    "/api/support/chargebacks/": "chargeback",
    "/api/escalations/": "escalation",
    "/api/support/escalations/": "escalation",
    "/api/support/buyers/": "buyer",
    "/api/seller/ledger/": "ledger_entry",
}

# Of the methods an operation does not have, only OPTIONS runs code of the view's own (DRF's
# metadata); the others are DRF's one 405, not worth their share of the time budget.
CONFIG = schemathesis.Config.from_dict(
    {"phases": {"coverage": {"unexpected-methods": ["OPTIONS"]}}}
)
# Loaded at collection: the schema view reads no rows.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=CONFIG)
fresh_keys = itertools.count(1)


@pytest.fixture(autouse=True)
def connection_kept_open():
    """As Django's test Client does: a finished request must not close the test's
    connection (and with it the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(buyer, partner, agent):
    """Authorization headers by role."""
    return {
        role: {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}
        for role, user in {"buyer": buyer, "partner": partner, "agent": agent}.items()
    }


@pytest.fixture
def objects(buyer, agent, restaurant, menu):
    """Ids of real objects by kind: an open order; a delivered one with a refund request under
    review and a chargeback; and the escalation of a denied request."""
    order = place_order(buyer, restaurant, {menu["Margherita"]: 1})
    delivered = advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 1}), *DELIVER)
    claim = refund_request_submit(order_id=delivered.pk, actor=buyer, reason="wrong_order")
    denied = advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 1}), *DELIVER)
    denied_claim = refund_request_submit(order_id=denied.pk, actor=buyer, reason="wrong_order")
    refund_request_deny(
        request_id=denied_claim.pk, actor=agent, explanation="The photo shows what you ordered."
    )
    escalation = escalation_open(
        request_id=denied_claim.pk, actor=buyer, statement="The tiramisu was not in the bag."
    )
    chargeback, _ = chargeback_open(
        order_id=delivered.pk,
        amount=Decimal("1.00"),
        bank_reference="FUZZ-1",
        reason_code="4855",
        actor=agent,
    )
    return {
        "restaurant": restaurant.pk,
        "order": order.pk,
        "refund_request": claim.pk,
        "chargeback": chargeback.pk,
        "escalation": escalation.pk,
        "buyer": buyer.pk,
        "ledger_entry": RestaurantLedgerEntry.objects.filter(restaurant=restaurant).first().pk,
    }


def with_real_ids(case, objects):
    """The case again with its path's ids naming real objects, or None: for a valid case of
    the operation's own method with integer ids that name a kind of object known here."""
    path = case.operation.path
    kind = next((kind for start, kind in OBJECT_BY_PATH.items() if path.startswith(start)), None)
    ids = case.path_parameters or {}
    valid = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
    if (
        kind is None
        or not ids
        or not valid
        or case.method.upper() != case.operation.method.upper()
        or not all(type(value) is int for value in ids.values())
    ):
        return None
    return case.operation.Case(
        path_parameters=dict.fromkeys(ids, objects[kind]),
        headers=case.headers,
        cookies=case.cookies,
        query=case.query,
        body=case.body,
        media_type=case.media_type,
    )


def unique_key(case) -> dict:
    """A fresh `Idempotency-Key` if the case's is one the API accepts, else nothing."""
    key = (case.headers or {}).get(IDEMPOTENCY_HEADER)
    accepted = (
        isinstance(key, str)
        and 0 < len(key) <= MAX_KEY_LENGTH
        and key.isprintable()
        and key == key.strip()
    )
    return {IDEMPOTENCY_HEADER: f"fuzz-{next(fresh_keys)}"} if accepted else {}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_as_its_schema_says(case, tokens, objects):
    cases = [case, with_real_ids(case, objects)]
    for sent in filter(None, cases):
        for role, headers in tokens.items():
            try:
                sent.call_and_validate(headers=headers | unique_key(sent), checks=CHECKS)
            except FailureGroup as failures:
                failures.add_note(f"Called as the {role}.")
                raise
