"""Schemathesis over `/api/schema/` (issue 11 §2): for every operation, a few generated
requests (valid and invalid bodies, odd path ids) as a buyer, a partner and a support agent.
None may answer 5xx. In-process through Django's WSGI application: the same stack as a live
server without the threads, so it runs inside the test's transaction."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

from tests.conftest import place_order

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 5


# Loaded at collection: the schema view reads no rows.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


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
def tokens(buyer, partner, agent, restaurant, menu):
    """Authorization headers by role, with an order so that ids 1.. often exist."""
    place_order(buyer, restaurant, {menu["Margherita"]: 1})
    return {
        role: {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}
        for role, user in {"buyer": buyer, "partner": partner, "agent": agent}.items()
    }


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_operation_answers_5xx_to_generated_input(case, tokens):
    for role, headers in tokens.items():
        response = case.call(headers=headers)
        assert response.status_code < 500, (role, case.method, case.formatted_path, response.text)
