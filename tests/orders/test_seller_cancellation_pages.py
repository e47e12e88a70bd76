"""Seller portal, cancellation (journeys "Restaurant partner" 2, 3, 6): the partner cancels an
order with a reason, answers buyers' cancellation requests, and sets the cancellation window
and fee inside the policy's bounds. Every refusal changes nothing."""

import datetime as dt
import html as html_lib
import re
from decimal import Decimal as D

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.test import Client
from django.urls import reverse

from core.models import Notification
from credits.models import CreditGrant
from disputes.models import Intervention
from disputes.tasks import hand_unanswered_cancellation_requests_to_support
from orders.models import Order, OrderEvent
from orders.policy import RestaurantCancelReason
from orders.services.cancellation import order_cancel_by_buyer
from refunds.models import Refund, RestaurantLedgerEntry
from tests.conftest import advance, give_credit, place_order
from tests.factories import MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = pytest.mark.django_db

QUEUE = reverse("seller:queue")
REQUESTS = reverse("seller:cancellation-requests")
SETTINGS = reverse("seller:settings")
TIMES = "\N{MULTIPLICATION SIGN}"
EXPLANATION = "We ran out of mozzarella, so sorry!"


@pytest.fixture
def luigi(client, partner, restaurant):
    """The test client signed in as the partner of Trattoria Roma."""
    client.force_login(partner)
    return client


@pytest.fixture
def other_restaurant(db):
    """A restaurant the partner is not a member of, with its own partner and menu."""
    restaurant = RestaurantFactory(
        name="Sushi Kyo", slug="kyo", members=[UserFactory(username="kenji")]
    )
    MenuItemFactory(restaurant=restaurant, name="Nigiri", price=D("9.00"))
    return restaurant


@pytest.fixture
def paid_order(buyer, restaurant, menu):
    """Two Margherita delivered: 27.99, of which 5.00 paid with account credit, 22.99 by card."""
    give_credit(buyer, "5.00", kind="account")
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2}, use_credit=True)
    assert (order.amount_paid, order.amount_charged, order.account_credit_applied) == (
        D("27.99"),
        D("22.99"),
        D("5.00"),
    )
    return order


def requested(order, buyer) -> Order:
    """Accept the order and have the buyer ask to cancel it inside the window."""
    advance(order, "accept")
    order, _ = order_cancel_by_buyer(order_id=order.pk, actor=buyer)
    assert order.status == Order.Status.CANCELLATION_REQUESTED
    return order


def cancel_url(order) -> str:
    return reverse("seller:cancel", args=[order.pk])


def approve_url(order) -> str:
    return reverse("seller:cancellation-approve", args=[order.pk])


def deny_url(order) -> str:
    return reverse("seller:cancellation-deny", args=[order.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def text(response_or_html) -> str:
    """The visible text of a page or a piece of one, whitespace collapsed."""
    raw = getattr(response_or_html, "content", None)
    raw = raw.decode() if raw is not None else response_or_html
    words = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", raw)).split())
    return re.sub(r"\( ", "(", re.sub(r" ([.,;:)])", r"\1", words))


def section(response, element_id: str) -> str:
    """The HTML of the element with this id (an <article>, <tr> or <dd>), or ""."""
    match = re.search(
        rf'<(article|tr|dd|div|p)\b[^>]*id="{element_id}".*?</\1>', response.content.decode(), re.S
    )
    return match.group(0) if match else ""


def card(response, order) -> str:
    return section(response, f"order-{order.pk}")


def nothing_moved(order) -> None:
    assert not Refund.objects.filter(order=order).exists()
    assert not CreditGrant.objects.filter(source="restaurant_cancel_goodwill").exists()
    assert not RestaurantLedgerEntry.objects.filter(kind="cancellation_fee").exists()


# -- cancelling an order: the form -----------------------------------------------------------


def test_the_cancel_page_shows_the_reasons_and_the_consequence_before_confirming(luigi, paid_order):
    response = luigi.get(cancel_url(paid_order))

    assert response.status_code == 200
    page = text(response)
    assert f"Cancel order #{paid_order.pk}" in page
    assert f"2 {TIMES} Margherita" in page
    for code, label in RestaurantCancelReason.LABELS.items():
        assert f'value="{code}"' in response.content.decode()
        assert label in page
    assert 'name="explanation"' in response.content.decode()
    assert (
        "The buyer gets a full refund of 27.99 USD and a goodwill credit of 5.00 USD; refunds "
        "caused by the restaurant may be deducted from your payouts (L-9)."
    ) in page
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()


@pytest.mark.parametrize(
    ("steps", "has_link"),
    [
        ((), True),
        (("accept",), True),
        (("accept", "start_preparation"), True),
        (("accept", "start_preparation", "mark_ready"), True),
        (("accept", "start_preparation", "mark_ready", "dispatch"), False),
    ],
)
def test_queue_cards_offer_cancel_only_where_the_restaurant_may_cancel(
    luigi, buyer, restaurant, steps, has_link
):
    order = advance(place_order(buyer, restaurant), *steps)

    link = f'<a href="{cancel_url(order)}" class="order-cancel-link">Cancel order</a>'
    assert (link in card(luigi.get(QUEUE), order)) is has_link
    assert (
        link
        in luigi.get(
            reverse("seller:queue-fragment"), headers={"HX-Request": "true"}
        ).content.decode()
    ) is has_link


def test_a_requested_order_links_to_its_request_instead_of_cancel(luigi, buyer, restaurant):
    order = requested(place_order(buyer, restaurant), buyer)

    order_card = card(luigi.get(QUEUE), order)

    assert f'href="{REQUESTS}#request-{order.pk}"' in order_card
    assert "Answer the request" in order_card
    assert cancel_url(order) not in order_card


def test_the_cancel_page_of_a_requested_order_sends_the_partner_to_the_request(
    luigi, paid_order, buyer
):
    order = requested(paid_order, buyer)

    response = luigi.get(cancel_url(order))

    assert response.status_code == 302
    assert response.url == f"{REQUESTS}#request-{order.pk}"
    assert messages_of(luigi.get(REQUESTS)) == [
        f"The buyer asked to cancel order #{order.pk}: approve or deny the request."
    ]
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLATION_REQUESTED


def test_the_partner_cancels_through_the_form(
    luigi, paid_order, buyer, partner, django_capture_on_commit_callbacks
):
    advance(paid_order, "accept", "start_preparation")

    with django_capture_on_commit_callbacks(execute=True):
        response = luigi.post(
            cancel_url(paid_order),
            {"reason": "item_unavailable", "explanation": f"  {EXPLANATION}  "},
            follow=True,
        )

    assert response.redirect_chain == [(QUEUE, 302)]
    assert messages_of(response) == [
        f"Order #{paid_order.pk} cancelled. The buyer has your explanation and gets 27.99 USD "
        "back in full."
    ]
    order = Order.objects.get(pk=paid_order.pk)
    assert order.status == Order.Status.CANCELLED
    assert (order.cancellation_reason, order.cancellation_explanation) == (
        "item_unavailable",
        EXPLANATION,
    )
    # Everything paid comes back where it came from (D-7).
    assert [(r.destination, r.amount) for r in Refund.objects.filter(order=order)] == [
        ("card", D("22.99")),
        ("account_credit", D("5.00")),
    ]
    goodwill = CreditGrant.objects.get(source="restaurant_cancel_goodwill")
    assert (goodwill.buyer, goodwill.kind, goodwill.amount) == (buyer, "promo", D("5.00"))
    note = Notification.objects.exclude(title__endswith="refund sent").get(user=buyer)
    assert EXPLANATION in note.body
    assert [m.to for m in mail.outbox] == [[buyer.email]] * 2  # the news, then "refund sent"
    assert EXPLANATION in mail.outbox[0].body
    event = order.events.get(name="cancel_by_restaurant")
    assert (event.actor, event.actor_role, event.from_status) == (
        partner,
        "restaurant",
        "preparing",
    )
    assert card(response, order) == ""


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        (
            {"reason": "technical_issue", "explanation": " too short "},
            "explanation",
            "Explain to the buyer why the order is cancelled.",
        ),
        (
            {"reason": "too_busy", "explanation": EXPLANATION},
            "reason",
            "Choose one of the reasons the policy allows (L-2.2).",
        ),
        ({"explanation": EXPLANATION}, "reason", "This field is required."),
        (
            {"reason": "technical_issue", "explanation": ""},
            "explanation",
            "This field is required.",
        ),
    ],
)
def test_a_refused_cancellation_shows_the_form_again_and_creates_nothing(
    luigi, paid_order, data, field, error, django_capture_on_commit_callbacks
):
    events = OrderEvent.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        response = luigi.post(cancel_url(paid_order), data)

    assert response.status_code == 400
    assert response.context["form"].errors == {field: [error]}
    assert error in text(section(response, f"{field}-errors"))
    assert "The buyer gets a full refund of 27.99 USD" in text(response)
    if data["explanation"]:  # what the partner typed is kept
        assert data["explanation"].strip() in response.content.decode()
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PLACED
    assert OrderEvent.objects.count() == events
    nothing_moved(paid_order)
    assert not Notification.objects.exists()
    assert mail.outbox == []


def test_an_order_that_has_left_the_restaurant_cannot_be_cancelled(luigi, paid_order):
    advance(paid_order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    events = OrderEvent.objects.count()

    page = luigi.get(cancel_url(paid_order), follow=True)
    post = luigi.post(
        cancel_url(paid_order),
        {"reason": "technical_issue", "explanation": EXPLANATION},
        follow=True,
    )

    assert page.redirect_chain == [(QUEUE, 302)]
    assert messages_of(page) == [
        f"Order #{paid_order.pk} is delivered: the restaurant can no longer cancel it (L-2.2)."
    ]
    assert post.redirect_chain == [(QUEUE, 302)]
    assert messages_of(post) == [
        f"Order #{paid_order.pk}: This order can no longer be cancelled by the restaurant."
    ]
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.DELIVERED
    assert OrderEvent.objects.count() == events
    nothing_moved(paid_order)
    assert list(RestaurantLedgerEntry.objects.values_list("kind", flat=True)) == ["sale"]


def test_cancelling_twice_cancels_and_refunds_once(luigi, paid_order):
    data = {"reason": "cannot_fulfill", "explanation": EXPLANATION}

    first = luigi.post(cancel_url(paid_order), data, follow=True)
    second = luigi.post(cancel_url(paid_order), data, follow=True)

    assert messages_of(first)[0].startswith(f"Order #{paid_order.pk} cancelled.")
    assert messages_of(second) == [
        f"Order #{paid_order.pk}: This order can no longer be cancelled by the restaurant."
    ]
    assert Refund.objects.filter(order=paid_order).count() == 2  # card and account credit
    assert CreditGrant.objects.filter(source="restaurant_cancel_goodwill").count() == 1


def test_another_restaurants_order_cannot_be_cancelled(luigi, other_buyer, other_restaurant):
    theirs = place_order(other_buyer, other_restaurant)
    events = OrderEvent.objects.count()

    assert luigi.get(cancel_url(theirs)).status_code == 404
    response = luigi.post(
        cancel_url(theirs), {"reason": "cannot_fulfill", "explanation": EXPLANATION}
    )

    assert response.status_code == 404
    assert Order.objects.get(pk=theirs.pk).status == Order.Status.PLACED
    assert OrderEvent.objects.count() == events
    nothing_moved(theirs)
    assert luigi.get(reverse("seller:cancel", args=[999999])).status_code == 404


def test_a_buyer_cannot_cancel_through_the_seller_form(client, buyer, paid_order):
    client.force_login(buyer)

    response = client.post(
        cancel_url(paid_order), {"reason": "cannot_fulfill", "explanation": EXPLANATION}
    )

    assert response.status_code == 404
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PLACED
    nothing_moved(paid_order)


def test_the_cancel_form_needs_sign_in_and_the_csrf_token(partner, paid_order):
    anonymous = Client()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(partner)
    data = {"reason": "cannot_fulfill", "explanation": EXPLANATION}

    signed_out = anonymous.post(cancel_url(paid_order), data)
    forged = strict.post(cancel_url(paid_order), data)

    assert signed_out.status_code == 302
    assert signed_out.url.startswith(f"{reverse('login')}?next=/seller/")
    assert forged.status_code == 403
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PLACED
    nothing_moved(paid_order)


# -- cancellation requests --------------------------------------------------------------------


def test_the_requests_page_shows_the_fee_the_refund_and_when_support_decides(
    now, luigi, paid_order, buyer, other_buyer, other_restaurant
):
    order = requested(paid_order, buyer)
    requested(place_order(other_buyer, other_restaurant), other_buyer)
    now.shift(dt.timedelta(minutes=3))

    response = luigi.get(REQUESTS)

    assert response.status_code == 200
    assert [o.pk for o in response.context["requests"]] == [order.pk]
    request_card = section(response, f"request-{order.pk}")
    # 15 % of 27.99 = 4.1985 -> 4.20 kept; 23.79 back; asked at 12:00, support at 12:10.
    assert "Sushi Kyo" not in text(response)
    assert f"2 {TIMES} Margherita" in text(request_card)
    assert "You keep if you approve 4.20 USD" in text(request_card)
    assert "The buyer gets back 23.79 USD" in text(request_card)
    assert "Support decides at 12:10, in 7 minutes" in text(request_card)
    assert "Waiting for you" in text(request_card)
    assert f'action="{approve_url(order)}"' in request_card
    assert f'action="{deny_url(order)}"' in request_card
    assert request_card.count('name="csrfmiddlewaretoken"') == 2
    assert "Cancellation requests (1)" in text(response)


def test_a_request_handed_to_support_still_shows_and_can_be_answered(
    now, luigi, paid_order, buyer, partner
):
    order = requested(paid_order, buyer)
    now.shift(dt.timedelta(minutes=11))
    assert hand_unanswered_cancellation_requests_to_support() == 1

    page = luigi.get(REQUESTS)
    response = luigi.post(approve_url(order), follow=True)

    request_card = text(section(page, f"request-{order.pk}"))
    assert "Support is deciding" in request_card
    assert "the request was not answered by 12:10. You can still answer it." in request_card
    assert "Waiting for you" not in request_card
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    case = Intervention.objects.get(order=order)
    assert (case.status, case.resolved_by, case.action_taken) == (
        "resolved",
        partner,
        "Cancellation approved",
    )
    assert response.context["requests"] == []


def test_approving_refunds_what_was_paid_less_the_fee_and_books_the_fee(
    luigi, paid_order, buyer, partner, django_capture_on_commit_callbacks
):
    order = requested(paid_order, buyer)
    Notification.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        response = luigi.post(approve_url(order), follow=True)

    assert response.redirect_chain == [(REQUESTS, 302)]
    assert messages_of(response) == [
        f"Order #{order.pk}: cancellation approved. You keep 4.20 USD; the buyer gets 23.79 USD "
        "back."
    ]
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    refunds = Refund.objects.filter(order=order)
    assert sum(r.amount for r in refunds) == D("23.79") == order.amount_paid - D("4.20")
    fee = RestaurantLedgerEntry.objects.get()
    assert (fee.kind, fee.amount, fee.order, fee.restaurant) == (
        "cancellation_fee",
        D("4.20"),
        order,
        order.restaurant,
    )
    [note] = Notification.objects.filter(user=buyer).exclude(title__endswith="refund sent")
    assert note.title == f"Order #{order.pk} cancelled"
    assert "23.79 USD" in note.body
    assert [m.to for m in mail.outbox] == [[buyer.email]] * 2  # the news, then "refund sent"
    assert order.events.get(name="approve").actor == partner
    assert "No cancellation requests are waiting." in text(response)
    assert "Cancellation requests (0)" in text(response)


def test_denying_lets_the_order_go_on_and_tells_the_buyer_why(
    luigi, paid_order, buyer, partner, django_capture_on_commit_callbacks
):
    order = requested(paid_order, buyer)
    Notification.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        response = luigi.post(deny_url(order), {"reason": "  Already in the oven.  "}, follow=True)

    assert response.redirect_chain == [(REQUESTS, 302)]
    assert messages_of(response) == [f"Order #{order.pk}: cancellation denied; the order goes on."]
    order.refresh_from_db()
    assert (order.status, order.cancellation_fee) == (Order.Status.ACCEPTED, None)
    assert order.cancellation_denied_at is not None
    assert not Refund.objects.exists()
    assert not RestaurantLedgerEntry.objects.exists()
    [note] = Notification.objects.filter(user=buyer)
    assert note.title == f"Order #{order.pk}: cancellation denied by the restaurant"
    assert note.body.endswith("Already in the oven.")
    assert "Already in the oven." in mail.outbox[0].body
    denied = order.events.get(name="deny")
    assert (denied.actor, denied.reason) == (partner, "Already in the oven.")
    assert response.context["requests"] == []


def test_denying_needs_a_reason_of_at_most_400_characters(luigi, paid_order, buyer):
    order = requested(paid_order, buyer)

    # A refused reason comes back on the request's own form, as typed, with why (400).
    too_long = luigi.post(deny_url(order), {"reason": "x" * 401})
    assert too_long.status_code == 400
    assert [(o.pk, o.deny_draft, o.deny_error) for o in too_long.context["requests"]] == [
        (
            order.pk,
            "x" * 401,
            f"Order #{order.pk}: Ensure this value has at most 400 characters (it has 401).",
        )
    ]
    assert f'value="{"x" * 401}"' in too_long.content.decode()
    missing = luigi.post(deny_url(order), {"reason": "   "})
    assert missing.status_code == 400
    assert [o.deny_error for o in missing.context["requests"]] == [
        f"Order #{order.pk}: Tell the buyer why the cancellation request is denied."
    ]
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLATION_REQUESTED
    assert not order.events.filter(name="deny").exists()
    assert not Notification.objects.filter(title__contains="cancellation denied").exists()

    luigi.post(deny_url(order), {"reason": "Already in the oven."})
    assert Order.objects.get(pk=order.pk).status == Order.Status.ACCEPTED


@pytest.mark.parametrize("answer", [approve_url, deny_url])
def test_answering_another_restaurants_request_is_a_404_and_changes_nothing(
    luigi, other_buyer, other_restaurant, answer
):
    theirs = requested(place_order(other_buyer, other_restaurant), other_buyer)
    events = OrderEvent.objects.count()
    notes = Notification.objects.count()

    response = luigi.post(answer(theirs))

    assert response.status_code == 404
    assert Order.objects.get(pk=theirs.pk).status == Order.Status.CANCELLATION_REQUESTED
    assert OrderEvent.objects.count() == events
    assert Notification.objects.count() == notes
    nothing_moved(theirs)


@pytest.mark.parametrize("answer", [approve_url, deny_url])
def test_answering_a_request_that_is_no_longer_waiting_changes_nothing(
    luigi, paid_order, buyer, answer
):
    order = advance(paid_order, "accept")
    events = OrderEvent.objects.count()

    response = luigi.post(answer(order), {"reason": "Already in the oven."}, follow=True)

    assert messages_of(response) == [
        f"Order #{order.pk}: Order #{order.pk} has no cancellation request waiting (it is "
        "accepted)."
    ]
    assert Order.objects.get(pk=order.pk).status == Order.Status.ACCEPTED
    assert OrderEvent.objects.count() == events
    nothing_moved(order)


def test_the_answers_only_take_post_with_the_csrf_token(partner, paid_order, buyer):
    order = requested(paid_order, buyer)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(partner)

    assert strict.get(approve_url(order)).status_code == 405
    assert strict.post(approve_url(order)).status_code == 403
    assert strict.post(deny_url(order)).status_code == 403
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLATION_REQUESTED
    nothing_moved(order)


def test_a_user_of_no_restaurant_gets_the_portal_explanation(client, buyer, paid_order):
    order = requested(paid_order, buyer)
    client.force_login(buyer)

    assert client.get(REQUESTS).status_code == 403
    assert client.get(SETTINGS).status_code == 403
    assert client.post(approve_url(order)).status_code == 404
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLATION_REQUESTED


@pytest.mark.parametrize("count", [1, 8])
def test_requests_page_query_count_is_constant(
    luigi, buyer, restaurant, menu, django_assert_num_queries, count
):
    for _ in range(count):
        requested(
            place_order(buyer, restaurant, {menu["Margherita"]: 1, menu["Tiramisu"]: 2}), buyer
        )

    # user (the session is in Redis), "is a partner", the requests (with restaurant, buyer, version
    # and whether support has them), their items, their refunds (what is still refundable), and the
    # header's "is a partner" check in base.html
    with django_assert_num_queries(6):
        response = luigi.get(REQUESTS)

    assert len(response.context["requests"]) == count
    assert response.content.decode().count('class="card cancellation-request') == count


# -- the portal's navigation -----------------------------------------------------------------


def test_every_seller_page_has_the_navigation_with_the_waiting_requests(
    luigi, paid_order, buyer, restaurant
):
    requested(paid_order, buyer)
    open_order = place_order(buyer, restaurant)
    pages = [
        QUEUE,
        REQUESTS,
        reverse("seller:ledger"),
        reverse("seller:incidents"),
        SETTINGS,
        cancel_url(open_order),
        reverse("seller:order", args=[open_order.pk]),
        reverse("seller:menu"),
    ]

    for url in pages:
        nav = section_nav(luigi.get(url))
        expected = (
            "Queue · Cancellation requests (1) · Verifications · Investigations · Ledger · Menu"
            " · Settings"
        )
        assert text(nav) == expected, url
        assert f'href="{REQUESTS}"' in nav


def section_nav(response) -> str:
    match = re.search(r'<nav class="seller-nav".*?</nav>', response.content.decode(), re.S)
    return match.group(0) if match else ""


def test_the_queue_counts_requests_of_every_restaurant_when_filtered(
    luigi, partner, buyer, paid_order, other_restaurant
):
    other_restaurant.members.add(partner)
    requested(paid_order, buyer)

    response = luigi.get(QUEUE, {"restaurant": other_restaurant.pk})

    assert "Cancellation requests (1)" in text(section_nav(response))
    assert card(response, paid_order) == ""


def test_the_order_page_shows_the_order_and_what_it_booked(
    luigi, paid_order, other_buyer, other_restaurant
):
    advance(paid_order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    theirs = place_order(other_buyer, other_restaurant)

    response = luigi.get(reverse("seller:order", args=[paid_order.pk]))

    page = text(response)
    assert f"Order #{paid_order.pk}" in page
    assert f"2 {TIMES} Margherita" in page
    assert f"Sale Sale: order #{paid_order.pk} 25.00 USD" in page
    assert "7 Harbour Road" not in page  # a finished order's address is not the partner's job
    assert "Cancel order" not in page
    assert luigi.get(reverse("seller:order", args=[theirs.pk])).status_code == 404


# -- settings ---------------------------------------------------------------------------------


def test_the_settings_page_shows_the_terms_with_the_bounds_beside_them(luigi, restaurant):
    response = luigi.get(SETTINGS)

    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial == {"cancellation_window_minutes": 5, "cancellation_fee_percent": D("15")}
    page = text(response)
    assert "Allowed: 1\N{EN DASH}30 minutes (K-B1)" in page
    assert "Allowed: 10 %\N{EN DASH}20 % (L-2.1)" in page
    html = response.content.decode()
    assert 'name="cancellation_window_minutes" value="5"' in html
    assert 'min="1" max="30"' in html
    assert 'value="15.00" step="0.01" min="10.00" max="20.00"' in html
    assert f'<input type="hidden" name="restaurant" value="{restaurant.pk}">' in html


@pytest.mark.parametrize(
    ("window", "fee"),
    [("1", "10"), ("30", "20"), ("1", "20.00"), ("30", "10.00"), ("12", "17.50")],
)
def test_terms_inside_the_bounds_are_saved(luigi, restaurant, window, fee):
    response = luigi.post(
        SETTINGS,
        {
            "restaurant": restaurant.pk,
            "cancellation_window_minutes": window,
            "cancellation_fee_percent": fee,
        },
        follow=True,
    )

    assert response.redirect_chain == [(SETTINGS, 302)]
    restaurant.refresh_from_db()
    assert (restaurant.cancellation_window_minutes, restaurant.cancellation_fee_percent) == (
        int(window),
        D(fee),
    )
    assert messages_of(response) == [
        f"Trattoria Roma: buyers may now ask to cancel within {int(window)} minutes of "
        f"acceptance, for a fee of {D(fee).normalize():f} %."
    ]


@pytest.mark.parametrize(
    ("window", "fee", "errors"),
    [
        (
            "0",
            "15",
            {
                "cancellation_window_minutes": [
                    "The window must be between 1 and 30 minutes (K-B1)."
                ]
            },
        ),
        (
            "31",
            "15",
            {
                "cancellation_window_minutes": [
                    "The window must be between 1 and 30 minutes (K-B1)."
                ]
            },
        ),
        (
            "5",
            "9.99",
            {"cancellation_fee_percent": ["The fee must be between 10 % and 20 % (L-2.1)."]},
        ),
        (
            "5",
            "20.01",
            {"cancellation_fee_percent": ["The fee must be between 10 % and 20 % (L-2.1)."]},
        ),
        (
            "31",
            "9.99",
            {
                "cancellation_window_minutes": [
                    "The window must be between 1 and 30 minutes (K-B1)."
                ],
                "cancellation_fee_percent": ["The fee must be between 10 % and 20 % (L-2.1)."],
            },
        ),
        ("five", "15", {"cancellation_window_minutes": ["Enter a whole number."]}),
        ("5", "", {"cancellation_fee_percent": ["This field is required."]}),
    ],
)
def test_terms_outside_the_bounds_are_refused_and_change_nothing(
    luigi, restaurant, window, fee, errors
):
    response = luigi.post(
        SETTINGS,
        {
            "restaurant": restaurant.pk,
            "cancellation_window_minutes": window,
            "cancellation_fee_percent": fee,
        },
    )

    assert response.status_code == 400
    assert response.context["form"].errors == errors
    for messages_ in errors.values():
        assert messages_[0] in text(response)
    assert "Allowed: 1\N{EN DASH}30 minutes (K-B1)" in text(response)
    restaurant.refresh_from_db()
    assert (restaurant.cancellation_window_minutes, restaurant.cancellation_fee_percent) == (
        5,
        D("15"),
    )


def test_a_partner_of_two_restaurants_sets_each_one_s_terms(
    luigi, partner, restaurant, other_restaurant
):
    other_restaurant.members.add(partner)

    page = luigi.get(SETTINGS, {"restaurant": other_restaurant.pk})
    response = luigi.post(
        SETTINGS,
        {
            "restaurant": other_restaurant.pk,
            "cancellation_window_minutes": "10",
            "cancellation_fee_percent": "12",
        },
    )

    assert page.context["selected"] == other_restaurant
    assert '<select name="restaurant"' in page.content.decode()
    assert response.url == f"{SETTINGS}?restaurant={other_restaurant.pk}"
    other_restaurant.refresh_from_db()
    restaurant.refresh_from_db()
    assert (
        other_restaurant.cancellation_window_minutes,
        other_restaurant.cancellation_fee_percent,
    ) == (10, D("12"))
    assert (restaurant.cancellation_window_minutes, restaurant.cancellation_fee_percent) == (
        5,
        D("15"),
    )


def test_another_restaurants_terms_cannot_be_seen_or_set(luigi, other_restaurant):
    assert luigi.get(SETTINGS, {"restaurant": other_restaurant.pk}).status_code == 404
    response = luigi.post(
        SETTINGS,
        {
            "restaurant": other_restaurant.pk,
            "cancellation_window_minutes": "10",
            "cancellation_fee_percent": "12",
        },
    )

    assert response.status_code == 404
    other_restaurant.refresh_from_db()
    assert (
        other_restaurant.cancellation_window_minutes,
        other_restaurant.cancellation_fee_percent,
    ) == (5, D("15"))
