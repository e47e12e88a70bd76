"""The seller's order page (D-9, journeys "Restaurant partner" 1 to 3): every action the order
allows now, each with what it does (and where money moves, how much) before the partner
confirms, and the order's timeline for the partner, without the buyer's payment details."""

import html as html_lib
import re
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.models import Order, OrderEvent
from orders.services.cancellation import order_cancel_by_buyer
from orders.services.missing import order_report_missing
from refunds.models import Refund
from tests.conftest import advance, give_credit, place_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def luigi(client, partner, restaurant):
    client.force_login(partner)
    return client


def page_url(order) -> str:
    return reverse("seller:order", args=[order.pk])


def text(html: str) -> str:
    words = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", html)).split())
    return re.sub(r" ([.,;:)])", r"\1", words)


def actions_section(response) -> str:
    match = re.search(
        r'<section class="card seller-order-actions".*?</section>', response.content.decode(), re.S
    )
    return match.group(0) if match else ""


def timeline(response) -> list[str]:
    html = response.content.decode()
    block = re.search(r'<ol class="timeline">(.*?)</ol>', html, re.S).group(1)
    return [text(item) for item in re.findall(r"<li>(.*?)</li>", block, re.S)]


def step_buttons(response) -> list[tuple[str, str]]:
    return re.findall(
        r'<form method="post" action="([^"]+)" class="order-step" data-action="[^"]+">.*?'
        r"<button[^>]*>([^<]+)</button>",
        actions_section(response),
        re.S,
    )


@pytest.mark.parametrize(
    ("fulfillment", "steps", "expected"),
    [
        ("delivery", (), [("accept", "Accept")]),
        ("delivery", ("accept",), [("start_preparation", "Start preparing")]),
        (
            "delivery",
            ("accept", "start_preparation", "mark_ready"),
            [("dispatch", "Hand to courier")],
        ),
        ("pickup", ("accept", "start_preparation", "mark_ready"), [("hand_over", "Picked up")]),
        ("dine_in", ("accept", "start_preparation", "mark_ready"), [("serve", "Served")]),
        ("dine_in", ("accept", "start_preparation", "mark_ready", "serve"), [("close", "Close")]),
    ],
)
def test_the_page_offers_the_steps_the_state_machine_allows(
    luigi, buyer, restaurant, fulfillment, steps, expected
):
    order = advance(place_order(buyer, restaurant, fulfillment=fulfillment), *steps)

    response = luigi.get(page_url(order))

    assert response.status_code == 200
    assert step_buttons(response) == [
        (reverse("seller:advance", args=[order.pk, action]), label) for action, label in expected
    ]


def test_accepting_shows_what_it_means_before_confirming(luigi, buyer, restaurant):
    order = place_order(buyer, restaurant)

    section = actions_section(luigi.get(page_url(order)))

    assert (
        "The buyer may still ask to cancel for 5 minutes after you accept; if you approve, you "
        "keep the 15 % fee they were quoted."
    ) in text(section)
    assert re.search(
        r'<a class="clause" href="/policy/#K-B1" title="K-B1 · [^"]+"[^>]*>K-B1</a>', section
    )
    assert f'href="{reverse("seller:cancel", args=[order.pk])}"' in section
    assert "see the buyer's full refund before confirming" in text(section)


def test_a_step_from_the_order_page_comes_back_to_it(luigi, buyer, restaurant):
    order = place_order(buyer, restaurant)

    response = luigi.post(
        reverse("seller:advance", args=[order.pk, "accept"]), {"next": page_url(order)}
    )

    assert (response.status_code, response.url) == (302, page_url(order))
    order.refresh_from_db()
    assert order.status == Order.Status.ACCEPTED
    page = luigi.get(page_url(order))
    assert step_buttons(page) == [
        (reverse("seller:advance", args=[order.pk, "start_preparation"]), "Start preparing")
    ]


def test_a_next_outside_the_portal_is_ignored(luigi, buyer, restaurant):
    order = place_order(buyer, restaurant)

    for target in ["https://evil.example/seller/", "/orders/", "//evil.example/"]:
        response = luigi.post(
            reverse("seller:advance", args=[order.pk, "accept"]), {"next": target}
        )
        assert response.url == reverse("seller:queue")


def test_a_cancellation_request_is_answered_on_the_page_with_its_money(
    luigi, buyer, restaurant, menu
):
    give_credit(buyer, "5.00", kind="account")
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2}, use_credit=True)
    advance(order, "accept")
    order, _ = order_cancel_by_buyer(order_id=order.pk, actor=buyer)

    response = luigi.get(page_url(order))

    section = actions_section(response)
    # 27.99 paid, the restaurant's 15 % fee is 4.20: the buyer gets 23.79 back.
    assert "You keep 4.20 USD; the buyer gets 23.79 USD back." in text(section)
    assert f'action="{reverse("seller:cancellation-approve", args=[order.pk])}"' in section
    assert f'action="{reverse("seller:cancellation-deny", args=[order.pk])}"' in section
    assert "support decides instead" in text(section)
    assert step_buttons(response) == []

    approved = luigi.post(
        reverse("seller:cancellation-approve", args=[order.pk]), {"next": page_url(order)}
    )

    assert approved.url == page_url(order)
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert sum(r.amount for r in Refund.objects.filter(order=order)) == D("23.79")


def test_denying_from_the_page_needs_a_reason_and_comes_back(luigi, buyer, restaurant):
    order = advance(place_order(buyer, restaurant), "accept")
    order, _ = order_cancel_by_buyer(order_id=order.pk, actor=buyer)
    deny = reverse("seller:cancellation-deny", args=[order.pk])

    refused = luigi.post(deny, {"next": page_url(order), "reason": "  "})
    denied = luigi.post(deny, {"next": page_url(order), "reason": "Already in the oven."})

    assert refused.url == page_url(order)
    assert denied.url == page_url(order)
    order.refresh_from_db()
    assert order.status == Order.Status.ACCEPTED
    assert not Refund.objects.filter(order=order).exists()


def test_a_missing_order_offers_found_and_delivered_with_no_refund(luigi, buyer, restaurant, now):
    order = advance(
        place_order(buyer, restaurant), "accept", "start_preparation", "mark_ready", "dispatch"
    )
    order = order_report_missing(order_id=order.pk, actor=buyer)

    response = luigi.get(page_url(order))

    section = text(actions_section(response))
    assert "The buyer reported this order missing. If it is not found by" in section
    assert "the buyer is refunded in full" in section
    assert "The case closes; no refund follows." in section
    located = luigi.post(reverse("seller:locate", args=[order.pk]), {"next": page_url(order)})
    assert located.url == page_url(order)
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED


def test_a_finished_order_says_nothing_is_left_to_do(luigi, buyer, restaurant):
    order = advance(
        place_order(buyer, restaurant, fulfillment="pickup"),
        "accept",
        "start_preparation",
        "mark_ready",
        "hand_over",
    )

    response = luigi.get(page_url(order))

    assert step_buttons(response) == []
    assert "Nothing left to do on this order: it is picked up." in text(actions_section(response))


def test_the_timeline_shows_every_step_but_not_the_buyers_payment(luigi, buyer, restaurant):
    order = advance(place_order(buyer, restaurant), "accept", "start_preparation")
    assert OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.PAYMENT).exists()

    lines = timeline(luigi.get(page_url(order)))

    assert len(lines) == OrderEvent.objects.filter(order=order).exclude(kind="payment").count()
    assert "Accepted by the restaurant." in lines[-2]
    assert "Your restaurant" in lines[-2]
    assert "The restaurant started preparing the order." in lines[-1]
    assert not any("card" in line.lower() for line in lines)


def test_clauses_on_the_timeline_link_to_the_policy(luigi, buyer, restaurant):
    order = advance(place_order(buyer, restaurant), "accept")
    order, _ = order_cancel_by_buyer(order_id=order.pk, actor=buyer)
    cited = [c for e in order.events.exclude(kind="payment") for c in e.clauses]
    assert cited

    html = luigi.get(page_url(order)).content.decode()

    for clause in cited:
        link = rf'<a class="clause" href="/policy/#{re.escape(clause)}" title="[^"]+"[^>]*>'
        assert re.search(link + re.escape(clause) + "</a>", html)


def test_another_restaurants_partner_gets_a_404_and_a_buyer_the_not_partner_page(
    client, buyer, other_partner, restaurant
):
    order = place_order(buyer, restaurant)

    client.force_login(other_partner)
    assert client.get(page_url(order)).status_code == 404
    client.force_login(buyer)
    assert client.get(page_url(order)).status_code == 404
    response = client.get(reverse("seller:queue"))
    assert response.status_code == 403
    assert "The seller portal is for restaurant partners." in response.content.decode()


def test_the_order_page_query_count_does_not_grow_with_its_lines_and_events(
    luigi, buyer, restaurant, menu
):
    small = place_order(buyer, restaurant)
    large = place_order(
        buyer, restaurant, {menu["Margherita"]: 1, menu["Tiramisu"]: 2, menu["Lemonade"]: 3}
    )
    advance(large, "accept", "start_preparation", "mark_ready", "dispatch")

    counts = []
    for order in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert luigi.get(page_url(order)).status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]
    assert counts[0] <= 12
