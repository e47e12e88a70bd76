"""The Content-Security-Policy holds in Chromium (issue 11 part 3): the buyer's pages, the
clause popover, the seller's htmx queue, the admin and /api/docs/ run with no violation, every
one of them served with the policy. A page that broke it (an inline script) is caught."""

import pytest
from playwright.sync_api import expect

from tests.conftest import place_order
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Recorded by the browser for every violation, on every document the page loads.
LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


class CspWatch:
    """A page whose CSP violations are collected from the `securitypolicyviolation` events and
    from Chromium's console ("Refused to ..."); each visit checks the header was sent."""

    def __init__(self, context, base_url):
        context.add_init_script(LISTEN)
        self.page = context.new_page()
        self.base_url = base_url
        self.console = []
        self.page.on("console", self._console)

    def _console(self, message):
        if "Content Security Policy" in message.text:
            self.console.append(message.text)

    def visit(self, path):
        response = self.page.goto(f"{self.base_url}{path}")
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        self.page.wait_for_load_state("networkidle")

    def violations(self) -> list[str]:
        return self.page.evaluate("window.__csp || []") + self.console


def test_pages_admin_queue_and_api_docs_run_with_no_csp_violation(
    live_server, browser, sign_in, buyer, partner, restaurant
):
    order = place_order(buyer, restaurant)
    found = {}

    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    watch = CspWatch(context, live_server.url)
    for path in ("/", "/policy/", "/api/docs/"):
        watch.visit(path)
        found[path] = watch.violations()
    expect(watch.page.locator(".opblock").first).to_be_visible()  # Swagger UI ran

    sign_in(watch.page, buyer)
    watch.visit(f"/orders/{order.pk}/")
    found["order page"] = watch.violations()
    watch.visit("/disputes/escalations/")
    watch.page.locator("main a.clause").first.focus()
    expect(watch.page.locator("#clause-popover")).to_be_visible()
    found["clause popover"] = watch.violations()
    context.close()

    context = browser.new_context()
    watch = CspWatch(context, live_server.url)
    sign_in(watch.page, partner)
    watch.visit("/seller/")
    # One htmx poll of the queue (every few seconds) runs under the policy too.
    with watch.page.expect_response(
        lambda r: "/seller/" in r.url and r.request.headers.get("hx-request")
    ):
        pass
    found["seller queue"] = watch.violations()
    context.close()

    UserFactory(username="root", is_staff=True, is_superuser=True)
    context = browser.new_context()
    watch = CspWatch(context, live_server.url)
    watch.page.goto(f"{live_server.url}/admin/login/")
    watch.page.get_by_label("Username").fill("root")
    watch.page.get_by_label("Password").fill("pass-word-123")
    watch.page.get_by_role("button", name="Log in").click()
    for path in ("/admin/", f"/admin/orders/order/{order.pk}/change/"):
        watch.visit(path)
        found[path] = watch.violations()
    context.close()

    assert {where: seen for where, seen in found.items() if seen} == {}


def test_an_inline_script_would_be_reported(live_server, page):
    """The watch sees a violation when there is one: a script injected inline is refused."""
    context = page.context
    context.add_init_script(LISTEN)
    page.goto(f"{live_server.url}/policy/")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = true'; document.body.append(s); }"
    )
    page.wait_for_function("window.__csp.length > 0")
    assert page.evaluate("window.ran") is None
    assert page.evaluate("window.__csp")[0].startswith("script-src")
