"""Issue 10 part 3, D-9: the demo's pages as people read them. Every buyer page, every seller
page and support's admin screens for the money path show money with two decimals and the
currency; buyers and partners never read a design reference (D-7) or a status code
(`partial_refund`). The pages are found by following the links of the signed-in pages, so a
page added later is checked too."""

import re
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client

from disputes.models import Chargeback
from disputes.services.escalations import escalation_decide, escalation_open
from orders.models import Order, Restaurant
from orders.services.cancellation import (
    order_cancel_by_buyer,
    order_cancellation_approve,
    order_cancellation_deny,
)
from refunds.models import RefundRequest
from refunds.services.decisions import refund_request_deny, refund_request_partially_approve
from refunds.services.requests import refund_request_submit
from tests.conftest import advance, place_order
from tests.rendered_text import money_problems, reference_problems, visible_text

pytestmark = pytest.mark.django_db

PASSWORD = "lojix-demo"
CURRENCY = settings.LOJIX_CURRENCY
BUYER_PAGES = ("/restaurants/", "/cart/", "/orders/", "/refunds/", "/wallet/")
BUYER_PAGES += ("/disputes/escalations/",)
BUYER_PAGES += ("/notifications/",)
SELLER_PAGES = ("/seller/",)
ADMIN_MODELS = (
    "orders/order",
    "refunds/refundrequest",
    "refunds/refund",
    "credits/creditgrant",
    "disputes/escalation",
    "disputes/chargeback",
    "disputes/incident",
    "refunds/restaurantledgerentry",
)
# The policy texts number their sections (2.1, 3.2): no money on that page to check.
LEGAL_TEXT = "/policy/"
# Links that change something or are not pages.
SKIPPED = re.compile(r"/logout/|/evidence/|\.(png|jpe?g|pdf|json)$")
_LINK = re.compile(r'<a\b[^>]*\bhref="([^"#]+)')
_PAGE_QUERY = re.compile(r"^\?(?:page=\d+)?$")  # a list's next page is another page to read


def signed_in(username: str) -> Client:
    client = Client()
    # django-axes checks every sign-in against its request.
    assert client.login(request=HttpRequest(), username=username, password=PASSWORD), username
    return client


def crawl(client: Client, seeds: tuple[str, ...], prefixes: tuple[str, ...]) -> dict[str, str]:
    """Every page reachable from `seeds` through links under `prefixes`: {path: visible text}.
    A linked page that answers 5xx fails the test; redirects and 4xx are not pages to read."""
    pages, queue, seen = {}, list(seeds), set(seeds)
    while queue:
        path = queue.pop(0)
        response = client.get(path)
        assert response.status_code < 500, f"{path} answered {response.status_code}"
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        pages[path] = visible_text(html)
        for href in _LINK.findall(html):
            parts = urlsplit(href.replace("&amp;", "&"))
            link = parts.path + (f"?{parts.query}" if _PAGE_QUERY.match(f"?{parts.query}") else "")
            link = link.rstrip("?")
            if link.startswith(prefixes) and link not in seen and not SKIPPED.search(link):
                seen.add(link)
                queue.append(link)
    return pages


def problems(pages: dict[str, str], *, status_codes: bool) -> str:
    """Every problem on every page, one per line under its page's path; "" when none. A bank's
    chargeback reason code ("13.1 merchandise not received") is the bank's words, not money."""
    lines = []
    reason_codes = set(Chargeback.objects.values_list("reason_code", flat=True))
    for path, text in sorted(pages.items()):
        for code in reason_codes:
            text = text.replace(code, "")
        issues = [] if path.startswith(LEGAL_TEXT) else money_problems(text, CURRENCY)
        issues += reference_problems(text, status_codes=status_codes)
        lines += [f"{path}: {issue}" for issue in issues]
    return "\n".join(lines)


@pytest.fixture
def demo():
    """The demo of `make run`, and for Grace the decisions it does not show yet: cancellation
    requests approved by the restaurant and denied by it and by support, a partial approval and
    a denial, an escalation overturned."""
    call_command("load_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    users = {user.username: user for user in get_user_model().objects.all()}
    grace, agnes, sofia = users["grace"], users["agnes"], users["sofia"]
    roma = Restaurant.objects.get(slug="trattoria-roma")
    for answer in ("approve", "deny", "support_deny"):
        order = advance(place_order(grace, roma), "accept")
        order_cancel_by_buyer(order_id=order.pk, actor=grace)
        if answer == "approve":
            order_cancellation_approve(order_id=order.pk, actor=users["luigi"])
        else:
            actor = agnes if answer == "support_deny" else users["luigi"]
            order_cancellation_deny(order_id=order.pk, actor=actor, reason="Already in the oven.")
    _decided_claims(grace, agnes, sofia, roma)


def _decided_claims(grace, agnes, sofia, roma) -> None:
    delivered = ["accept", "start_preparation", "mark_ready", "dispatch", "deliver"]
    items = {item.name: item for item in roma.menu.all()}
    order = advance(place_order(grace, roma, {items["Margherita"]: 1, items["Tiramisu"]: 2}))
    order = advance(order, *delivered)
    tiramisu = order.items.get(name="Tiramisu")
    claim = refund_request_submit(
        order_id=order.pk, actor=grace, reason="missing_items", items=[(tiramisu.pk, 2)]
    )
    refund_request_partially_approve(
        request_id=claim.pk, actor=agnes, amount=Decimal("4.50"), explanation="One was there."
    )
    escalation = escalation_open(request_id=claim.pk, actor=grace, statement="Both were missing.")
    escalation_decide(
        escalation_id=escalation.pk,
        actor=sofia,
        outcome="overturned",
        explanation="Agreed, both missing.",
    )
    other = advance(place_order(grace, roma, {items["Diavola"]: 1}), *delivered)
    claim = refund_request_submit(
        order_id=other.pk, actor=grace, reason="missing_items", items=[(other.items.get().pk, 1)]
    )
    refund_request_deny(request_id=claim.pk, actor=agnes, explanation="The courier photo shows it.")


# -- the checker finds what it must and nothing else --------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "you get 23.03 back (2.56 fee)",
        "Approved: 6.00. Approved.",
        "Total 47.7600000000000 USD",
        "A fee of 4.5 USD",
        "Refund: 6 USD to your card",
        "Balance 12.345 USD",
        "paid -3.1 USD",
    ],
)
def test_money_checker_catches_amounts_without_two_decimals_and_currency(text):
    assert money_problems(text, "USD")


@pytest.mark.parametrize(
    "text",
    [
        "You get 23.03 USD back (2.56 USD fee). Why? L-2.1, K-B1",
        "Totals: 1,234.50 USD and -6.00 USD.",
        "Fee 15 % (bounds 10-20 %), partial 12.5 % or 12.5%",
        "Mon 30 Nov 2026, 14:05 order #12, reason 13.1.4, version 1.2.3",
        "See L-3.2 and L-10.1; clause K-OV applies; 3 items",
    ],
)
def test_money_checker_accepts_money_written_one_way_and_other_numbers(text):
    assert money_problems(text, "USD") == []


def test_reference_checker_catches_design_references_and_status_codes():
    text = "Refused (L-3.2, D-7): window_passed. Status partial_refund."
    assert len(reference_problems(text)) == 3
    assert reference_problems("Refused (L-3.2): the window closed. ada@lojix.example") == []


def test_visible_text_leaves_out_scripts_styles_and_attributes():
    html = (
        "<head><title>D-7</title><style>.a_b{}</style></head><body>"
        '<a href="/x_y/" title="D-1">Paid&nbsp;6.00&nbsp;USD</a>'
        "<script>var not_shown = 1.5;</script></body>"
    )
    assert visible_text(html).strip() == "Paid 6.00 USD"


# -- the demo's pages --------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["ada", "grace"])
def test_buyer_pages_write_money_one_way_and_no_internal_references(demo, username):
    pages = crawl(signed_in(username), BUYER_PAGES, (*BUYER_PAGES, "/disputes/", "/policy/"))
    buyer = get_user_model().objects.get(username=username)
    expected = {
        f"/orders/{pk}/" for pk in Order.objects.filter(buyer=buyer).values_list("pk", flat=True)
    }
    claims = RefundRequest.objects.filter(buyer=buyer).values_list("pk", flat=True)
    expected |= {f"/refunds/{pk}/" for pk in claims}
    assert expected - set(pages) == set()
    found = problems(pages, status_codes=True)
    assert found == "", found


@pytest.mark.parametrize("username", ["luigi", "mei"])
def test_seller_pages_write_money_one_way_and_no_internal_references(demo, username):
    pages = crawl(signed_in(username), SELLER_PAGES, SELLER_PAGES)
    assert len(pages) >= 6
    found = problems(pages, status_codes=True)
    assert found == "", found


@pytest.mark.parametrize("username", ["agnes", "sofia"])
def test_admin_money_has_two_decimals_and_the_currency_and_no_design_references(demo, username):
    seeds = tuple(f"/admin/{model}/" for model in ADMIN_MODELS)
    client = signed_in(username)
    pages = {}
    for seed in seeds:
        pages.update(crawl_admin_model(client, seed))
    assert len(pages) > len(seeds)
    found = problems(pages, status_codes=False)  # money and design references
    assert found == "", found


def crawl_admin_model(client: Client, changelist: str) -> dict[str, str]:
    """A model's changelist and the change page of every object it lists."""
    change_page = re.compile(rf"^{re.escape(changelist)}\d+/change/$")
    response = client.get(changelist)
    assert response.status_code == 200, changelist
    html = response.content.decode()
    pages = {changelist: visible_text(html)}
    for link in dict.fromkeys(_LINK.findall(html)):
        if change_page.match(link):
            response = client.get(link)
            assert response.status_code == 200, link
            pages[link] = visible_text(response.content.decode())
    return pages
