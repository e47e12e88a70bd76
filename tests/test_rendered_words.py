"""Issue 10 part 3, D-9: the demo's pages as people read them. Every buyer page, every seller
page and support's admin screens for the money path show money with two decimals and the
currency; buyers and partners never read a design reference (D-7) or a status code
(`partial_refund`). The pages are found by following the links of the signed-in pages, so a
page added later is checked too."""

import re
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

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
# Links that change something or are not pages.
SKIPPED = re.compile(r"/logout/|/evidence/|\.(png|jpe?g|pdf|json)$")
_LINK = re.compile(r'<a\b[^>]*\bhref="([^"#?]+)(?:[?#][^"]*)?"')


def signed_in(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD), username
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
        for link in _LINK.findall(html):
            link = urlsplit(link).path
            if link.startswith(prefixes) and link not in seen and not SKIPPED.search(link):
                seen.add(link)
                queue.append(link)
    return pages


def problems(pages: dict[str, str], *, references: bool) -> str:
    """Every problem on every page, one per line under its page's path; "" when none."""
    lines = []
    for path, text in sorted(pages.items()):
        issues = money_problems(text, CURRENCY) + (reference_problems(text) if references else [])
        lines += [f"{path}: {issue}" for issue in issues]
    return "\n".join(lines)


@pytest.fixture
def demo():
    call_command("load_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


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
    assert len(pages) >= 8
    found = problems(pages, references=True)
    assert found == "", found


@pytest.mark.parametrize("username", ["luigi", "mei"])
def test_seller_pages_write_money_one_way_and_no_internal_references(demo, username):
    pages = crawl(signed_in(username), SELLER_PAGES, SELLER_PAGES)
    assert len(pages) >= 6
    found = problems(pages, references=True)
    assert found == "", found


@pytest.mark.parametrize("username", ["agnes", "sofia"])
def test_admin_money_has_two_decimals_and_the_currency(demo, username):
    seeds = tuple(f"/admin/{model}/" for model in ADMIN_MODELS)
    client = signed_in(username)
    pages = {}
    for seed in seeds:
        pages.update(crawl_admin_model(client, seed))
    assert len(pages) > len(seeds)
    found = problems(pages, references=False)
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
