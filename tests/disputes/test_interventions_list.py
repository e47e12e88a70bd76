"""The one list of interventions (K-OV) in admin: every case where the platform stepped in,
with filters by kind, status and age, the one action each open case needs (a link to where it
is done) and, once resolved, its resolution."""

import datetime as dt
import html
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from disputes.admin import NEXT_ACTIONS
from disputes.models import Intervention
from disputes.services.interventions import intervention_open, interventions_resolve_for_orders
from refunds.services.requests import refund_request_submit
from tests.conftest import advance, place_order
from tests.refunds.test_deduction_disputes import deducted, dispute

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:disputes_intervention_changelist")
Kind = Intervention.Kind


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def row_of(page: str, case: Intervention) -> str:
    link = page.index(reverse("admin:disputes_intervention_change", args=[case.pk]))
    start = page.rindex("<tr", 0, link)
    return page[start : page.index("</tr>", start)]


def next_action(page: str, case: Intervention) -> tuple[str, str] | None:
    match = re.search(r'class="next-action" href="([^"]+)">([^<]+)<', row_of(page, case))
    return (html.unescape(match.group(2)), html.unescape(match.group(1))) if match else None


@pytest.fixture
def delivered(now, buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 1, menu["Tiramisu"]: 1})
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


@pytest.fixture
def claim(delivered, buyer):
    return refund_request_submit(order_id=delivered.pk, actor=buyer, reason="wrong_order")


def case_of(kind, order, *, refund_request=None, opened_days_ago=0) -> Intervention:
    return intervention_open(
        order=order,
        kind=kind,
        summary=f"A {kind} case",
        refund_request=refund_request,
        now=timezone.now() - dt.timedelta(days=opened_days_ago),
    )


@pytest.mark.parametrize(
    ("kind", "label", "target"),
    [
        (
            Kind.UNANSWERED_CANCELLATION,
            "Approve or deny the cancellation request",
            lambda case: reverse("admin:disputes_intervention_change", args=[case.pk]),
        ),
        (
            Kind.REVIEW_OVERDUE,
            "Decide the refund request",
            lambda case: reverse(
                "admin:refunds_refundrequest_change", args=[case.refund_request_id]
            ),
        ),
        (
            Kind.UNANSWERED_VERIFICATION,
            "Decide the refund request without the restaurant",
            lambda case: reverse(
                "admin:refunds_refundrequest_change", args=[case.refund_request_id]
            ),
        ),
        (
            Kind.REFUND_FAILED,
            "Retry the refund or pay it as account credit",
            lambda case: (
                reverse("admin:refunds_refund_changelist")
                + f"?q={case.order_id}&status__exact=failed"
            ),
        ),
        (
            Kind.MISSING_ORDER,
            "Locate the order or send a replacement",
            lambda case: reverse("admin:orders_order_change", args=[case.order_id]),
        ),
        (
            Kind.DEDUCTION_DISPUTE,
            "Uphold or reject the restaurant's dispute (supervisor)",
            lambda case: (
                reverse("admin:refunds_deductiondispute_changelist")
                + f"?q={case.order_id}&status__exact=open"
            ),
        ),
    ],
)
def test_each_open_case_links_to_the_one_action_it_needs(
    agent, delivered, claim, kind, label, target
):
    case = case_of(kind, delivered, refund_request=claim)

    page = client_for(agent).get(CHANGELIST).content.decode()

    assert next_action(page, case) == (label, target(case))
    assert client_for(agent).get(target(case)).status_code == 200  # the link leads somewhere


def test_every_kind_has_its_action():
    assert set(NEXT_ACTIONS) == set(Kind)


def test_a_resolved_case_shows_its_resolution_and_no_action(agent, supervisor, delivered):
    case = case_of(Kind.MISSING_ORDER, delivered)
    interventions_resolve_for_orders(
        order_ids=[delivered.pk],
        kind=Kind.MISSING_ORDER,
        actor=supervisor,
        action="Located and delivered.",
        now=timezone.now(),
    )

    page = client_for(agent).get(CHANGELIST).content.decode()

    row = row_of(page, case)
    assert next_action(page, case) is None
    assert "Located and delivered. (boss, " in row


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["fresh", "days", "old", "done"]),
        ({"age": "today"}, ["fresh"]),
        ({"age": "days"}, ["days", "done"]),
        ({"age": "older"}, ["old"]),
        ({"status__exact": "resolved"}, ["done"]),
        ({"kind__exact": "deduction_dispute"}, ["old"]),
        ({"kind__exact": "missing_order", "age": "days"}, ["days"]),
    ],
)
def test_the_list_filters_by_kind_status_and_age(
    agent, buyer, restaurant, menu, delivered, params, expected
):
    orders = [place_order(buyer, restaurant) for _ in range(3)]
    cases = {
        "old": case_of(Kind.DEDUCTION_DISPUTE, delivered, opened_days_ago=5),
        "days": case_of(Kind.MISSING_ORDER, orders[0], opened_days_ago=2),
        "fresh": case_of(Kind.REFUND_FAILED, orders[1]),
        "done": case_of(Kind.REVIEW_OVERDUE, orders[2], opened_days_ago=1.5),
    }
    interventions_resolve_for_orders(
        order_ids=[orders[2].pk],
        kind=Kind.REVIEW_OVERDUE,
        actor=None,
        action="Decided.",
        now=timezone.now(),
    )

    listed = client_for(agent).get(CHANGELIST, params).context["cl"].result_list

    names = {case.pk: name for name, case in cases.items()}
    assert sorted(names[case.pk] for case in listed) == sorted(expected)


def test_a_disputed_deduction_is_one_case_until_a_supervisor_decides(
    now, buyer, restaurant, menu, agent, partner, supervisor
):
    entry = deducted(buyer, restaurant, menu, agent)
    opened = dispute(entry, partner)
    case = Intervention.objects.get(kind=Kind.DEDUCTION_DISPUTE)
    page = client_for(supervisor).get(CHANGELIST).content.decode()
    _, link = next_action(page, case)

    found = client_for(supervisor).get(link)

    assert list(found.context["cl"].result_list) == [opened]
    client_for(supervisor).post(
        reverse("admin:refunds_deductiondispute_decide", args=[opened.pk]),
        {"outcome": "rejected", "explanation": "The photo shows the bag without it."},
    )
    case.refresh_from_db()
    assert (case.status, case.resolved_by) == ("resolved", supervisor)
    page = client_for(agent).get(CHANGELIST).content.decode()
    assert "Rejected: deduction stands (boss, " in row_of(page, case)


def test_an_open_case_page_shows_its_next_action(agent, delivered, claim):
    case = case_of(Kind.REVIEW_OVERDUE, delivered, refund_request=claim)

    page = client_for(agent).get(reverse("admin:disputes_intervention_change", args=[case.pk]))

    panel = re.search(r'<p class="next-action-panel">(.*?)</p>', page.content.decode(), re.S)
    assert "Decide the refund request" in panel.group(1)
    assert reverse("admin:refunds_refundrequest_change", args=[claim.pk]) in panel.group(1)
