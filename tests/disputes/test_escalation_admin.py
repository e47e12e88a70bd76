"""The supervisors' escalation queue in admin (L-8.1, K-DR): ordered by due date, undecided
first; every escalation action by agent vs supervisor as a table; decisions through the
service, refusals as messages that change nothing."""

import datetime as dt
import re
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from disputes.models import Escalation
from disputes.services.escalations import escalation_decide, escalation_open
from refunds.models import Refund
from tests.conftest import NOW
from tests.disputes.escalation_setup import denied_request

pytestmark = pytest.mark.django_db
STATEMENT = "The tiramisu was not in the bag."
EXPLAINED = "The driver confirms the bag was short."
CHANGELIST = reverse("admin:disputes_escalation_changelist")


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def escalation(buyer, restaurant, menu, agent):
    request = denied_request(buyer, restaurant, menu, agent)
    return escalation_open(request_id=request.pk, actor=buyer, statement=STATEMENT)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def change_url(escalation) -> str:
    return reverse("admin:disputes_escalation_change", args=[escalation.pk])


def decide_url(escalation, decision) -> str:
    return reverse("admin:disputes_escalation_decide", args=[escalation.pk, decision])


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


# -- who may do what, as a table --------------------------------------------------------------

# action -> (method, url, body, agent's status, supervisor's status)
ACTIONS = {
    "queue": ("get", lambda e: CHANGELIST, None, 200, 200),
    "escalation page": ("get", change_url, None, 200, 200),
    "take for review": ("post", lambda e: decide_url(e, "take"), {}, 403, 302),
    "uphold": ("post", lambda e: decide_url(e, "upheld"), {"explanation": EXPLAINED}, 403, 302),
    "overturn": (
        "post",
        lambda e: decide_url(e, "overturned"),
        {"explanation": EXPLAINED, "amount": "6.00"},
        403,
        302,
    ),
    "add": ("get", lambda e: reverse("admin:disputes_escalation_add"), None, 403, 403),
    "delete": (
        "post",
        lambda e: reverse("admin:disputes_escalation_delete", args=[e.pk]),
        {"post": "yes"},
        403,
        403,
    ),
}


@pytest.mark.parametrize("role", ["agent", "supervisor"])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_escalation_actions_by_agent_and_supervisor(request, escalation, role, action):
    method, url, body, agent_status, supervisor_status = ACTIONS[action]
    user = request.getfixturevalue(role)

    response = getattr(signed_in(user), method)(url(escalation), body or {})

    expected = agent_status if role == "agent" else supervisor_status
    assert response.status_code == expected
    escalation.refresh_from_db()
    if role == "agent" or action in ("queue", "escalation page", "add", "delete"):
        assert escalation.status == "open"
        assert Refund.objects.count() == 0
        assert Escalation.objects.count() == 1
    elif action == "take for review":
        assert (escalation.status, escalation.reviewer) == ("under_review", user)
    elif action == "uphold":
        assert (escalation.status, Refund.objects.count()) == ("upheld", 0)
    else:
        assert (escalation.status, escalation.amount) == ("overturned", D("6.00"))
        assert [r.amount for r in Refund.objects.all()] == [D("6.00")]


def test_the_decision_panel_is_only_for_supervisors(escalation, agent, supervisor):
    supervisor_page = signed_in(supervisor).get(change_url(escalation)).content.decode()
    agent_page = signed_in(agent).get(change_url(escalation)).content.decode()

    assert re.findall(r'data-decision="(\w+)"', supervisor_page) == [
        "take",
        "upheld",
        "overturned",
    ]
    assert 'value="33.99"' in supervisor_page  # the default new total: all still refundable
    assert STATEMENT in supervisor_page
    assert re.findall(r'data-decision="(\w+)"', agent_page) == []
    assert "a supervisor decides it" in agent_page


# -- the queue ----------------------------------------------------------------------------------


def test_the_queue_is_ordered_by_due_date_undecided_first(
    clock, buyer, restaurant, menu, agent, supervisor
):
    first = denied_request(buyer, restaurant, menu, agent)
    second = denied_request(buyer, restaurant, menu, agent)
    decided = escalation_open(request_id=second.pk, actor=buyer, statement=STATEMENT)
    escalation_decide(
        escalation_id=decided.pk, actor=supervisor, outcome="upheld", explanation=EXPLAINED
    )
    clock.shift(dt.timedelta(days=3))  # Monday 23 Nov
    later = escalation_open(request_id=first.pk, actor=buyer, statement=STATEMENT)
    third = denied_request(buyer, restaurant, menu, agent)
    clock.shift(dt.timedelta(hours=-1))
    earlier = escalation_open(request_id=third.pk, actor=buyer, statement=STATEMENT)
    clock.shift(dt.timedelta(hours=1))

    page = signed_in(agent).get(CHANGELIST).content.decode()

    rows = [int(pk) for pk in re.findall(r'name="_selected_action" value="(\d+)"', page)] or [
        int(pk) for pk in re.findall(r"/admin/disputes/escalation/(\d+)/change/", page)
    ]
    ordered = list(dict.fromkeys(rows))
    assert ordered == [earlier.pk, later.pk, decided.pk]


def test_the_due_filter(clock, escalation, supervisor):
    clock.move_to(dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC))
    soon = signed_in(supervisor).get(CHANGELIST, {"due": "soon"}).content.decode()
    overdue = signed_in(supervisor).get(CHANGELIST, {"due": "overdue"}).content.decode()

    assert f"/admin/disputes/escalation/{escalation.pk}/change/" in soon
    assert f"/admin/disputes/escalation/{escalation.pk}/change/" not in overdue


def test_a_refused_decision_is_a_message_and_changes_nothing(escalation, supervisor):
    client = signed_in(supervisor)

    response = client.post(
        decide_url(escalation, "overturned"), {"explanation": EXPLAINED, "amount": "99.00"}
    )

    assert response.status_code == 302
    ((level, message),) = messages_of(response)
    assert level == "error"
    assert "The new total must be more than 0.00 USD and at most 33.99 USD." in message
    escalation.refresh_from_db()
    assert escalation.status == "open"
    assert Refund.objects.count() == 0
    no_explanation = client.post(decide_url(escalation, "upheld"), {"explanation": ""})
    assert messages_of(no_explanation)[0][0] == "error"
    assert Escalation.objects.get().status == "open"
