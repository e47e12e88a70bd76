"""The cancellation API (D-6, D-10): the preview on the order, the buyer's cancel, the
restaurant's cancel, approving and denying requests; who may do what; a double-clicked cancel
and a replayed Idempotency-Key that move money once."""

import datetime as dt
from decimal import Decimal as D

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import IdempotencyRecord, Notification
from credits.models import CreditGrant, CreditTransaction
from orders.models import Order, OrderEvent
from orders.services.cancellation import order_cancel_by_buyer
from orders.services.terms import restaurant_update_terms
from refunds.models import Refund, RestaurantLedgerEntry
from tests.concurrency import run_concurrently
from tests.conftest import (
    advance,
    give_credit,
    place_order,
    processor_refunds,
    refunds_processed,
    token_client,
)
from tests.factories import MenuItemFactory, RestaurantFactory

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "buyer", "other_buyer", "partner", "other_partner", "agent"]
NOT_A_PARTNER = {
    "code": "not_a_partner",
    "detail": "Only restaurant partners may use the seller API.",
}
MOZZARELLA = "We ran out of mozzarella, sorry!"


def detail_url(order_id) -> str:
    return f"/api/orders/{order_id}/"


def cancel_url(order_id) -> str:
    return f"/api/orders/{order_id}/cancel/"


def seller_cancel_url(order_id) -> str:
    return f"/api/seller/orders/{order_id}/cancel/"


def request_url(order_id, decision: str) -> str:
    return f"/api/seller/cancellation-requests/{order_id}/{decision}/"


REQUESTS = "/api/seller/cancellation-requests/"


def paid(buyer, restaurant, menu) -> Order:
    """24.99 paid for a 27.99 order: 3.00 promotional credit, 5.00 account credit, 19.99 card.
    The restaurant's 15 % fee on it is 3.75 (3.7485 rounded), leaving 21.24 to refund."""
    give_credit(buyer, "3.00", kind="promo")
    give_credit(buyer, "5.00", kind="account")
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2}, use_credit=True)
    assert (order.amount_charged, order.amount_paid) == (D("19.99"), D("24.99"))
    return order


@pytest.fixture
def paid_order(now, buyer, restaurant, menu) -> Order:
    return paid(buyer, restaurant, menu)


@pytest.fixture
def requested(paid_order, buyer) -> Order:
    """Accepted, then the buyer asked to cancel at the 3.75 fee."""
    advance(paid_order, "accept")
    order, _ = order_cancel_by_buyer(order_id=paid_order.pk, actor=buyer, quote=D("3.75"))
    return order


def money_moved() -> dict:
    """Everything a cancellation writes; equal before and after a refusal."""
    return {
        "refunds": Refund.objects.count(),
        "gateway_refunds": len(processor_refunds()),
        "events": OrderEvent.objects.count(),
        "credit_transactions": CreditTransaction.objects.count(),
        "grants": CreditGrant.objects.count(),
        "ledger": RestaurantLedgerEntry.objects.count(),
        "notifications": Notification.objects.count(),
    }


def refunds_of(order) -> list[tuple[str, D]]:
    return [(r.destination, r.amount) for r in Refund.objects.filter(order=order).order_by("pk")]


def _iso(moment: dt.datetime) -> str:
    return timezone.localtime(moment).isoformat().replace("+00:00", "Z")


# -- the preview on the order: GET /api/orders/{id}/ -----------------------------------------


def test_a_placed_order_previews_a_free_cancellation(api_as, buyer, paid_order):
    body = api_as(buyer).get(detail_url(paid_order.pk)).json()

    assert body["cancellation"] == {
        "allowed": True,
        "requires_restaurant_approval": False,
        "fee": "0.00",
        "refund_amount": "24.99",
        "clauses": ["L-2.1", "K-B3"],
        "code": "free_cancellation",
        "detail": "Free to cancel until the restaurant accepts: full refund of 24.99.",
        "window_ends_at": None,
    }


def test_an_accepted_order_previews_the_fee_and_the_end_of_the_window(api_as, buyer, paid_order):
    order = advance(paid_order, "accept")

    body = api_as(buyer).get(detail_url(order.pk)).json()

    assert body["cancellation"] == {
        "allowed": True,
        "requires_restaurant_approval": True,
        "fee": "3.75",
        "refund_amount": "21.24",
        "clauses": ["K-B1", "L-2.1"],
        "code": "cancellation_request",
        "detail": "The restaurant must approve; cancelling costs 3.75, you get 21.24 back.",
        "window_ends_at": (order.accepted_at + dt.timedelta(minutes=5)).isoformat(),
    }


def test_after_the_window_the_preview_says_why_not(now, api_as, buyer, paid_order):
    order = advance(paid_order, "accept")
    now.shift(dt.timedelta(minutes=5))

    cancellation = api_as(buyer).get(detail_url(order.pk)).json()["cancellation"]

    assert cancellation | {"window_ends_at": None} == {
        "allowed": False,
        "requires_restaurant_approval": False,
        "fee": "0.00",
        "refund_amount": "0.00",
        "clauses": ["K-B1"],
        "code": "window_passed",
        "detail": "The restaurant's 5-minute cancellation window has passed.",
        "window_ends_at": None,
    }


def test_the_detail_query_count_stays_constant_in_every_cancellation_state(
    api_as, buyer, partner, restaurant, menu, paid_order, django_assert_num_queries
):
    client = api_as(buyer)
    accepted = advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 3}), "accept")
    requested = advance(
        place_order(buyer, restaurant, {item: 2 for item in menu.values()}), "accept"
    )
    order_cancel_by_buyer(order_id=requested.pk, actor=buyer)
    client.post(cancel_url(paid_order.pk))  # cancelled, with two refunds and their events

    for order in [accepted, requested, paid_order]:
        with django_assert_num_queries(5):  # order, items, payments, refunds, events
            assert client.get(detail_url(order.pk)).json()["cancellation"]["code"] in {
                "cancellation_request", "already_requested", "order_closed",
            }  # fmt: skip


# -- the buyer cancels: POST /api/orders/{id}/cancel/ -----------------------------------------


def test_buyer_cancels_a_placed_order_for_free(api_as, buyer, partner, paid_order):
    response = api_as(buyer).post(cancel_url(paid_order.pk), {"quote": "0.00"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["status"]) == (paid_order.pk, "cancelled")
    assert [(r["destination"], r["amount"], r["status"]) for r in body["refunds"]] == [
        ("card", "19.99", "pending"),  # on its way: the processor is called after commit
        ("account_credit", "5.00", "succeeded"),
    ]
    assert (body["cancellation"]["allowed"], body["cancellation"]["code"]) == (
        False,
        "order_closed",
    )
    cancel_event = next(e for e in body["timeline"] if e["name"] == "cancel")
    assert (cancel_event["from_status"], cancel_event["to_status"], cancel_event["actor_role"]) == (
        "placed", "cancelled", "buyer",
    )  # fmt: skip
    assert cancel_event["clauses"] == ["L-2.1", "K-B3"]
    assert Order.objects.get(pk=paid_order.pk).status == "cancelled"
    assert refunds_of(paid_order) == [("card", D("19.99")), ("account_credit", D("5.00"))]
    assert CreditGrant.objects.get(buyer=buyer, kind="promo").remaining == D("3.00")
    assert sorted(n.user.username for n in Notification.objects.all()) == ["ada", "luigi"]


def test_cancelling_without_a_body_works_too(api_as, buyer, paid_order):
    response = api_as(buyer).post(cancel_url(paid_order.pk))
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")


def test_buyer_asks_inside_the_window_and_waits_for_the_restaurant(
    api_as, buyer, partner, paid_order
):
    advance(paid_order, "accept")

    response = api_as(buyer).post(cancel_url(paid_order.pk), {"quote": "3.75"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["refunds"]) == ("cancellation_requested", [])
    assert body["cancellation"]["code"] == "already_requested"
    order = Order.objects.get(pk=paid_order.pk)
    assert (order.status, order.cancellation_fee) == ("cancellation_requested", D("3.75"))
    assert not Refund.objects.exists()
    [note] = Notification.objects.filter(user=partner)
    assert note.title == f"Cancellation request for order #{order.pk}"


@pytest.mark.parametrize(
    ("minutes", "steps", "code", "clauses"),
    [
        pytest.param(5, ["accept"], "window_passed", ["K-B1"], id="after the window"),
        pytest.param(
            1, ["accept", "start_preparation"], "preparation_started", ["L-2.1"],
            id="preparation started",
        ),
        pytest.param(
            1, ["accept", "start_preparation", "mark_ready", "dispatch", "deliver"],
            "preparation_started", ["L-2.1"], id="delivered",
        ),
    ],
)  # fmt: skip
def test_a_refused_cancellation_is_a_409_with_the_clause_and_changes_nothing(
    now, api_as, buyer, paid_order, minutes, steps, code, clauses
):
    order = advance(paid_order, *steps)
    now.shift(dt.timedelta(minutes=minutes))
    before = money_moved()

    client = api_as(buyer)

    response = client.post(cancel_url(order.pk))
    # with the fee the buyer was shown, the refusal comes as changed terms, with the new ones
    quoted = client.post(cancel_url(order.pk), {"quote": "3.75"}, format="json")

    assert response.status_code == 409
    assert set(response.json()) == {"code", "detail", "clauses"}
    assert (response.json()["code"], response.json()["clauses"]) == (code, clauses)
    assert (quoted.status_code, quoted.json()["code"]) == (409, "quote_changed")
    assert quoted.json()["cancellation"]["code"] == code
    assert quoted.json()["cancellation"]["allowed"] is False
    assert Order.objects.get(pk=order.pk).status == order.status
    assert money_moved() == before


def test_a_second_request_after_a_denial_is_refused(api_as, buyer, partner, requested):
    api_as(partner).post(
        request_url(requested.pk, "deny"), {"reason": "Already cooking."}, format="json"
    )
    response = api_as(buyer).post(cancel_url(requested.pk))
    assert response.status_code == 409
    assert response.json() == {
        "code": "request_denied",
        "detail": "The restaurant already declined to cancel this order.",
        "clauses": ["K-B1", "L-2.1"],
    }


def test_a_fee_changed_after_acceptance_leaves_the_quote_shown_binding(
    api_as, buyer, partner, restaurant, paid_order
):
    """K-B1, L-2.1: the window and fee of the order summary at acceptance are the order's; a
    restaurant that changes its terms afterwards changes nothing for it."""
    advance(paid_order, "accept")
    client = api_as(buyer)
    shown = client.get(detail_url(paid_order.pk)).json()["cancellation"]
    assert shown["fee"] == "3.75"
    restaurant_update_terms(
        restaurant_id=restaurant.pk, actor=partner, window_minutes=1, fee_percent=D("20")
    )
    assert client.get(detail_url(paid_order.pk)).json()["cancellation"] == shown

    response = client.post(cancel_url(paid_order.pk), {"quote": shown["fee"]}, format="json")

    assert response.status_code == 200, response.content
    order = Order.objects.get(pk=paid_order.pk)
    assert (order.status, order.cancellation_fee) == ("cancellation_requested", D("3.75"))
    assert not Refund.objects.exists()


def test_a_free_cancellation_gone_since_the_preview_is_a_quote_change(api_as, buyer, paid_order):
    """The buyer saw "free" on a placed order, the restaurant accepted meanwhile."""
    advance(paid_order, "accept")
    before = money_moved()

    response = api_as(buyer).post(cancel_url(paid_order.pk), {"quote": "0.00"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "quote_changed"
    assert response.json()["cancellation"]["requires_restaurant_approval"] is True
    assert money_moved() == before


@pytest.mark.parametrize(
    "quote",
    [
        pytest.param("abc", id="not a number"),
        pytest.param("-1.00", id="negative"),
        pytest.param("3.751", id="three decimals"),
        pytest.param("12345678901.00", id="too many digits"),
        pytest.param([3.75], id="a list"),
        pytest.param("NaN", id="not a number, in words"),
    ],
)
def test_a_bad_quote_is_a_400_that_changes_nothing(api_as, buyer, paid_order, quote):
    before = money_moved()

    response = api_as(buyer).post(cancel_url(paid_order.pk), {"quote": quote}, format="json")

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("invalid_quote", "quote")
    assert response.json()["detail"].startswith("quote: ")
    assert Order.objects.get(pk=paid_order.pk).status == "placed"
    assert money_moved() == before


def test_another_buyers_order_is_a_404_like_a_missing_one(api_as, other_buyer, paid_order):
    before = money_moved()
    client = api_as(other_buyer)

    theirs = client.post(cancel_url(paid_order.pk), {"quote": "abc"}, format="json")
    missing = client.post(cancel_url(987654))

    assert (theirs.status_code, missing.status_code) == (404, 404)
    assert theirs.json() == {"code": "not_found", "detail": f"You have no order {paid_order.pk}."}
    assert missing.json() == {"code": "not_found", "detail": "You have no order 987654."}
    assert Order.objects.get(pk=paid_order.pk).status == "placed"
    assert money_moved() == before


# -- a double click and a retried request: one cancellation, one refund set -------------------


def _cancel_refund_counts(order) -> tuple[int, int, int]:
    return (
        Refund.objects.filter(order=order).count(),
        len(processor_refunds()),
        OrderEvent.objects.filter(order=order, name="cancel").count(),
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("keys", [(None, None), ("click-1", "click-2")], ids=["no key", "two keys"])
def test_a_double_clicked_cancel_cancels_and_refunds_once(buyer, restaurant, menu, keys):
    order = paid(buyer, restaurant, menu)

    def click(key):
        def post():
            client = APIClient()
            client.force_authenticate(buyer)
            headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
            return client.post(cancel_url(order.pk), {"quote": "0.00"}, format="json", **headers)

        return post

    clicks = iter([click(keys[0]), click(keys[1])])
    responses = run_concurrently(lambda: next(clicks)(), 2)

    assert sorted(r.status_code for r in responses) == [200, 409], responses
    [refused] = [r for r in responses if r.status_code == 409]
    # The second click quoted "free", which no longer holds: it gets the terms that do.
    assert refused.json()["code"] == "quote_changed"
    assert refused.json()["cancellation"]["code"] == "order_closed"
    assert Order.objects.get(pk=order.pk).status == "cancelled"
    # one refund set: the card part and the account-credit part, one gateway refund
    assert refunds_of(order) == [("card", D("19.99")), ("account_credit", D("5.00"))]
    assert _cancel_refund_counts(order) == (2, 1, 1)
    assert CreditTransaction.objects.filter(kind="restore", order=order).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_double_click_with_one_key_cancels_once(buyer, restaurant, menu):
    order = paid(buyer, restaurant, menu)

    def post():
        client = APIClient()
        client.force_authenticate(buyer)
        return client.post(cancel_url(order.pk), format="json", HTTP_IDEMPOTENCY_KEY="dbl")

    responses = run_concurrently(post, 2)

    fresh = [r for r in responses if r.status_code == 200 and "Idempotent-Replayed" not in r]
    others = [r for r in responses if r not in fresh]
    assert len(fresh) == 1
    [other] = others
    # Either still running (409) or already done (the same answer, replayed).
    if other.status_code == 409:
        assert other.json()["code"] == "idempotency_key_in_progress"
    else:
        assert (other.status_code, other.content) == (200, fresh[0].content)
    assert _cancel_refund_counts(order) == (2, 1, 1)


def test_a_repeated_idempotency_key_replays_the_cancellation(api_as, buyer, paid_order):
    client = api_as(buyer)

    first = client.post(
        cancel_url(paid_order.pk), {"quote": "0.00"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1"
    )
    again = client.post(
        cancel_url(paid_order.pk), {"quote": "0.00"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1"
    )

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    refunds_processed()
    assert _cancel_refund_counts(paid_order) == (2, 1, 1)
    assert IdempotencyRecord.objects.get(key="c-1").response_status == 200

    other_body = client.post(
        cancel_url(paid_order.pk), {"quote": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1"
    )
    new_click = client.post(cancel_url(paid_order.pk), {"quote": "0.00"}, format="json")

    assert (other_body.status_code, other_body.json()["code"]) == (422, "idempotency_key_mismatch")
    assert (new_click.status_code, new_click.json()["code"]) == (409, "quote_changed")
    assert new_click.json()["cancellation"]["code"] == "order_closed"
    assert _cancel_refund_counts(paid_order) == (2, 1, 1)


def test_a_refusal_is_replayed_too(now, api_as, buyer, paid_order):
    advance(paid_order, "accept")
    now.shift(dt.timedelta(minutes=6))
    client = api_as(buyer)

    first = client.post(cancel_url(paid_order.pk), HTTP_IDEMPOTENCY_KEY="late")
    again = client.post(cancel_url(paid_order.pk), HTTP_IDEMPOTENCY_KEY="late")

    assert (first.status_code, again.status_code) == (409, 409)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"


# -- the restaurant answers a request: approve / deny -----------------------------------------


def test_partner_approves_and_the_buyer_gets_paid_less_the_fee(api_as, buyer, partner, requested):
    response = api_as(partner).post(request_url(requested.pk, "approve"))

    assert response.status_code == 200, response.content
    assert (response.json()["id"], response.json()["status"]) == (requested.pk, "cancelled")
    assert response.json()["next_actions"] == []
    assert "amount_paid" not in response.json()
    # 21.24 = 24.99 - 3.75, by origin: card 19.99 x 21.24 / 24.99, the rest as account credit
    assert refunds_of(requested) == [("card", D("16.99")), ("account_credit", D("4.25"))]
    assert sum(amount for _, amount in refunds_of(requested)) == D("21.24")
    refunds_processed()
    assert len(processor_refunds()) == 1
    [fee] = RestaurantLedgerEntry.objects.all()
    assert (fee.kind, fee.amount, fee.order_id, fee.restaurant_id) == (
        "cancellation_fee", D("3.75"), requested.pk, requested.restaurant_id,
    )  # fmt: skip
    buyer_view = api_as(buyer).get(detail_url(requested.pk)).json()
    approve = next(e for e in buyer_view["timeline"] if e["name"] == "approve")
    assert (approve["actor_role"], approve["clauses"]) == ("restaurant", ["K-B1", "L-2.1"])
    assert sorted(r["amount"] for r in buyer_view["refunds"]) == ["16.99", "4.25"]
    assert Notification.objects.filter(
        user=buyer, title=f"Order #{requested.pk} cancelled"
    ).exists()


def test_approving_twice_is_a_409_and_refunds_once(api_as, partner, requested):
    client = api_as(partner)
    assert client.post(request_url(requested.pk, "approve")).status_code == 200
    before = money_moved()

    again = client.post(request_url(requested.pk, "approve"))

    assert again.status_code == 409
    assert again.json() == {
        "code": "no_cancellation_request",
        "detail": f"Order #{requested.pk} has no cancellation request waiting (it is cancelled).",
    }
    assert money_moved() == before
    assert RestaurantLedgerEntry.objects.filter(kind="cancellation_fee").count() == 1


def test_partner_denies_and_the_order_goes_on(api_as, buyer, partner, requested):
    response = api_as(partner).post(
        request_url(requested.pk, "deny"),
        {"reason": "The pizzas are already in the oven."},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["next_actions"]) == (
        "accepted", ["start-preparation"],
    )  # fmt: skip
    order = Order.objects.get(pk=requested.pk)
    assert (order.cancellation_fee, order.cancellation_denied_at is not None) == (None, True)
    assert not Refund.objects.exists()
    assert not RestaurantLedgerEntry.objects.exists()
    note = Notification.objects.get(user=buyer, title=f"Order #{requested.pk}: cancellation denied")
    assert note.body.endswith("The pizzas are already in the oven.")
    deny = OrderEvent.objects.get(order=requested, name="deny")
    assert (deny.reason, deny.actor) == ("The pizzas are already in the oven.", partner)


def test_a_deny_without_a_reason_is_a_400_and_changes_nothing(api_as, buyer, partner, requested):
    """K-S2's spirit: the buyer is told why; no reason, no denial."""
    Notification.objects.all().delete()
    response = api_as(partner).post(
        request_url(requested.pk, "deny"), {"reason": "  "}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": "reason_required",
        "detail": "Tell the buyer why the cancellation request is denied.",
        "clauses": ["L-2.1"],
    }
    order = Order.objects.get(pk=requested.pk)
    assert (order.status, order.cancellation_denied_at) == ("cancellation_requested", None)
    assert not OrderEvent.objects.filter(order=requested, name="deny").exists()
    assert not Notification.objects.exists()
    assert not Refund.objects.exists()


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_an_order_without_a_request_is_a_409(api_as, partner, paid_order, decision):
    order = advance(paid_order, "accept")
    before = money_moved()

    response = api_as(partner).post(
        request_url(order.pk, decision), {"reason": "Too late."}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "no_cancellation_request"
    assert Order.objects.get(pk=order.pk).status == "accepted"
    assert money_moved() == before


def test_a_deny_reason_too_long_is_a_400(api_as, partner, requested):
    response = api_as(partner).post(
        request_url(requested.pk, "deny"), {"reason": "x" * 2001}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "too_long")
    assert Order.objects.get(pk=requested.pk).status == "cancellation_requested"


def test_pending_requests_list_the_fee_kept_and_when_support_decides(
    api_as, buyer, partner, other_partner, restaurant, menu, requested, django_assert_num_queries
):
    place_order(buyer, restaurant)  # placed: not a request
    theirs = RestaurantFactory(slug="theirs", members=[other_partner])
    MenuItemFactory(restaurant=theirs)
    theirs_requested = advance(place_order(buyer, theirs), "accept", actor=other_partner)
    order_cancel_by_buyer(order_id=theirs_requested.pk, actor=buyer)
    client = api_as(partner)

    # membership, count, the page with its joins, items, refunds (what is still refundable)
    with django_assert_num_queries(5):
        response = client.get(REQUESTS)

    assert response.status_code == 200
    [row] = response.json()["results"]
    order = Order.objects.get(pk=requested.pk)
    assert row["id"] == order.pk
    assert (row["status"], row["buyer_first_name"]) == ("cancellation_requested", "Ada")
    assert (row["fee_kept"], row["refund_amount"]) == ("3.75", "21.24")
    assert row["cancellation_requested_at"] == _iso(order.cancellation_requested_at)
    # K-OV: the pinned version gives the restaurant 10 minutes before support decides.
    assert row["support_decides_at"] == _iso(
        order.cancellation_requested_at + dt.timedelta(minutes=10)
    )
    assert "amount_paid" not in row
    assert "payments" not in row
    for _ in range(3):
        more = advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 2}), "accept")
        order_cancel_by_buyer(order_id=more.pk, actor=buyer)
    with django_assert_num_queries(5):
        assert len(client.get(REQUESTS).json()["results"]) == 4


# -- the restaurant cancels: POST /api/seller/orders/{id}/cancel/ ----------------------------


def test_restaurant_cancels_once_with_full_refund_goodwill_and_the_explanation(
    api_as, buyer, partner, paid_order, django_capture_on_commit_callbacks
):
    advance(paid_order, "accept", "start_preparation")
    client = api_as(partner)
    body = {"reason": "item_unavailable", "explanation": MOZZARELLA}

    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(
            seller_cancel_url(paid_order.pk), body, format="json", HTTP_IDEMPOTENCY_KEY="r-1"
        )
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(
            seller_cancel_url(paid_order.pk), body, format="json", HTTP_IDEMPOTENCY_KEY="r-1"
        )

    assert (first.status_code, again.status_code) == (200, 200), first.content
    assert (first.json()["status"], first.json()["next_actions"]) == ("cancelled", [])
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    order = Order.objects.get(pk=paid_order.pk)
    assert (order.status, order.cancellation_reason, order.cancellation_explanation) == (
        "cancelled", "item_unavailable", MOZZARELLA,
    )  # fmt: skip
    # the full 24.99 back, once
    assert refunds_of(order) == [("card", D("19.99")), ("account_credit", D("5.00"))]
    refunds_processed()
    assert len(processor_refunds()) == 1
    [goodwill] = CreditGrant.objects.filter(source="restaurant_cancel_goodwill")
    assert (goodwill.buyer, goodwill.kind, goodwill.amount, goodwill.order) == (
        buyer, "promo", D("5.00"), order,
    )  # fmt: skip
    [note, sent] = Notification.objects.filter(user=buyer).order_by("pk")
    assert MOZZARELLA in note.body
    assert note.title == f"Trattoria Roma cancelled order #{order.pk}"
    assert (sent.title, "sent to your card" in sent.body) == (
        f"Order #{order.pk}: refund sent",
        True,
    )
    assert [m.to for m in mail.outbox] == [[buyer.email], [buyer.email]]  # cancelled; sent
    assert MOZZARELLA in mail.outbox[0].body
    event = OrderEvent.objects.get(order=order, name="cancel_by_restaurant")
    assert (event.actor, event.actor_role) == (partner, "restaurant")
    assert (
        event.message == f"Cancelled by the restaurant (a menu item is unavailable): {MOZZARELLA}"
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"reason": "change_of_mind", "explanation": MOZZARELLA}, "invalid_reason",
                     id="a reason not in the policy"),
        pytest.param({"reason": "", "explanation": MOZZARELLA}, "invalid_reason",
                     id="a blank reason"),
        pytest.param({"reason": 3, "explanation": MOZZARELLA}, "invalid_reason",
                     id="a number as the reason"),
        pytest.param({"explanation": MOZZARELLA}, "missing_field", id="no reason"),
        pytest.param({"reason": "technical_issue", "explanation": " short "},
                     "explanation_required", id="a short explanation"),
        pytest.param({"reason": "technical_issue"}, "explanation_required",
                     id="no explanation"),
        pytest.param({"reason": "technical_issue", "explanation": "x" * 2001}, "too_long",
                     id="an explanation too long"),
    ],
)  # fmt: skip
def test_a_bad_restaurant_cancellation_is_a_400_that_changes_nothing(
    api_as, partner, paid_order, body, code
):
    before = money_moved()

    response = api_as(partner).post(seller_cancel_url(paid_order.pk), body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert Order.objects.get(pk=paid_order.pk).status == "placed"
    assert money_moved() == before


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param(["accept", "start_preparation", "mark_ready", "dispatch"], id="on its way"),
        pytest.param(
            ["accept", "start_preparation", "mark_ready", "dispatch", "deliver"], id="delivered"
        ),
    ],
)
def test_restaurant_cannot_cancel_an_order_that_left(api_as, partner, paid_order, steps):
    order = advance(paid_order, *steps)
    before = money_moved()

    response = api_as(partner).post(
        seller_cancel_url(order.pk),
        {"reason": "technical_issue", "explanation": "Our till broke down."},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["code"] == "not_cancellable"
    assert response.json()["clauses"] == ["L-2.2", "K-S1", "K-S2", "K-S3"]
    assert Order.objects.get(pk=order.pk).status == order.status
    assert money_moved() == before


def test_restaurant_cancels_a_cancelled_order_once(api_as, buyer, partner, paid_order):
    client = api_as(partner)
    body = {"reason": "operating_hours", "explanation": "We close early tonight."}
    assert client.post(seller_cancel_url(paid_order.pk), body, format="json").status_code == 200

    again = client.post(seller_cancel_url(paid_order.pk), body, format="json")

    assert (again.status_code, again.json()["code"]) == (409, "not_cancellable")
    assert CreditGrant.objects.filter(source="restaurant_cancel_goodwill").count() == 1
    refunds_processed()
    assert _cancel_refund_counts(paid_order)[:2] == (2, 1)


# -- who may do what: role x endpoint --------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 200),
        ("other_buyer", 404),
        ("partner", 404),
        ("other_partner", 404),
        ("agent", 404),
    ],
)
def test_matrix_buyer_cancel(now, users, restaurant, role, expected):
    order = place_order(users["buyer"], restaurant)
    before = money_moved()

    response = token_client(users[role]).post(cancel_url(order.pk))

    assert response.status_code == expected
    status = Order.objects.get(pk=order.pk).status
    if expected == 200:
        assert (status, Refund.objects.filter(order=order).count()) == ("cancelled", 1)
    else:
        assert set(response.json()) == {"code", "detail"}
        assert status == "placed"
        assert money_moved() == before


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 200),
        ("other_buyer", 404),
        ("partner", 404),
        ("other_partner", 404),
        ("agent", 404),
    ],
)
def test_matrix_order_detail_with_its_cancellation(now, users, restaurant, role, expected):
    order = place_order(users["buyer"], restaurant)
    response = token_client(users[role]).get(detail_url(order.pk))
    assert response.status_code == expected
    assert ("cancellation" in response.json()) == (expected == 200)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 403),
        ("other_buyer", 403),
        ("partner", 200),
        ("other_partner", 404),
        ("agent", 403),
    ],
)
def test_matrix_seller_cancel(now, users, restaurant, role, expected):
    order = place_order(users["buyer"], restaurant)
    before = money_moved()

    response = token_client(users[role]).post(
        seller_cancel_url(order.pk),
        {"reason": "technical_issue", "explanation": "Our oven is broken."},
        format="json",
    )

    assert response.status_code == expected
    status = Order.objects.get(pk=order.pk).status
    if expected == 200:
        assert status == "cancelled"
        assert CreditGrant.objects.filter(source="restaurant_cancel_goodwill").count() == 1
    else:
        assert status == "placed"
        assert money_moved() == before
    if expected == 403:
        assert response.json() == NOT_A_PARTNER


@pytest.mark.parametrize(("decision", "outcome"), [("approve", "cancelled"), ("deny", "accepted")])
@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 403),
        ("other_buyer", 403),
        ("partner", 200),
        ("other_partner", 404),
        ("agent", 403),
    ],
)
def test_matrix_answer_a_cancellation_request(
    now, users, restaurant, role, expected, decision, outcome
):
    order = advance(place_order(users["buyer"], restaurant), "accept")
    order_cancel_by_buyer(order_id=order.pk, actor=users["buyer"])
    before = money_moved()

    response = token_client(users[role]).post(
        request_url(order.pk, decision), {"reason": "Already cooking."}, format="json"
    )

    assert response.status_code == expected
    status = Order.objects.get(pk=order.pk).status
    if expected == 200:
        assert status == outcome
    else:
        assert status == "cancellation_requested"
        assert money_moved() == before
    if expected == 404:
        assert response.json() == {
            "code": "not_found",
            "detail": f"Your restaurants have no order {order.pk}.",
        }


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 403),
        ("other_buyer", 403),
        ("partner", 200),
        ("other_partner", 200),
        ("agent", 403),
    ],
)
def test_matrix_cancellation_requests_list(now, users, restaurant, role, expected):
    order = advance(place_order(users["buyer"], restaurant), "accept")
    order_cancel_by_buyer(order_id=order.pk, actor=users["buyer"])

    response = token_client(users[role]).get(REQUESTS)

    assert response.status_code == expected
    if expected == 200:
        rows = response.json()["results"]
        assert [r["id"] for r in rows] == ([order.pk] if role == "partner" else [])


def test_a_missing_order_is_a_404_on_every_seller_endpoint(api_as, partner, restaurant):
    client = api_as(partner)
    for url in [seller_cancel_url(987654), request_url(987654, "approve"),
                request_url(987654, "deny")]:  # fmt: skip
        response = client.post(url, {"reason": "technical_issue"}, format="json")
        assert response.status_code == 404, url


# -- the schema ------------------------------------------------------------------------------


def test_schema_lists_the_cancellation_endpoints(client):
    schema = client.get("/api/schema/").content.decode()
    for path in [
        "/api/orders/{id}/cancel/:",
        "/api/seller/orders/{id}/cancel/:",
        "/api/seller/cancellation-requests/:",
        "/api/seller/cancellation-requests/{order_id}/approve/:",
        "/api/seller/cancellation-requests/{order_id}/deny/:",
    ]:
        assert path in schema
    assert "CancellationRefusal" in schema
