"""Every clause a page cites links to its anchor on /policy/ (D-9, issue 10 part 2).

Over the demo (`load_demo`): every buyer and seller page a person reaches by following links,
signed in as the demo's buyer and partner, and admin's pages for a refund request, an order,
an escalation and a chargeback as the demo's agent and supervisor. Each `href` to
`/policy/#<id>` must name an element id of /policy/, and each clause link carries the clause's
text. Also: every clause id the code cites exists in the published texts."""

import ast
import re
from collections import deque
from pathlib import Path

import pytest
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse
from django.utils.safestring import mark_safe

from disputes.models import Chargeback, Escalation
from disputes.services.escalations import escalation_open
from orders.clause_links import link_clauses_in
from orders.models import Order, PolicyVersion
from orders.policy_seed import seed_version_1
from orders.selectors import policy_document
from refunds.models import RefundRequest

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "lojix-demo"
CLAUSE_HREF = re.compile(r'href="(?:https?://[^/"]+)?/policy/#([^"]+)"')
CLAUSE_LINK = re.compile(r'<a class="clause" href="/policy/#([^"]+)" title="([^"]*)"')
HREF = re.compile(r'href="(/[^"#]*)(?:#[^"]*)?"')
ELEMENT_ID = re.compile(r'\bid="([^"]+)"')
# Not pages (files, fragments, the API), or not a buyer's or a partner's (admin is visited
# on purpose below).
SKIP = re.compile(r"^/(static|media|api|admin)/|/evidence/|/fragment/|^/accounts/logout/")
MAX_PAGES = 400
CLAUSE_ID = re.compile(r"^[LK]-[A-Z0-9.]+$")
BARE_CLAUSE = re.compile(r"(?<![\w-])[LK]-(?:\d+(?:\.\d+)?|[A-Z]{1,2}\d?)(?![\w-])")


def signed_in(username: str) -> Client:
    client = Client()
    # django-axes checks every sign-in against its request.
    assert client.login(request=HttpRequest(), username=username, password=PASSWORD), username
    return client


def crawl(client: Client, start: list[str]) -> dict[str, str]:
    """Every page reachable from `start` by following links: {path: html}; each must be 200."""
    pages, queue, seen = {}, deque(start), set(start)
    while queue and len(pages) < MAX_PAGES:
        path = queue.popleft()
        response = client.get(path)
        if response.status_code in (301, 302):
            continue
        assert response.status_code == 200, f"{path}: {response.status_code}"
        if not response["Content-Type"].startswith("text/html"):
            continue
        html = response.content.decode()
        pages[path] = html
        for link in HREF.findall(html):
            if link not in seen and not SKIP.search(link) and "?" not in link:
                seen.add(link)
                queue.append(link)
    return pages


def bare_clause_ids(html: str) -> set[str]:
    """Clause ids in the visible text of a page's main content that are not clause links."""
    main = html.split("<main", 1)[-1]
    main = re.sub(r'<a class="clause".*?</a>', " ", main, flags=re.S)
    return set(BARE_CLAUSE.findall(re.sub(r"<[^>]+>", " ", main)))


def cited(pages: dict[str, str]) -> dict[str, set[str]]:
    """Clause id -> the pages that link to it."""
    found: dict[str, set[str]] = {}
    for path, html in pages.items():
        for clause in CLAUSE_HREF.findall(html):
            found.setdefault(clause, set()).add(path)
    return found


@pytest.fixture
def demo(db):
    """The demo's data, plus an escalation (the demo has none): Ada contests the request that
    was refused at once (L-3.3)."""
    call_command("load_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    refused = RefundRequest.objects.filter(buyer__username="ada", status="denied").first()
    escalation_open(
        request_id=refused.pk, actor=refused.buyer, statement="The dish was not as described."
    )


def test_every_clause_link_on_every_page_resolves_on_the_policy_page(demo):
    policy_ids = set(ELEMENT_ID.findall(Client().get(reverse("policy")).content.decode()))
    pages = {}
    pages |= crawl(signed_in("ada"), ["/restaurants/", "/orders/", "/refunds/", "/wallet/"])
    pages |= crawl(signed_in("grace"), ["/orders/", "/refunds/", "/disputes/escalations/"])
    pages |= crawl(signed_in("luigi"), ["/seller/"])
    order = Order.objects.filter(refund_requests__isnull=False).first()
    admin_pages = [
        reverse("admin:refunds_refundrequest_change", args=[RefundRequest.objects.first().pk]),
        reverse("admin:orders_order_change", args=[order.pk]),
        reverse("admin:disputes_escalation_change", args=[Escalation.objects.get().pk]),
        reverse("admin:disputes_chargeback_change", args=[Chargeback.objects.first().pk]),
    ]
    for username in ("agnes", "sofia"):
        client = signed_in(username)
        for path in admin_pages:
            response = client.get(path)
            assert response.status_code == 200, (username, path)
            pages[f"{username} {path}"] = response.content.decode()

    citations = cited(pages)
    unresolved = {clause: sorted(paths) for clause, paths in citations.items()}
    unresolved = {c: p for c, p in unresolved.items() if c not in policy_ids}
    assert unresolved == {}
    # Not vacuous: the pages visited cite clauses of both texts, buyer and seller pages alike.
    assert len(pages) > 30
    assert {"L-2.1", "L-8.1", "L-3.3", "L-9"} <= set(citations)
    assert any(path.startswith("/seller/") for paths in citations.values() for path in paths)
    assert any(path.startswith("sofia /admin/") for paths in citations.values() for path in paths)
    # Buyers and partners never meet a clause id that is not a link.
    unlinked = {path: bare_clause_ids(html) for path, html in pages.items() if path[0] == "/"}
    assert {path: ids for path, ids in unlinked.items() if ids and path != "/policy/"} == {}


def test_clause_links_carry_the_clause_text_of_the_version_in_force(demo):
    escalation = Escalation.objects.get()
    html = signed_in("ada").get(reverse("disputes:escalation", args=[escalation.pk])).content
    html = html.decode()

    links = dict(CLAUSE_LINK.findall(html))
    assert links["L-8.1"].startswith("L-8.1 · Escalation Process. If you disagree with our refund")


def test_every_clause_id_the_code_cites_exists_in_the_published_texts(db):
    seed_version_1(PolicyVersion)
    known = set(policy_document(PolicyVersion.objects.get(label="1")).clause_ids())

    cited_in_code = code_clause_ids()

    assert len(cited_in_code) > 20
    assert sorted(cited_in_code - known) == []


def code_clause_ids() -> set[str]:
    """Clause ids in the string constants of the apps' code (`clauses=("L-2.1",)`, CLAUSES,
    `DomainError(..., clauses=...)`) and in the templates' `{% clause "..." %}` tags."""
    found = set()
    for package in ("core", "orders", "refunds", "credits", "disputes"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
                if is_text and CLAUSE_ID.match(node.value):
                    found.add(node.value)
    for path in (ROOT / "templates").rglob("*.html"):
        found |= set(re.findall(r'{% clause "([^"]+)" %}', path.read_text(encoding="utf-8")))
    return found


def test_clause_ids_in_a_text_are_linked_and_the_rest_escaped(db):
    html = link_clauses_in("Refused <b>now</b> (L-3.3, K-S1..3; not L-99 or BANK-E2E).")

    assert html.startswith(
        'Refused &lt;b&gt;now&lt;/b&gt; (<a class="clause" href="/policy/#L-3.3"'
    )
    assert 'title="L-3.3 · No Refund Scenarios. Refunds will NOT be issued for:' in html
    assert ">K-S1</a>..3; not L-99 or BANK-E2E)." in html
    assert html.count('class="clause"') == 2
    assert link_clauses_in(mark_safe("<em>L-3.3</em>")) == "<em>L-3.3</em>"
