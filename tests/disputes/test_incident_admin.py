"""Incidents in admin (L-10): a supervisor enters an outage, its page shows the dry run (orders,
money, split per restaurant) having written nothing, the start button runs the bulk refund and
the page then shows its progress and summary; support assigns, works and closes an allergen
investigation and the restaurant answers in the seller portal. Who may do what, agent vs
supervisor, as a table."""

import datetime as dt
import re
from decimal import Decimal as D

import pytest
import time_machine
from django.apps import apps
from django.conf import settings
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from core.models import Notification
from disputes.models import Incident
from disputes.services.outages import incident_create, outage_refund_start
from refunds.models import Refund
from refunds.services.requests import refund_request_submit
from tests.conftest import NOW, advance, place_order, refunds_processed
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

START, END = NOW, NOW + dt.timedelta(minutes=30)
AFTER = NOW + dt.timedelta(hours=1)
CUR = settings.LOJIX_CURRENCY
ADD = reverse("admin:disputes_incident_add")
CHANGELIST = reverse("admin:disputes_incident_changelist")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(name: str, incident: Incident) -> str:
    return reverse(f"admin:disputes_incident_{name}", args=[incident.pk])


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def counts() -> dict:
    return {m._meta.label: m.objects.count() for m in apps.get_models()}


@pytest.fixture
def clock():
    with time_machine.travel(AFTER) as traveller:
        yield traveller


@pytest.fixture
def orders(buyer, restaurant, menu):
    with time_machine.travel(START + dt.timedelta(minutes=5), tick=False):
        return [
            place_order(buyer, restaurant, {menu["Margherita"]: 1}),  # 12.50 + 2.99
            place_order(buyer, restaurant, {menu["Tiramisu"]: 1}),  # 6.00 + 2.99
        ]


def entered(supervisor, **kwargs) -> Incident:
    return incident_create(
        actor=supervisor,
        kind=kwargs.pop("kind", "outage"),
        title="Payments down",
        starts_at=START,
        ends_at=kwargs.pop("ends_at", END),
        restaurant_ids=[],
        now=AFTER,
        **kwargs,
    )


@pytest.fixture
def allergen(buyer, restaurant, menu):
    with time_machine.travel(NOW):
        order = advance(
            place_order(buyer, restaurant, {menu["Tiramisu"]: 1}),
            "accept",
            "start_preparation",
            "mark_ready",
            "dispatch",
            "deliver",
        )
        refund_request_submit(
            order_id=order.pk,
            actor=buyer,
            reason="allergic_reaction",
            description="Nuts in the tiramisu",
        )
    return Incident.objects.get(kind="allergen")


def test_a_supervisor_enters_an_outage_sees_the_dry_run_then_starts_and_watches_it(
    clock, orders, supervisor, restaurant, django_capture_on_commit_callbacks
):
    client = client_for(supervisor)
    form = {
        "kind": "outage",
        "title": "Payments down",
        "description": "The card processor timed out",
        "starts_at_0": START.strftime("%Y-%m-%d"),
        "starts_at_1": START.strftime("%H:%M:%S"),
        "ends_at_0": END.strftime("%Y-%m-%d"),
        "ends_at_1": END.strftime("%H:%M:%S"),
        "restaurants": [restaurant.pk],
    }

    added = client.post(ADD, form)

    incident = Incident.objects.get()
    assert added.status_code == 302
    assert added.url == url("change", incident)
    assert (incident.kind, incident.status, incident.opened_by) == ("outage", "open", supervisor)
    assert list(incident.restaurants.all()) == [restaurant]
    before = counts()
    page = client.get(url("change", incident)).content.decode()
    assert counts() == before  # the dry run wrote nothing
    dry_run = re.sub(r"\s+", " ", re.search(r'<p id="dry-run">(.*?)</p>', page, re.S).group(1))
    assert "<strong>2 affected orders</strong>" in dry_run
    assert f"<strong>24.48 {CUR}</strong>" in dry_run
    assert f'<td>Trattoria Roma</td><td class="money">2</td><td class="money">24.48 {CUR}' in (page)
    assert 'id="start-bulk-refund"' in page
    assert not Refund.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(url("refund", incident))
    refunds_processed()

    assert started.status_code == 302
    assert messages_of(started) == [
        (
            "success",
            "System outage: Payments down: bulk refund started for 2 orders; the progress below "
            "updates itself.",
        )
    ]
    page = client.get(url("change", incident)).content.decode()
    assert f"Finished: <strong>2 of 2 orders refunded, 24.48 {CUR}</strong>" in page
    assert f"2 of 2 affected orders refunded in full, 24.48 {CUR} (L-10)" in page
    assert Refund.objects.count() == 2


def test_while_it_runs_the_page_shows_progress_and_reloads_itself(
    clock, orders, supervisor, django_capture_on_commit_callbacks
):
    incident = entered(supervisor)
    outage_refund_start(incident_id=incident.pk, actor=supervisor, now=AFTER)  # no worker yet

    page = client_for(supervisor).get(url("change", incident)).content.decode()
    listed = client_for(supervisor).get(CHANGELIST).content.decode()

    assert '<meta http-equiv="refresh" content="2">' in page
    assert f"Refunding: <strong>0 of 2 orders refunded, 0.00 {CUR}</strong>" in page
    assert "Resume the bulk refund" in page
    assert f"0 of 2 orders refunded, 0.00 {CUR}" in listed


def test_an_agent_sees_the_dry_run_but_cannot_start_it(clock, orders, supervisor, agent):
    incident = entered(supervisor)

    page = client_for(agent).get(url("change", incident)).content.decode()
    refused = client_for(agent).post(url("refund", incident))

    assert 'id="dry-run"' in page
    assert 'id="start-bulk-refund"' not in page
    assert "Only a supervisor starts the bulk refund." in page
    assert refused.status_code == 403
    incident.refresh_from_db()
    assert incident.status == "open"
    assert not Refund.objects.exists()


def test_an_outage_not_over_is_refused_on_the_form_and_nothing_is_entered(clock, supervisor):
    later = AFTER + dt.timedelta(hours=1)
    response = client_for(supervisor).post(
        ADD,
        {
            "kind": "outage",
            "title": "Payments down",
            "starts_at_0": START.strftime("%Y-%m-%d"),
            "starts_at_1": START.strftime("%H:%M:%S"),
            "ends_at_0": later.strftime("%Y-%m-%d"),
            "ends_at_1": later.strftime("%H:%M:%S"),
        },
    )

    assert response.status_code == 200
    assert "An outage is refunded once it is over" in response.content.decode()
    assert not Incident.objects.exists()


def test_support_assigns_works_and_closes_an_allergen_investigation(
    clock, allergen, agent, supervisor, partner, restaurant
):
    client = client_for(agent)
    told_at_opening = Notification.objects.get(user=partner, title__startswith="Allergen")
    assert told_at_opening.url == reverse("seller:incidents")

    assigned = client.post(url("assign", allergen), {"assignee": supervisor.pk})
    saved = client.post(url("work", allergen), {"findings": "Label missed hazelnut.", "save": ""})
    allergen.refresh_from_db()
    assert (allergen.status, allergen.assigned_to, allergen.findings) == (
        "investigating",
        supervisor,
        "Label missed hazelnut.",
    )
    assert Notification.objects.filter(user=supervisor, title__startswith="Assigned").count() == 1
    closed = client.post(
        url("work", allergen), {"findings": "Label missed hazelnut; menu fixed.", "close": ""}
    )

    assert [r.status_code for r in (assigned, saved, closed)] == [302, 302, 302]
    allergen.refresh_from_db()
    assert (allergen.status, allergen.closed_by) == ("closed", agent)
    assert AFTER <= allergen.closed_at < AFTER + dt.timedelta(minutes=1)
    told = Notification.objects.get(user=partner, title__startswith="Allergen investigation closed")
    assert told.body == "What we found (L-10): Label missed hazelnut; menu fixed."
    again = client.post(url("work", allergen), {"findings": "More", "close": ""})
    assert messages_of(again)[-1][0] == "error"  # closed is final
    page = client.get(url("change", allergen)).content.decode()
    assert 'id="work-investigation"' not in page


def test_the_restaurant_answers_in_the_seller_portal_and_support_sees_it(
    clock, allergen, agent, supervisor, partner, other_partner
):
    client_for(agent).post(url("assign", allergen), {"assignee": agent.pk})
    portal = client_for(partner)

    listed = portal.get(reverse("seller:incidents")).content.decode()
    answered = portal.post(
        reverse("seller:incident-answer", args=[allergen.pk]),
        {"answer": "Our supplier changed the praline."},
    )
    elsewhere = client_for(other_partner).post(
        reverse("seller:incident-answer", args=[allergen.pk]), {"answer": "Not us"}
    )

    assert f'id="investigation-{allergen.pk}"' in listed
    assert "Nuts in the tiramisu" in listed
    assert "Waiting for your answer" in listed
    assert answered.status_code == 302
    assert elsewhere.status_code == 404
    allergen.refresh_from_db()
    assert (allergen.restaurant_answer, allergen.restaurant_answered_by) == (
        "Our supplier changed the praline.",
        partner,
    )
    assert Notification.objects.get(user=agent, title__startswith="The restaurant answered")
    page = client_for(agent).get(url("change", allergen)).content.decode()
    assert "Our supplier changed the praline." in page
    not_partner = client_for(UserFactory()).get(reverse("seller:incidents"))
    assert not_partner.status_code == 403


# -- who may do what, as a table ---------------------------------------------------------------

# action: (agent, supervisor) -> the status code each gets
PERMISSIONS = {
    "list incidents": (200, 200),
    "view an incident": (200, 200),
    "open the add form": (403, 200),
    "enter an outage": (403, 302),
    "start a bulk refund": (403, 302),
    "assign an investigation": (302, 302),
    "save findings": (302, 302),
    "close an investigation": (302, 302),
    "delete an incident": (403, 403),
}


def _act(action, client, outage, allergen, restaurant, other):
    entry = {
        "kind": "outage",
        "title": "Another outage",
        "starts_at_0": START.strftime("%Y-%m-%d"),
        "starts_at_1": START.strftime("%H:%M:%S"),
        "ends_at_0": END.strftime("%Y-%m-%d"),
        "ends_at_1": END.strftime("%H:%M:%S"),
    }
    return {
        "list incidents": lambda: client.get(CHANGELIST),
        "view an incident": lambda: client.get(url("change", outage)),
        "open the add form": lambda: client.get(ADD),
        "enter an outage": lambda: client.post(ADD, entry),
        "start a bulk refund": lambda: client.post(url("refund", outage)),
        "assign an investigation": lambda: client.post(
            url("assign", allergen), {"assignee": other.pk}
        ),
        "save findings": lambda: client.post(url("work", allergen), {"findings": "x", "save": ""}),
        "close an investigation": lambda: client.post(
            url("work", allergen), {"findings": "x", "close": ""}
        ),
        "delete an incident": lambda: client.post(url("delete", outage), {"post": "yes"}),
    }[action]()


@pytest.mark.parametrize("role", ["agent", "supervisor"])
@pytest.mark.parametrize("action", PERMISSIONS)
def test_permission_table(
    clock,
    orders,
    allergen,
    agent,
    supervisor,
    restaurant,
    role,
    action,
    django_capture_on_commit_callbacks,
):
    outage = entered(supervisor)
    client = client_for(agent if role == "agent" else supervisor)
    before = counts()

    with django_capture_on_commit_callbacks(execute=True):
        response = _act(action, client, outage, allergen, restaurant, supervisor)

    assert response.status_code == PERMISSIONS[action][role == "supervisor"]
    if response.status_code == 403:
        assert counts() == before
    if action == "start a bulk refund" and role == "supervisor":
        assert Refund.objects.filter(reason__startswith="System outage").count() == 2
    if response.status_code == 302:
        assert not [m for m in messages_of(response) if m[0] == "error"]


def test_no_incident_field_is_editable_after_entry(clock, orders, supervisor):
    incident = entered(supervisor)

    page = client_for(supervisor).get(url("change", incident)).content.decode()

    assert 'name="_save"' not in page
    assert 'name="title"' not in page
    assert D("0") == Incident.objects.get().refunded_amount


def test_a_closed_investigation_shows_the_findings_and_takes_no_more_answers(
    clock, allergen, agent, partner
):
    client_for(agent).post(url("work", allergen), {"findings": "Menu fixed.", "close": ""})
    portal = client_for(partner)

    page = portal.get(reverse("seller:incidents")).content.decode()
    late = portal.post(
        reverse("seller:incident-answer", args=[allergen.pk]), {"answer": "Too late?"}
    )

    card = re.search(rf'id="investigation-{allergen.pk}".*?</article>', page, re.S).group(0)
    assert "Closed" in card
    assert "Menu fixed." in card
    assert "incident-answer-form" not in card
    assert messages_of(late) == [
        ("error", f"Investigation #{allergen.pk}: This investigation is closed.")
    ]
    allergen.refresh_from_db()
    assert allergen.restaurant_answer == ""
