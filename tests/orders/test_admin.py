"""Admin for support (D-9): every page renders for each staff role, money and audit records are
read-only, and the order's lifecycle buttons offer exactly what the user may do and go through
`order_advance`."""

import datetime as dt
import html
import io
import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags
from PIL import Image

from core.models import Notification
from credits.models import CreditGrant, CreditTransaction, DiscountCode
from orders.admin import POLICY_FIELDSETS, policy_fieldsets
from orders.models import (
    MenuItem,
    Order,
    OrderEvent,
    OrderItem,
    Payment,
    PolicyVersion,
    Restaurant,
)
from orders.services.cancellation import order_cancel_by_buyer
from refunds.models import (
    DeductionDispute,
    HeldPhoto,
    Refund,
    RefundEvidence,
    RefundMessage,
    RefundRequest,
    RefundRequestEvent,
    RefundRequestItem,
    RestaurantLedgerEntry,
)
from refunds.services.decisions import refund_request_approve
from refunds.services.deductions import deduction_dispute_open
from refunds.services.evidence import refund_photos_hold
from refunds.services.execution import refund_order
from refunds.services.requests import refund_request_request_info, refund_request_submit
from tests.conftest import advance, give_credit, place_order, refunds_processed
from tests.factories import DiscountCodeFactory, MenuItemFactory, RestaurantFactory, UserFactory

APPS = ("orders", "credits", "refunds")
REGISTERED = sorted(
    (model for model in admin.site._registry if model._meta.app_label in APPS),
    key=lambda model: model._meta.label,
)
READ_ONLY = [
    OrderItem,
    OrderEvent,
    Payment,
    Refund,
    RestaurantLedgerEntry,
    CreditGrant,
    CreditTransaction,
    RefundRequest,
    RefundRequestItem,
    RefundEvidence,
    RefundMessage,
    RefundRequestEvent,
]
STAFF = ["admin_user", "agent", "supervisor"]


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _buttons(response) -> list[str]:
    return re.findall(r'data-action="(\w+)"', response.content.decode())


def _messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def _photo(name="spill.png"):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture
def one_of_each(buyer, restaurant, menu, partner, agent):
    """One object of every registered model, made through the services."""
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2})
    order = advance(order, "accept")
    (refund,) = refund_order(
        order_id=order.pk,
        amount=Decimal("5.00"),
        method="original",
        idempotency_key="admin-test",
        actor=None,
        role=OrderEvent.Role.POLICY,
        reason="Test refund",
    )
    refunds_processed()
    refund.refresh_from_db()
    grant = give_credit(buyer, "4.00")
    picked_up = place_order(buyer, restaurant, fulfillment=Order.Fulfillment.PICKUP)
    advance(picked_up, "accept", "start_preparation", "mark_ready", "hand_over")  # a sale (L-9)
    delivered = place_order(buyer, restaurant, {menu["Tiramisu"]: 1})
    advance(delivered, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    claim = refund_request_submit(
        order_id=delivered.pk,
        actor=buyer,
        reason="missing_items",
        items=[(delivered.items.get().pk, 1)],
        photos=[_photo()],
    )
    refund_request_request_info(request_id=claim.pk, actor=agent, question="Which bag?")
    dispute = _disputed_deduction(buyer, restaurant, menu, partner, agent)
    [held] = refund_photos_hold(order_id=delivered.pk, actor=buyer, photos=[_photo()])
    return {
        DeductionDispute: dispute,
        PolicyVersion: PolicyVersion.objects.get(label="1"),
        Restaurant: restaurant,
        MenuItem: menu["Margherita"],
        Order: order,
        OrderItem: order.items.get(),
        OrderEvent: order.events.first(),
        Payment: order.payments.get(),
        Refund: refund,
        RestaurantLedgerEntry: RestaurantLedgerEntry.objects.get(order=picked_up, kind="sale"),
        CreditGrant: grant,
        CreditTransaction: grant.transactions.get(),
        DiscountCode: DiscountCodeFactory(code="WELCOME5"),
        RefundRequest: claim,
        RefundRequestItem: claim.items.get(),
        RefundEvidence: claim.evidence.get(),
        HeldPhoto: held,
        RefundMessage: claim.messages.get(),
        RefundRequestEvent: claim.events.first(),
    }


def _disputed_deduction(buyer, restaurant, menu, partner, agent) -> DeductionDispute:
    """A missing item refunded and deducted (L-9), the deduction disputed by the partner."""
    order = place_order(buyer, restaurant, {menu["Tiramisu"]: 2})
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    claim = refund_request_submit(
        order_id=order.pk,
        actor=buyer,
        reason="missing_items",
        items=[(order.items.get().pk, 1)],
    )
    refund_request_approve(request_id=claim.pk, actor=agent)
    refunds_processed()
    deduction = RestaurantLedgerEntry.objects.get(order=order, kind="refund_deduction")
    return deduction_dispute_open(
        entry_id=deduction.pk, actor=partner, note="Not ours", now=timezone.now()
    )


def test_every_model_of_orders_credits_and_refunds_is_registered():
    models = {model for label in APPS for model in apps.get_app_config(label).get_models()}
    assert models - set(admin.site._registry) == set()


@pytest.mark.django_db
@pytest.mark.parametrize("user_fixture", ["admin_user", "agent"])
@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_changelist_search_and_change_page_render(request, user_fixture, model, one_of_each):
    client = _client_for(request.getfixturevalue(user_fixture))
    obj = one_of_each[model]

    changelist = client.get(_url(model, "changelist"))
    searched = client.get(_url(model, "changelist"), {"q": "ada"})
    change = client.get(_url(model, "change", obj.pk))

    assert (changelist.status_code, searched.status_code, change.status_code) == (200, 200, 200)
    assert obj in changelist.context["cl"].result_list
    assert change.context["original"] == obj


@pytest.mark.django_db
def test_an_agent_opens_the_admin_index_with_the_order_pages(agent):
    response = _client_for(agent).get(reverse("admin:index"))

    assert response.status_code == 200
    assert _url(Order, "changelist") in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("user_fixture", ["admin_user", "agent"])
@pytest.mark.parametrize("model", READ_ONLY, ids=lambda model: model._meta.label)
def test_money_and_audit_records_refuse_add_change_and_delete(
    request, user_fixture, model, one_of_each
):
    client = _client_for(request.getfixturevalue(user_fixture))
    obj = one_of_each[model]
    before = model.objects.values().get(pk=obj.pk)
    count = model.objects.count()

    add = client.get(_url(model, "add"))
    add_post = client.post(_url(model, "add"), {})
    change_post = client.post(_url(model, "change", obj.pk), {"amount": "999.00"})
    delete = client.post(_url(model, "delete", obj.pk), {"post": "yes"})
    view = client.get(_url(model, "change", obj.pk))

    assert [add.status_code, add_post.status_code, change_post.status_code] == [403, 403, 403]
    assert delete.status_code == 403
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert model.objects.values().get(pk=obj.pk) == before
    assert model.objects.count() == count


@pytest.mark.django_db
@pytest.mark.parametrize("user_fixture", ["admin_user", "agent"])
def test_orders_cannot_be_added_or_deleted_in_admin(request, user_fixture, buyer, restaurant):
    client = _client_for(request.getfixturevalue(user_fixture))
    order = place_order(buyer, restaurant)

    add = client.get(_url(Order, "add"))
    delete = client.post(_url(Order, "delete", order.pk), {"post": "yes"})

    assert (add.status_code, delete.status_code) == (403, 403)
    assert Order.objects.filter(pk=order.pk).exists()


@pytest.mark.django_db
def test_non_staff_users_are_sent_to_the_admin_login(client, buyer, partner, restaurant):
    order = place_order(buyer, restaurant)
    anonymous = client.get(_url(Order, "changelist"))
    client.force_login(partner)

    changelist = client.get(_url(Order, "changelist"))
    advance_post = client.post(_url(Order, "advance", order.pk, "accept"))

    login = reverse("admin:login")
    for response in (anonymous, changelist, advance_post):
        assert response.status_code == 302
        assert response["Location"].startswith(f"{login}?next=")
    order.refresh_from_db()
    assert order.status == Order.Status.PLACED
    assert order.events.count() == 2  # placed, charged


# -- the order change page: audit trail and fields ------------------------------------------


@pytest.mark.django_db
def test_the_order_page_shows_items_payments_refunds_and_the_timeline(agent, one_of_each):
    order = one_of_each[Order]
    refund = one_of_each[Refund]
    response = _client_for(agent).get(_url(Order, "change", order.pk))
    page = response.content.decode()

    formsets = {f.formset.prefix: f.formset for f in response.context["inline_admin_formsets"]}
    assert [form.instance for form in formsets["items"].forms] == [one_of_each[OrderItem]]
    assert [form.instance for form in formsets["payments"].forms] == [one_of_each[Payment]]
    assert [form.instance for form in formsets["refunds"].forms] == [refund]
    assert [form.instance.name for form in formsets["events"].forms] == [
        "place",
        "charge",
        "accept",
        "refund_pending",
        "refund_succeeded",
    ]
    assert "Order placed at Trattoria Roma." in page
    assert refund.gateway_reference in page


@pytest.mark.django_db
def test_status_money_and_times_are_not_form_fields_only_the_delivery_address_is(
    agent, buyer, restaurant
):
    order = place_order(buyer, restaurant)
    client = _client_for(agent)
    url = _url(Order, "change", order.pk)

    form_fields = set(client.get(url).context["adminform"].form.fields)
    response = client.post(
        url,
        {
            "delivery_address": "9 Harbour Road",
            "status": "delivered",
            "total": "0.00",
            "amount_charged": "0.00",
            "placed_at": "2020-01-01 00:00",
            **_empty_inline_management_forms(),
        },
    )

    assert form_fields == {"delivery_address"}
    assert response.status_code == 302
    saved = Order.objects.get(pk=order.pk)
    assert saved.delivery_address == "9 Harbour Road"
    assert (saved.status, saved.total, saved.amount_charged) == (
        Order.Status.PLACED,
        order.total,
        order.amount_charged,
    )
    assert saved.placed_at == order.placed_at


@pytest.mark.django_db
def test_a_pickup_order_has_no_editable_field(agent, buyer, restaurant):
    order = place_order(buyer, restaurant, fulfillment=Order.Fulfillment.PICKUP)

    response = _client_for(agent).get(_url(Order, "change", order.pk))

    assert set(response.context["adminform"].form.fields) == set()


def _empty_inline_management_forms() -> dict:
    data = {}
    for prefix in ("items", "payments", "refunds", "events"):
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return data


# -- lifecycle buttons ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("user_fixture", STAFF)
def test_a_placed_delivery_order_offers_only_accept(request, user_fixture, buyer, restaurant):
    order = place_order(buyer, restaurant, fulfillment=Order.Fulfillment.DELIVERY)
    client = _client_for(request.getfixturevalue(user_fixture))

    response = client.get(_url(Order, "change", order.pk))

    assert _buttons(response) == ["accept"]
    assert _url(Order, "advance", order.pk, "accept") in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("user_fixture", STAFF)
def test_a_ready_pickup_order_offers_only_hand_over(request, user_fixture, buyer, restaurant):
    order = place_order(buyer, restaurant, fulfillment=Order.Fulfillment.PICKUP)
    advance(order, "accept", "start_preparation", "mark_ready")
    client = _client_for(request.getfixturevalue(user_fixture))

    response = client.get(_url(Order, "change", order.pk))

    assert _buttons(response) == ["hand_over"]


@pytest.mark.django_db
def test_a_finished_order_offers_no_button(agent, buyer, restaurant):
    order = place_order(buyer, restaurant, fulfillment=Order.Fulfillment.PICKUP)
    advance(order, "accept", "start_preparation", "mark_ready", "hand_over")

    response = _client_for(agent).get(_url(Order, "change", order.pk))

    assert _buttons(response) == []
    assert "No lifecycle step is open to you on this order now." in response.content.decode()


@pytest.fixture
def viewer(db):
    """Staff who may look at orders but not change them."""
    user = UserFactory(username="viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_order"))
    return user


@pytest.mark.django_db
def test_staff_without_change_permission_see_no_button_and_cannot_post(viewer, buyer, restaurant):
    order = place_order(buyer, restaurant)
    client = _client_for(viewer)

    page = client.get(_url(Order, "change", order.pk))
    response = client.post(_url(Order, "advance", order.pk, "accept"))

    assert page.status_code == 200
    assert _buttons(page) == []
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == Order.Status.PLACED
    assert order.events.count() == 2


@pytest.fixture
def editor(db):
    """Staff who may change orders in admin but hold no support role (D-4)."""
    user = UserFactory(username="editor", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_order", "change_order"])
    )
    return user


@pytest.mark.django_db
def test_buttons_follow_the_state_machine_permission_not_only_the_admin_one(
    editor, buyer, restaurant
):
    order = place_order(buyer, restaurant)
    client = _client_for(editor)

    page = client.get(_url(Order, "change", order.pk))
    response = client.post(_url(Order, "advance", order.pk, "accept"))

    assert _buttons(page) == []
    assert _messages(response) == [
        ("error", f"Order #{order.pk}: Cannot accept an order that is Placed.")
    ]
    order.refresh_from_db()
    assert order.status == Order.Status.PLACED
    assert order.events.count() == 2


@pytest.mark.django_db
def test_an_agent_accepts_an_order_through_the_service(agent, buyer, restaurant):
    order = place_order(buyer, restaurant)
    events_before = order.events.count()

    response = _client_for(agent).post(_url(Order, "advance", order.pk, "accept"))

    assert response.status_code == 302
    assert response["Location"] == _url(Order, "change", order.pk)
    assert _messages(response) == [
        ("success", f"Order #{order.pk}: accept done; the order is now accepted.")
    ]
    order.refresh_from_db()
    assert order.status == Order.Status.ACCEPTED
    assert order.accepted_at is not None
    assert order.events.count() == events_before + 1
    event = order.events.last()
    assert (event.kind, event.name, event.from_status, event.to_status) == (
        OrderEvent.Kind.TRANSITION,
        "accept",
        Order.Status.PLACED,
        Order.Status.ACCEPTED,
    )
    assert (event.actor, event.actor_role) == (agent, OrderEvent.Role.SUPPORT)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("deliver", "Cannot deliver an order that is Placed."),
        ("hand_over", "Cannot hand over an order that is Placed."),
        ("cancel", "Unknown order action 'cancel'."),
        ("explode", "Unknown order action 'explode'."),
    ],
)
def test_a_step_that_is_not_allowed_is_an_error_message_and_changes_nothing(
    agent, buyer, restaurant, action, message
):
    order = place_order(buyer, restaurant)
    before = Order.objects.values().get(pk=order.pk)

    response = _client_for(agent).post(_url(Order, "advance", order.pk, action))

    assert response.status_code == 302
    assert response["Location"] == _url(Order, "change", order.pk)
    assert _messages(response) == [("error", f"Order #{order.pk}: {message}")]
    assert Order.objects.values().get(pk=order.pk) == before
    assert order.events.count() == 2


@pytest.mark.django_db
def test_an_unknown_order_redirects_with_a_message(agent):
    response = _client_for(agent).post(_url(Order, "advance", 999999, "accept"))

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert [level for level, _ in _messages(response)] == ["warning"]


@pytest.mark.django_db
def test_the_step_must_be_posted_with_a_csrf_token(agent, buyer, restaurant):
    order = place_order(buyer, restaurant)
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)

    get = client.get(_url(Order, "advance", order.pk, "accept"))
    post = client.post(_url(Order, "advance", order.pk, "accept"))

    assert (get.status_code, post.status_code) == (405, 403)
    order.refresh_from_db()
    assert order.status == Order.Status.PLACED


# -- cancellation on the order page (K-OV) ----------------------------------------------------


def _cancellation_buttons(response) -> list[str]:
    return re.findall(r'data-cancellation-action="(\w+)"', response.content.decode())


def _money(amount: str) -> str:
    return f"{amount} {settings.LOJIX_CURRENCY}"


@pytest.fixture
def requested(buyer, restaurant, menu) -> Order:
    """27.99 paid (2 Margherita + 2.99 delivery); the buyer asked to cancel at the 4.20 fee."""
    order = advance(place_order(buyer, restaurant, {menu["Margherita"]: 2}), "accept")
    order, _ = order_cancel_by_buyer(order_id=order.pk, actor=buyer, quote=Decimal("4.20"))
    return order


def _order_snapshot(order: Order) -> dict:
    return {
        "order": Order.objects.values().get(pk=order.pk),
        "events": order.events.count(),
        "refunds": Refund.objects.count(),
        "grants": CreditGrant.objects.count(),
        "notifications": Notification.objects.count(),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("user_fixture", STAFF)
def test_a_cancellation_request_offers_approve_and_deny(request, user_fixture, requested):
    response = _client_for(request.getfixturevalue(user_fixture)).get(
        _url(Order, "change", requested.pk)
    )

    page = response.content.decode()
    assert _buttons(response) == []  # no lifecycle step while the request waits
    assert _cancellation_buttons(response) == ["approve", "deny"]
    assert _url(Order, "cancellation_request", requested.pk, "approve") in page
    assert _url(Order, "cancellation_request", requested.pk, "deny") in page
    assert f"They paid {_money('27.99')}; the quoted fee is {_money('4.20')}." in page
    assert f"the buyer gets {_money('23.79')} back" in page


@pytest.mark.django_db
def test_after_an_earlier_refund_the_request_shows_and_gives_what_is_left_less_the_fee(
    agent, buyer, restaurant, menu
):
    order = advance(place_order(buyer, restaurant, {menu["Margherita"]: 2}), "accept")  # 27.99
    refund_order(order_id=order.pk, amount=Decimal("5.00"), method="original",
                 idempotency_key="earlier", actor=None, role="policy", reason="Test")  # fmt: skip
    order_cancel_by_buyer(order_id=order.pk, actor=buyer, quote=Decimal("4.20"))
    client = _client_for(agent)

    page = client.get(_url(Order, "change", order.pk)).content.decode()
    response = client.post(_url(Order, "cancellation_request", order.pk, "approve"))

    assert f"the buyer gets {_money('18.79')} back" in page  # 27.99 - 5.00 - 4.20 (L-2.1, L-7.2)
    assert _messages(response) == [
        (
            "success",
            f"Order #{order.pk}: cancellation approved; the buyer gets {_money('18.79')} "
            f"back and the restaurant keeps the {_money('4.20')} fee.",
        )
    ]
    assert sorted(r.amount for r in Refund.objects.filter(order=order)) == [
        Decimal("5.00"),
        Decimal("18.79"),
    ]


@pytest.mark.django_db
def test_an_agent_approves_a_request_from_the_order_page(agent, buyer, requested):
    response = _client_for(agent).post(_url(Order, "cancellation_request", requested.pk, "approve"))

    assert response.status_code == 302
    assert response["Location"] == _url(Order, "change", requested.pk)
    assert _messages(response) == [
        (
            "success",
            f"Order #{requested.pk}: cancellation approved; the buyer gets {_money('23.79')} "
            f"back and the restaurant keeps the {_money('4.20')} fee.",
        )
    ]
    order = Order.objects.get(pk=requested.pk)
    assert order.status == Order.Status.CANCELLED
    assert [(r.destination, r.amount) for r in order.refunds.all()] == [("card", Decimal("23.79"))]
    approved = order.events.get(name="approve")
    assert (approved.actor, approved.actor_role, approved.clauses) == (
        agent,
        OrderEvent.Role.SUPPORT,
        ["K-B1", "L-2.1", "K-OV"],
    )


@pytest.mark.django_db
def test_an_agent_denies_a_request_from_the_order_page(agent, requested):
    without_reason = _client_for(agent).post(
        _url(Order, "cancellation_request", requested.pk, "deny")
    )
    unchanged = Order.objects.values().get(pk=requested.pk)
    denied = _client_for(agent).post(
        _url(Order, "cancellation_request", requested.pk, "deny"), {"reason": "Already baking."}
    )

    assert _messages(without_reason) == [
        ("error", f"Order #{requested.pk}: Give the buyer a reason for denying the request.")
    ]
    assert unchanged == Order.objects.values().get(pk=requested.pk) | {
        "status": Order.Status.CANCELLATION_REQUESTED,
        "cancellation_fee": Decimal("4.20"),
        "cancellation_denied_at": None,
    }
    assert [level for level, _ in _messages(denied)] == ["success"]
    order = Order.objects.get(pk=requested.pk)
    assert (order.status, order.cancellation_fee) == (Order.Status.ACCEPTED, None)
    assert not order.refunds.exists()
    event = order.events.get(name="deny")
    assert (event.actor, event.actor_role, event.reason) == (
        agent,
        OrderEvent.Role.SUPPORT,
        "Already baking.",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("user_fixture", STAFF)
@pytest.mark.parametrize("steps", [(), ("accept",), ("accept", "start_preparation", "mark_ready")])
def test_an_order_the_restaurant_may_cancel_offers_cancel_for_the_restaurant(
    request, user_fixture, steps, buyer, restaurant
):
    order = advance(place_order(buyer, restaurant), *steps)

    response = _client_for(request.getfixturevalue(user_fixture)).get(
        _url(Order, "change", order.pk)
    )

    assert _cancellation_buttons(response) == ["cancel_for_restaurant"]
    assert _url(Order, "cancel_for_restaurant", order.pk) in response.content.decode()


@pytest.mark.django_db
def test_an_agent_cancels_for_the_restaurant_with_a_reason_and_an_explanation(
    agent, buyer, restaurant, menu
):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2})
    advance(order, "accept", "start_preparation")
    explanation = "The restaurant's oven broke down; they called us."
    client = _client_for(agent)

    response = client.post(
        _url(Order, "cancel_for_restaurant", order.pk),
        {"reason": "technical_issue", "explanation": explanation},
    )
    page = client.get(_url(Order, "change", order.pk))

    assert _messages(response) == [
        (
            "success",
            f"Order #{order.pk}: cancelled for the restaurant; the buyer gets {_money('27.99')} "
            "back in full and was told why.",
        )
    ]
    order.refresh_from_db()
    assert (order.status, order.cancellation_reason, order.cancellation_explanation) == (
        Order.Status.CANCELLED,
        "technical_issue",
        explanation,
    )
    assert [(r.destination, r.amount) for r in order.refunds.all()] == [("card", Decimal("27.99"))]
    goodwill = CreditGrant.objects.get(buyer=buyer)
    assert (goodwill.kind, goodwill.amount, goodwill.source) == (
        "promo",
        Decimal("5.00"),
        "restaurant_cancel_goodwill",
    )
    cancelled = order.events.get(name="cancel_by_restaurant")
    assert (cancelled.actor, cancelled.actor_role, cancelled.clauses) == (
        agent,
        OrderEvent.Role.SUPPORT,
        ["L-2.2", "K-S1", "K-S2", "K-S3", "K-OV"],
    )
    told = Notification.objects.get(user=buyer, title__contains="cancelled order")
    assert explanation in told.body
    assert _cancellation_buttons(page) == []
    fields = {
        field.field["name"]: html.unescape(strip_tags(field.contents()))
        for fieldset in page.context["adminform"]
        for line in fieldset
        for field in line
        if field.is_readonly
    }
    assert (fields["cancellation_reason"], fields["cancellation_explanation"]) == (
        "Technical issues",
        explanation,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"explanation": "The oven broke down."}, "This field is required."),
        (
            {"reason": "bored", "explanation": "The oven broke down."},
            "Select a valid choice. bored is not one of the available choices.",
        ),
        ({"reason": "technical_issue", "explanation": "x" * 401}, None),
        (
            {"reason": "technical_issue", "explanation": "Broken"},
            "Explain to the buyer why the order is cancelled.",
        ),
    ],
    ids=["no reason", "unknown reason", "explanation too long", "explanation too short"],
)
def test_a_refused_cancellation_for_the_restaurant_is_a_message_and_changes_nothing(
    agent, buyer, restaurant, data, message
):
    order = advance(place_order(buyer, restaurant), "accept")
    before = _order_snapshot(order)

    response = _client_for(agent).post(_url(Order, "cancel_for_restaurant", order.pk), data)

    assert response["Location"] == _url(Order, "change", order.pk)
    ((level, text),) = _messages(response)
    assert level == "error"
    assert text.startswith(f"Order #{order.pk}: ")
    if message:
        assert text == f"Order #{order.pk}: {message}"
    assert _order_snapshot(order) == before


@pytest.mark.django_db
def test_a_finished_order_offers_no_cancellation(agent, buyer, restaurant, partner):
    order = advance(place_order(buyer, restaurant), "accept", "start_preparation", "mark_ready")
    advance(order, "dispatch", "deliver")
    before = _order_snapshot(order)
    client = _client_for(agent)

    page = client.get(_url(Order, "change", order.pk))
    response = client.post(
        _url(Order, "cancel_for_restaurant", order.pk),
        {"reason": "technical_issue", "explanation": "The oven broke down."},
    )

    assert _cancellation_buttons(page) == []
    assert _messages(response) == [
        (
            "error",
            f"Order #{order.pk}: This order can no longer be cancelled by the restaurant.",
        )
    ]
    assert _order_snapshot(order) == before


@pytest.mark.django_db
def test_staff_without_a_support_role_get_no_cancellation_and_change_nothing(
    editor, viewer, requested
):
    before = _order_snapshot(requested)
    editor_client, viewer_client = _client_for(editor), _client_for(viewer)

    editor_page = editor_client.get(_url(Order, "change", requested.pk))
    editor_post = editor_client.post(_url(Order, "cancellation_request", requested.pk, "approve"))
    viewer_post = viewer_client.post(_url(Order, "cancellation_request", requested.pk, "approve"))

    assert _cancellation_buttons(editor_page) == []
    assert _messages(editor_post) == [("error", f"There is no order {requested.pk}.")]
    assert viewer_post.status_code == 403
    assert _order_snapshot(requested) == before


@pytest.mark.django_db
def test_non_staff_cannot_decide_from_the_order_page(client, buyer, partner, requested):
    before = _order_snapshot(requested)
    client.force_login(partner)

    responses = [
        client.post(_url(Order, "cancellation_request", requested.pk, "approve")),
        client.post(
            _url(Order, "cancel_for_restaurant", requested.pk),
            {"reason": "technical_issue", "explanation": "The oven broke down."},
        ),
    ]

    for response in responses:
        assert response.status_code == 302
        assert response["Location"].startswith(f"{reverse('admin:login')}?next=")
    assert _order_snapshot(requested) == before


# -- query counts ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_order_changelist_query_count_does_not_grow_with_orders(
    agent, buyer, restaurant, django_assert_num_queries
):
    client = _client_for(agent)
    url = _url(Order, "changelist")
    place_order(buyer, restaurant)
    client.get(url)  # warm up the session
    with CaptureQueriesContext(connection) as one_order:
        assert len(client.get(url).context["cl"].result_list) == 1
    for n in range(9):
        other = RestaurantFactory(name=f"Place {n}")
        place_order(UserFactory(), other, {MenuItemFactory(restaurant=other): 1})

    with django_assert_num_queries(len(one_order)):
        assert len(client.get(url).context["cl"].result_list) == 10


# -- policy versions ------------------------------------------------------------------------


def _fieldset_fields(fieldsets) -> list[str]:
    return [
        name
        for _, options in fieldsets
        for field in options["fields"]
        for name in (field if isinstance(field, tuple) else [field])
    ]


def test_every_policy_parameter_is_in_a_clause_fieldset():
    names = _fieldset_fields(POLICY_FIELDSETS)
    model_fields = [f.name for f in PolicyVersion._meta.concrete_fields if not f.primary_key]

    assert len(names) == len(set(names))
    assert [title.split()[0] for title, _ in POLICY_FIELDSETS[1:-1]] == [
        "L-2.1",
        "K-OV",
        "L-2.2",
        "L-7.1",
        "L-6.1",
        "L-5.1",
        "L-6.2",
        "L-4.1",
        "L-4.2",
        "L-8.1",
        "L-8.2",
    ]
    assert sorted(_fieldset_fields(policy_fieldsets())) == sorted(model_fields)


def _policy_form_data(**overrides) -> dict:
    """A complete add form: the model's defaults, effective in a week."""
    fields = [name for name in _fieldset_fields(POLICY_FIELDSETS) if name != "created_at"]
    data = {
        name: PolicyVersion._meta.get_field(name).get_default()
        for name in fields
        if name != "effective_from"
    }
    effective = timezone.localtime() + dt.timedelta(days=7)
    data |= {
        "label": "2",
        "text": "The policy, version 2.",
        "effective_from_0": effective.strftime("%Y-%m-%d"),
        "effective_from_1": effective.strftime("%H:%M:%S"),
    }
    data = {name: value for name, value in data.items() if value is not False}
    return data | overrides


@pytest.mark.django_db
def test_a_supervisor_schedules_a_new_version(supervisor):
    response = _client_for(supervisor).post(
        _url(PolicyVersion, "add"), _policy_form_data(late_partial_percent="40")
    )

    assert response.status_code == 302
    version = PolicyVersion.objects.get(label="2")
    assert version.late_partial_percent == Decimal("40")
    assert version.effective_from > timezone.now()


@pytest.mark.django_db
def test_policy_clean_errors_are_shown_and_nothing_is_saved(supervisor):
    response = _client_for(supervisor).post(
        _url(PolicyVersion, "add"),
        _policy_form_data(cancellation_fee_min_percent="25", cancellation_fee_max_percent="20"),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "cancellation_fee_max_percent": ["Must be at least cancellation fee min percent (25)."]
    }
    assert not PolicyVersion.objects.filter(label="2").exists()


@pytest.mark.django_db
def test_a_version_cannot_start_before_an_order_already_pinned(supervisor, buyer, restaurant):
    place_order(buyer, restaurant)
    yesterday = timezone.localtime() - dt.timedelta(days=1)

    response = _client_for(supervisor).post(
        _url(PolicyVersion, "add"),
        _policy_form_data(effective_from_0=yesterday.strftime("%Y-%m-%d")),
    )

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["effective_from"]
    assert not PolicyVersion.objects.filter(label="2").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("user_fixture", ["admin_user", "supervisor"])
def test_a_version_in_effect_is_read_only(request, user_fixture):
    version = PolicyVersion.objects.get(label="1")
    before = PolicyVersion.objects.values().get(pk=version.pk)
    client = _client_for(request.getfixturevalue(user_fixture))

    page = client.get(_url(PolicyVersion, "change", version.pk))
    post = client.post(
        _url(PolicyVersion, "change", version.pk), _policy_form_data(label="1", text="Changed")
    )
    delete = client.post(_url(PolicyVersion, "delete", version.pk), {"post": "yes"})

    assert page.status_code == 200
    assert page.context["adminform"].form.fields == {}
    assert (post.status_code, delete.status_code) == (403, 403)
    assert PolicyVersion.objects.values().get(pk=version.pk) == before


@pytest.mark.django_db
def test_a_scheduled_version_can_still_be_edited(supervisor):
    client = _client_for(supervisor)
    client.post(_url(PolicyVersion, "add"), _policy_form_data())
    version = PolicyVersion.objects.get(label="2")

    response = client.post(
        _url(PolicyVersion, "change", version.pk), _policy_form_data(late_small_credit="3.00")
    )

    assert response.status_code == 302
    version.refresh_from_db()
    assert version.late_small_credit == Decimal("3.00")


@pytest.mark.django_db
def test_agents_only_view_policy_versions(agent):
    client = _client_for(agent)

    add = client.post(_url(PolicyVersion, "add"), _policy_form_data())

    assert add.status_code == 403
    assert not PolicyVersion.objects.filter(label="2").exists()
