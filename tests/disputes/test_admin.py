"""The K-OV queue in admin: agents decide unanswered cancellation requests through the services,
a case the restaurant answered first is refused with a message, resolved cases are read-only;
notifications and idempotency records are read-only platform records."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import strip_tags

from core.models import IdempotencyRecord, Notification
from disputes.models import Intervention
from disputes.tasks import hand_unanswered_cancellation_requests_to_support as hand_over
from orders.models import Order, OrderEvent
from orders.services.cancellation import order_cancel_by_buyer, order_cancellation_approve
from refunds.models import Refund, RestaurantLedgerEntry
from tests.conftest import advance, place_order
from tests.factories import MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:disputes_intervention_changelist")
RESPONSE_MINUTES = 10  # version 1


def change_url(case: Intervention) -> str:
    return reverse("admin:disputes_intervention_change", args=[case.pk])


def decide_url(case: Intervention, decision: str) -> str:
    return reverse("admin:disputes_intervention_decide", args=[case.pk, decision])


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def decision_buttons(response) -> list[str]:
    return re.findall(r'data-cancellation-action="(\w+)"', response.content.decode())


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def money(amount: str) -> str:
    return f"{amount} {settings.LOJIX_CURRENCY}"


def unanswered_request(now, buyer, restaurant, items=None) -> Intervention:
    """An accepted order whose buyer asked to cancel, left unanswered until the beat task
    handed it to support."""
    order = advance(place_order(buyer, restaurant, items), "accept")
    order_cancel_by_buyer(order_id=order.pk, actor=buyer)
    now.shift(dt.timedelta(minutes=RESPONSE_MINUTES, seconds=1))
    assert hand_over() == 1
    return Intervention.objects.get(order=order)


@pytest.fixture
def case(now, buyer, restaurant, menu) -> Intervention:
    """2 Margherita + 2.99 delivery = 27.99 paid; 15 % fee = 4.20 (4.1985), 23.79 back."""
    return unanswered_request(now, buyer, restaurant, {menu["Margherita"]: 2})


def snapshot(case: Intervention) -> dict:
    """Everything a refused decision must leave as it was."""
    return {
        "case": Intervention.objects.values().get(pk=case.pk),
        "order": Order.objects.values().get(pk=case.order_id),
        "events": case.order.events.count(),
        "refunds": Refund.objects.count(),
        "ledger": RestaurantLedgerEntry.objects.count(),
        "notifications": Notification.objects.count(),
    }


def test_the_platform_models_are_registered():
    assert {Intervention, Notification, IdempotencyRecord} <= set(admin.site._registry)


@pytest.mark.parametrize("user_fixture", ["agent", "supervisor"])
def test_support_roles_see_cases_ledgers_and_notifications_and_decide_cases(request, user_fixture):
    user = request.getfixturevalue(user_fixture)
    codenames = [
        "disputes.view_intervention",
        "disputes.change_intervention",
        "disputes.add_intervention",
        "disputes.delete_intervention",
        "refunds.view_restaurantledgerentry",
        "refunds.change_restaurantledgerentry",
        "core.view_notification",
        "core.change_notification",
        "core.view_idempotencyrecord",
    ]

    granted = [codename for codename in codenames if user.has_perm(codename)]

    assert granted == [
        "disputes.view_intervention",
        "disputes.change_intervention",
        "refunds.view_restaurantledgerentry",
        "core.view_notification",
    ]


# -- the queue --------------------------------------------------------------------------------


def test_the_queue_shows_open_cases_first_oldest_first_with_the_order_summary(
    now, agent, buyer, partner, restaurant, menu
):
    answered = unanswered_request(now, buyer, restaurant)
    older = unanswered_request(now, buyer, restaurant, {menu["Margherita"]: 2})
    newer = unanswered_request(now, buyer, restaurant)
    order_cancellation_approve(order_id=answered.order_id, actor=partner)

    response = client_for(agent).get(CHANGELIST)

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [older, newer, answered]
    page = response.content.decode()
    row = page[page.index(f">Order #{older.order_id}<") :].split("</tr>")[0]
    assert "Cancellation Requested" in row
    assert "Trattoria Roma" in row
    assert "ada" in row
    assert money("27.99") in row
    assert money("4.20") in row
    assert "20\xa0minutes" in row  # waited since the request, two hand-overs ago


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "open"}, ["first"]),
        ({"status__exact": "resolved"}, ["second"]),
        ({"kind__exact": "unanswered_cancellation"}, ["first", "second"]),
        ({"q": "grace"}, ["second"]),
        ({"q": "Osteria"}, ["second"]),
        ({"q": "ada@example.com"}, ["first"]),
    ],
)
def test_the_queue_filters_and_searches(
    now, agent, buyer, other_buyer, partner, restaurant, params, expected
):
    osteria = RestaurantFactory(name="Osteria Blu", members=[partner])
    MenuItemFactory(restaurant=osteria)
    cases = {
        "first": unanswered_request(now, buyer, restaurant),
        "second": unanswered_request(now, other_buyer, osteria),
    }
    order_cancellation_approve(order_id=cases["second"].order_id, actor=partner)

    response = client_for(agent).get(CHANGELIST, params)

    assert list(response.context["cl"].result_list) == [cases[name] for name in expected]


def test_the_queue_filters_by_restaurant_and_finds_an_order_by_its_number(
    now, agent, buyer, partner, restaurant
):
    osteria = RestaurantFactory(name="Osteria Blu", members=[partner])
    MenuItemFactory(restaurant=osteria)
    first = unanswered_request(now, buyer, restaurant)
    second = unanswered_request(now, buyer, osteria)
    client = client_for(agent)

    by_restaurant = client.get(CHANGELIST, {"order__restaurant__id__exact": osteria.pk})
    by_number = client.get(CHANGELIST, {"q": f"#{first.order_id}"})

    assert list(by_restaurant.context["cl"].result_list) == [second]
    assert list(by_number.context["cl"].result_list) == [first]


def test_the_queue_query_count_does_not_grow_with_cases(
    now, agent, buyer, restaurant, django_assert_num_queries
):
    client = client_for(agent)
    unanswered_request(now, buyer, restaurant)
    client.get(CHANGELIST)  # warm up the session
    with CaptureQueriesContext(connection) as one_case:
        assert len(client.get(CHANGELIST).context["cl"].result_list) == 1
    for n in range(9):
        other = RestaurantFactory(name=f"Place {n}", members=[UserFactory()])
        MenuItemFactory(restaurant=other)
        unanswered_request(now, UserFactory(), other)

    with django_assert_num_queries(len(one_case)):
        assert len(client.get(CHANGELIST).context["cl"].result_list) == 10


# -- deciding ---------------------------------------------------------------------------------


def test_an_open_case_shows_both_decisions_with_what_each_does(agent, case):
    response = client_for(agent).get(change_url(case))

    assert response.status_code == 200
    assert decision_buttons(response) == ["approve", "deny"]
    page = response.content.decode()
    assert decide_url(case, "approve") in page
    assert decide_url(case, "deny") in page
    assert (
        f"Approve: the order is cancelled, the buyer gets {money('23.79')} back and the "
        f"restaurant keeps the {money('4.20')} fee (K-B1, L-2.1, K-OV)."
    ) in re.sub(r"<[^>]+>", "", page)
    assert 'href="/policy/#K-OV"' in page  # each clause links to the policy (D-9)
    assert 'name="_save"' not in page  # nothing on the case itself is edited


def test_an_agent_approves_an_unanswered_request(agent, buyer, case):
    response = client_for(agent).post(decide_url(case, "approve"))

    assert response.status_code == 302
    assert response["Location"] == change_url(case)
    order = Order.objects.get(pk=case.order_id)
    assert messages_of(response) == [
        (
            "success",
            f"Order #{order.pk}: cancellation approved; the buyer gets {money('23.79')} back "
            f"and the restaurant keeps the {money('4.20')} fee.",
        )
    ]
    assert (order.status, order.cancellation_fee) == (Order.Status.CANCELLED, Decimal("4.20"))
    assert [(r.destination, r.amount) for r in Refund.objects.filter(order=order)] == [
        ("card", Decimal("23.79"))
    ]
    fee = RestaurantLedgerEntry.objects.get(order=order)
    assert (fee.kind, fee.amount) == ("cancellation_fee", Decimal("4.20"))
    case.refresh_from_db()
    assert (case.status, case.resolved_by, case.action_taken) == (
        Intervention.Status.RESOLVED,
        agent,
        "Cancellation approved",
    )
    assert case.resolved_at == order.cancelled_at
    approved = order.events.get(name="approve")
    assert (approved.actor, approved.actor_role, approved.clauses) == (
        agent,
        OrderEvent.Role.SUPPORT,
        ["K-B1", "L-2.1", "K-OV"],
    )
    assert approved.message == (
        "Cancellation approved by support on the restaurant's behalf (K-OV); a fee of 4.20 USD "
        "applies."
    )
    assert Notification.objects.filter(user=buyer, title=f"Order #{order.pk} cancelled").exists()


def test_an_agent_denies_an_unanswered_request_with_a_reason(agent, buyer, case):
    response = client_for(agent).post(
        decide_url(case, "deny"), {"reason": "The kitchen had already started your pizzas."}
    )

    order = Order.objects.get(pk=case.order_id)
    assert messages_of(response) == [
        (
            "success",
            f"Order #{order.pk}: cancellation denied; the order goes on and the buyer was told "
            "why.",
        )
    ]
    assert (order.status, order.cancellation_fee) == (Order.Status.ACCEPTED, None)
    assert order.cancellation_denied_at is not None
    assert not Refund.objects.filter(order=order).exists()
    assert not RestaurantLedgerEntry.objects.filter(order=order).exists()
    case.refresh_from_db()
    assert (case.status, case.resolved_by, case.action_taken) == (
        Intervention.Status.RESOLVED,
        agent,
        "Cancellation denied",
    )
    denied = order.events.get(name="deny")
    assert (denied.actor, denied.actor_role, denied.reason, denied.clauses) == (
        agent,
        OrderEvent.Role.SUPPORT,
        "The kitchen had already started your pizzas.",
        ["L-2.1", "K-OV"],
    )
    told = Notification.objects.get(
        user=buyer, title=f"Order #{order.pk}: cancellation denied by support"
    )
    assert told.body.endswith("The kitchen had already started your pizzas.")


def test_a_denial_needs_a_reason_and_changes_nothing_without_one(agent, case):
    before = snapshot(case)

    response = client_for(agent).post(decide_url(case, "deny"), {"reason": "  "})

    assert messages_of(response) == [
        ("error", f"Order #{case.order_id}: Give the buyer a reason for denying the request.")
    ]
    assert snapshot(case) == before


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_a_case_the_restaurant_answered_first_is_refused_and_unchanged(
    agent, partner, case, decision
):
    order_cancellation_approve(order_id=case.order_id, actor=partner)
    before = snapshot(case)

    response = client_for(agent).post(decide_url(case, decision), {"reason": "Too late to stop"})

    assert response.status_code == 302
    assert response["Location"] == change_url(case)
    assert messages_of(response) == [
        (
            "error",
            f"Order #{case.order_id} has no cancellation request waiting (it is cancelled).",
        )
    ]
    assert snapshot(case) == before
    case.refresh_from_db()
    assert (case.resolved_by, case.action_taken) == (partner, "Cancellation approved")


def test_an_unknown_decision_is_an_error_and_changes_nothing(agent, case):
    before = snapshot(case)

    response = client_for(agent).post(decide_url(case, "escalate"))

    assert messages_of(response) == [("error", "Unknown decision 'escalate'.")]
    assert snapshot(case) == before


@pytest.mark.parametrize("user_fixture", ["agent", "admin_user"])
def test_a_resolved_case_is_read_only_with_who_did_what(request, user_fixture, partner, case):
    order_cancellation_approve(order_id=case.order_id, actor=partner)
    client = client_for(request.getfixturevalue(user_fixture))
    before = snapshot(case)

    page = client.get(change_url(case))
    change = client.post(change_url(case), {"status": "open", "action_taken": "Reopened"})
    add = client.get(reverse("admin:disputes_intervention_add"))
    delete = client.post(
        reverse("admin:disputes_intervention_delete", args=[case.pk]), {"post": "yes"}
    )

    assert page.status_code == 200
    assert decision_buttons(page) == []
    assert 'name="_save"' not in page.content.decode()
    fields = {
        field.field["name"]: strip_tags(field.contents())
        for fieldset in page.context["adminform"]
        for line in fieldset
        for field in line
    }
    assert (fields["status"], fields["resolved_by"], fields["action_taken"]) == (
        "Resolved",
        "luigi",
        "Cancellation approved",
    )
    assert (change.status_code, add.status_code, delete.status_code) == (403, 403, 403)
    assert snapshot(case) == before


def test_non_staff_are_sent_to_the_admin_login(client, buyer, partner, case):
    before = snapshot(case)
    anonymous = [client.get(CHANGELIST), client.post(decide_url(case, "approve"))]
    client.force_login(partner)
    as_partner = [client.get(change_url(case)), client.post(decide_url(case, "approve"))]
    client.force_login(buyer)
    as_buyer = [client.post(decide_url(case, "deny"), {"reason": "No"})]

    login = reverse("admin:login")
    for response in anonymous + as_partner + as_buyer:
        assert response.status_code == 302
        assert response["Location"].startswith(f"{login}?next=")
    assert snapshot(case) == before


def test_staff_who_may_only_view_cases_see_no_decision_and_cannot_post(case):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_intervention"))
    client = client_for(viewer)
    before = snapshot(case)

    page = client.get(change_url(case))
    post = client.get(decide_url(case, "approve")), client.post(decide_url(case, "approve"))

    assert page.status_code == 200
    assert decision_buttons(page) == []
    assert [response.status_code for response in post] == [405, 403]
    assert snapshot(case) == before


def test_a_decision_must_be_posted_with_a_csrf_token(agent, case):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    before = snapshot(case)

    response = client.post(decide_url(case, "approve"))

    assert response.status_code == 403
    assert snapshot(case) == before


def test_an_unknown_case_redirects_with_a_message(agent):
    response = client_for(agent).post(
        reverse("admin:disputes_intervention_decide", args=[999999, "approve"])
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert [level for level, _ in messages_of(response)] == ["warning"]


# -- notifications and idempotency records ---------------------------------------------------


def test_support_lists_notifications_read_only(agent, buyer, partner, case):
    client = client_for(agent)
    notifications = Notification.objects.filter(user=buyer)
    seen = notifications.first()

    listing = client.get(reverse("admin:core_notification_changelist"), {"q": "ada"})
    unread = client.get(reverse("admin:core_notification_changelist"), {"read": "no"})
    page = client.get(reverse("admin:core_notification_change", args=[seen.pk]))
    add = client.get(reverse("admin:core_notification_add"))
    change = client.post(
        reverse("admin:core_notification_change", args=[seen.pk]), {"title": "Changed"}
    )

    assert list(listing.context["cl"].result_list) == list(notifications)
    assert set(unread.context["cl"].result_list) == set(Notification.objects.all())
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (add.status_code, change.status_code) == (403, 403)
    assert Notification.objects.get(pk=seen.pk).title == seen.title


def test_idempotency_records_are_for_superusers_only(agent, admin_user, partner, restaurant, buyer):
    order = place_order(buyer, restaurant)
    api = Client()
    api.force_login(partner)
    api.post(
        f"/api/seller/orders/{order.pk}/accept/",
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="accept-once",
    )
    record = IdempotencyRecord.objects.get(key="accept-once")
    url = reverse("admin:core_idempotencyrecord_changelist")

    as_admin = client_for(admin_user).get(url, {"q": "accept-once"})
    as_agent = client_for(agent).get(url)
    change = client_for(admin_user).post(
        reverse("admin:core_idempotencyrecord_change", args=[record.pk]), {"key": "other"}
    )

    assert list(as_admin.context["cl"].result_list) == [record]
    assert (as_agent.status_code, change.status_code) == (403, 403)
    assert IdempotencyRecord.objects.get(pk=record.pk).key == "accept-once"
