"""The incidents API (D-10, L-10): a supervisor's dry run answers the affected orders, the money
and the split per restaurant and writes nothing; entering an outage starts its bulk refund; the
refund endpoint runs or resumes it and refunds nothing twice; the progress is readable by
support; who may do what (every role x every endpoint); bad input changes nothing."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine
from django.apps import apps

from disputes.models import Incident
from disputes.services.outages import incident_create
from refunds.models import Refund
from tests.conftest import NOW, place_order, refunds_processed, token_client
from tests.factories import MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = pytest.mark.django_db

START, END = NOW, NOW + dt.timedelta(minutes=30)
AFTER = NOW + dt.timedelta(hours=1)
CREATE = "/api/support/incidents/"


def counts() -> dict:
    return {m._meta.label: m.objects.count() for m in apps.get_models()}


@pytest.fixture
def orders(buyer, restaurant, menu):
    """Two orders in the window at Trattoria Roma, one at Osteria Blu, one after the window."""
    blu = RestaurantFactory(name="Osteria Blu", members=[UserFactory()])
    MenuItemFactory(restaurant=blu, name="Risotto", price=D("14.00"))
    with time_machine.travel(START + dt.timedelta(minutes=5), tick=False):
        roma = [
            place_order(buyer, restaurant, {menu["Margherita"]: 1}),
            place_order(buyer, restaurant, {menu["Tiramisu"]: 2}),
        ]
        at_blu = place_order(buyer, blu)
    with time_machine.travel(END + dt.timedelta(minutes=5), tick=False):
        later = place_order(buyer, restaurant)
    return {"roma": roma, "blu": at_blu, "later": later, "blu_restaurant": blu}


@pytest.fixture
def clock():
    with time_machine.travel(AFTER) as traveller:
        yield traveller


def body(**kwargs) -> dict:
    return {
        "kind": "outage",
        "title": "Payments down",
        "starts_at": START.isoformat(),
        "ends_at": END.isoformat(),
        "restaurants": [],
        **kwargs,
    }


def test_the_dry_run_answers_orders_money_and_split_and_writes_nothing(
    clock, orders, supervisor, restaurant
):
    client = token_client(supervisor)
    client.post(CREATE, body(dry_run=True), format="json")  # the token's first use
    before = counts()

    response = client.post(CREATE, body(dry_run=True), format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "affected_orders": 3,
        "total_amount": "47.47",  # 12.50 + 2.99, 2 x 6.00 + 2.99, 14.00 + 2.99 (delivery)
        "per_restaurant": [
            {
                "restaurant": orders["blu_restaurant"].pk,
                "name": "Osteria Blu",
                "orders": 1,
                "amount": "16.99",
            },
            {"restaurant": restaurant.pk, "name": "Trattoria Roma", "orders": 2, "amount": "30.48"},
        ],
    }
    assert counts() == before


def test_entering_an_outage_starts_its_bulk_refund_and_the_progress_is_readable(
    clock, orders, supervisor, agent, restaurant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = token_client(supervisor).post(
            CREATE, body(restaurants=[restaurant.pk]), format="json"
        )
    refunds_processed()

    assert created.status_code == 201, created.content
    incident = Incident.objects.get()
    detail = token_client(agent).get(f"{CREATE}{incident.pk}/")
    assert detail.status_code == 200
    progress = detail.json()
    assert progress["kind"] == "outage"
    assert progress["status"] == "closed"
    assert progress["restaurants"] == [restaurant.pk]
    assert (progress["affected_orders"], progress["refunded_orders"]) == (2, 2)
    assert progress["refunded_amount"] == "30.48"
    assert progress["refunded_per_restaurant"] == [
        {"restaurant": restaurant.pk, "name": "Trattoria Roma", "orders": 2, "amount": "30.48"}
    ]
    assert sorted(Refund.objects.values_list("order_id", flat=True)) == sorted(
        o.pk for o in orders["roma"]
    )


def test_the_refund_endpoint_runs_it_and_twice_refunds_nothing_twice(
    clock, orders, supervisor, django_capture_on_commit_callbacks
):
    incident = incident_create(
        actor=supervisor,
        kind="outage",
        title="Payments down",
        starts_at=START,
        ends_at=END,
        restaurant_ids=[],
        now=AFTER,
    )
    client = token_client(supervisor)
    url = f"{CREATE}{incident.pk}/refund/"

    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url)
    with django_capture_on_commit_callbacks(execute=True):
        second = client.post(url)

    assert first.status_code == 202, first.content
    assert first.json()["status"] in ("refunding", "closed")
    assert second.status_code == 409
    assert second.json() == {
        "code": "incident_closed",
        "detail": second.json()["detail"],
        "clauses": ["L-10"],
    }
    assert Refund.objects.count() == 3
    incident.refresh_from_db()
    assert (incident.refunded_orders, incident.refunded_amount) == (3, D("47.47"))


def test_an_idempotency_key_replayed_enters_the_incident_once(clock, orders, supervisor):
    client = token_client(supervisor)
    data = body(kind="force_majeure", ends_at=None)

    first = client.post(CREATE, data, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post(CREATE, data, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert Incident.objects.count() == 1


@pytest.mark.parametrize(
    ("case", "data", "status", "code"),
    [
        ("unknown restaurant", body(restaurants=[999999]), 400, "unknown_restaurant"),
        ("restaurants not a list", body(restaurants="all"), 400, "wrong_type"),
        ("bad date", body(starts_at="yesterday"), 400, "invalid_datetime"),
        ("unknown kind", body(kind="meteor"), 400, "invalid_kind"),
        ("no title", body(title=""), 400, "missing_field"),
        ("no end", body(ends_at=None), 400, "window_required"),
        ("backwards", body(starts_at=END.isoformat(), ends_at=START.isoformat()), 400,
         "window_invalid"),
        ("not over", body(ends_at=(AFTER + dt.timedelta(hours=1)).isoformat()), 409,
         "outage_not_over"),
        ("allergen by hand", body(kind="allergen"), 400, "incident_kind_not_entered"),
        ("dry run of force majeure", body(kind="force_majeure", dry_run=True), 400,
         "dry_run_outage_only"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_changes_nothing(
    clock, orders, supervisor, case, data, status, code
):
    client = token_client(supervisor)
    before = counts()

    response = client.post(CREATE, data, format="json")

    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert counts() == before


def test_an_unknown_incident_is_a_404(clock, supervisor):
    assert token_client(supervisor).get(f"{CREATE}999999/").status_code == 404
    assert token_client(supervisor).post(f"{CREATE}999999/refund/").status_code == 404


# -- who may do what ----------------------------------------------------------------------------

ROLES = ["anonymous", "buyer", "other_buyer", "partner", "other_partner", "agent", "supervisor"]
SUPERVISOR_ONLY = {
    "anonymous": 401,
    "buyer": 403,
    "other_buyer": 403,
    "partner": 403,
    "other_partner": 403,
    "agent": 403,
}
SUPPORT = {**SUPERVISOR_ONLY, "agent": 200}
ENDPOINTS = {
    "dry run": ("post", lambda i: CREATE, body(dry_run=True), {**SUPERVISOR_ONLY, "supervisor": 200}),  # noqa: E501
    "enter": ("post", lambda i: CREATE, body(), {**SUPERVISOR_ONLY, "supervisor": 201}),
    "detail": ("get", lambda i: f"{CREATE}{i}/", None, {**SUPPORT, "supervisor": 200}),
    "refund": ("post", lambda i: f"{CREATE}{i}/refund/", None, {**SUPERVISOR_ONLY, "supervisor": 202}),  # noqa: E501
}  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_role_matrix(clock, orders, users, supervisor, endpoint, role):
    method, url, data, expected = ENDPOINTS[endpoint]
    incident = incident_create(
        actor=supervisor,
        kind="outage",
        title="Earlier outage",
        starts_at=START,
        ends_at=END,
        restaurant_ids=[],
        now=AFTER,
    )
    client = token_client(users[role])
    before = counts()

    response = getattr(client, method)(url(incident.pk), data, format="json")

    assert response.status_code == expected[role], response.content
    if response.status_code >= 400:
        assert counts() == before
        forbidden = "not_support" if endpoint == "detail" else "not_supervisor"
        codes = {401: "not_authenticated", 403: forbidden}
        assert response.json()["code"] == codes[response.status_code]
