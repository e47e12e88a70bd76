"""D-9 on a phone: every buyer and seller page of the demo, in Chromium at 390 x 844, fits the
screen with no sideways scrolling, and its navigation and form buttons are touch targets of at
least 44 px. A full-page screenshot of each page is saved to `test-artifacts/phone/<name>.png`.

The demo data is loaded once and the pages are walked in one test: the live server's database is
flushed after each test, and loading the demo again per page would cost seconds each. Every page
is checked and all failures are reported together, so one run lists every page that overflows.
"""

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse

from core.management.commands.load_demo import PASSWORD
from disputes.services.escalations import escalation_open
from orders.models import Order, Restaurant
from refunds.models import RefundRequest, RestaurantLedgerEntry

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
MIN_TOUCH_PX = 44
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "phone"

# What the page measures: its width against the screen, and the touch targets that are too small
# (visible links and buttons of the header and every <nav>, every <summary>, the submit buttons
# of every form, its fields, and the labels that wrap a radio button or a checkbox).
MEASURE_JS = r"""(minPx) => {
  const targets = document.querySelectorAll(
    ".site-header a, .site-header button, summary, nav a, nav button, " +
    "button[type=submit], button:not([type]), input[type=submit], " +
    "input:not([type=hidden]):not([type=radio]):not([type=checkbox]), select, textarea, " +
    "label:has(> input[type=radio]), label:has(> input[type=checkbox])"
  );
  const small = [];
  for (const el of targets) {
    // checkVisibility() also skips what a closed <details> keeps out of the rendering.
    if (!el.checkVisibility({ visibilityProperty: true, opacityProperty: false })) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if (box.height < minPx - 0.5) {
      const text = el.innerText || el.value || el.getAttribute("aria-label") || el.name || "";
      const label = text.replace(/\s+/g, " ").trim();
      const tag = el.tagName.toLowerCase();
      small.push(`${tag} "${label.slice(0, 40)}" ${Math.round(box.height)} px`);
    }
  }
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    small: small,
  };
}"""

# The element that is widest past the right edge, to make an overflow failure easy to fix.
WIDEST_JS = """(width) => {
  let worst = null, right = width;
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect().right;
    if (r > right + 0.5) { right = r; worst = el; }
  }
  if (!worst) return "";
  const cls = worst.className && typeof worst.className === "string" ? "." + worst.className : "";
  return `${worst.tagName.toLowerCase()}${cls} ends at ${Math.round(right)} px`;
}"""


@dataclass(frozen=True)
class PhonePage:
    name: str  # the screenshot's file name
    who: str  # a demo username, or "" for a visitor who is not signed in
    path: str
    status: int = 200  # what the server answers: a buyer on the seller portal gets a 403 page


def _order(status: str, **filters) -> Order:
    return (
        Order.objects.filter(buyer__username="ada", status=status, **filters).order_by("pk").first()
    )


def _demo_pages() -> list[PhonePage]:
    """Every buyer and seller page of the demo, with real ids from the demo data."""
    placed = _order(Order.Status.PLACED)
    accepted = _order(Order.Status.ACCEPTED)
    waiting = _order(Order.Status.CANCELLATION_REQUESTED)
    delivered = _order(Order.Status.DELIVERED)
    unclaimed = (  # an order a problem can be reported on: no request for it yet
        Order.objects.filter(buyer__username="ada", refund_requests__isnull=True)
        .filter(status__in=[Order.Status.DELIVERED, Order.Status.PICKED_UP, Order.Status.SERVED])
        .order_by("pk")
        .first()
    )
    cancelled = _order(Order.Status.CANCELLED, cancellation_reason="item_unavailable")
    cancelled_by_buyer = _order(Order.Status.CANCELLED, cancellation_reason="")
    requests = RefundRequest.objects.filter(order__buyer__username="ada").order_by("pk")
    roma = Restaurant.objects.get(slug="trattoria-roma")
    luigi_placed = Order.objects.filter(restaurant=roma, status=Order.Status.PLACED).first()
    luigi_delivered = Order.objects.filter(restaurant=roma, status=Order.Status.DELIVERED).first()
    deduction = RestaurantLedgerEntry.objects.filter(
        restaurant=roma, kind="refund_deduction"
    ).first()
    pages = [
        PhonePage("visitor-restaurants", "", reverse("orders:restaurants")),
        PhonePage("visitor-menu", "", reverse("orders:restaurant", args=[roma.slug])),
        PhonePage("visitor-policy", "", reverse("policy")),
        PhonePage("sign-in", "", reverse("login")),
        PhonePage("sign-up", "", reverse("signup")),
        PhonePage("restaurants", "ada", reverse("orders:restaurants")),
        PhonePage("menu", "ada", reverse("orders:restaurant", args=[roma.slug])),
        PhonePage("cart", "ada", reverse("orders:cart")),
        PhonePage("my-orders", "ada", reverse("orders:list")),
        PhonePage("order-placed", "ada", reverse("orders:detail", args=[placed.pk])),
        PhonePage("order-accepted", "ada", reverse("orders:detail", args=[accepted.pk])),
        PhonePage("order-waiting", "ada", reverse("orders:detail", args=[waiting.pk])),
        PhonePage("order-delivered", "ada", reverse("orders:detail", args=[delivered.pk])),
        PhonePage("order-cancelled", "ada", reverse("orders:detail", args=[cancelled.pk])),
        PhonePage(
            "order-cancelled-by-buyer",
            "ada",
            reverse("orders:detail", args=[cancelled_by_buyer.pk]),
        ),
        PhonePage("cancel-confirm-free", "ada", reverse("orders:cancel", args=[placed.pk])),
        PhonePage("cancel-confirm-request", "ada", reverse("orders:cancel", args=[accepted.pk])),
        PhonePage("refund-request-new", "ada", reverse("refunds:new", args=[unclaimed.pk])),
        PhonePage("refund-requests", "ada", reverse("refunds:list")),
        *[
            PhonePage(f"refund-request-{n}", "ada", rr.get_absolute_url())
            for n, rr in enumerate(requests, start=1)
        ],
        PhonePage("wallet", "ada", reverse("credits:wallet")),
        PhonePage("notifications", "ada", reverse("notifications")),
        PhonePage("escalations", "ada", reverse("disputes:escalations")),
        PhonePage("policy", "ada", reverse("policy")),
        PhonePage("seller-not-a-partner", "ada", reverse("seller:queue"), status=403),
        PhonePage("seller-queue", "luigi", reverse("seller:queue")),
        PhonePage("seller-order-placed", "luigi", reverse("seller:order", args=[luigi_placed.pk])),
        PhonePage(
            "seller-order-delivered", "luigi", reverse("seller:order", args=[luigi_delivered.pk])
        ),
        PhonePage("seller-cancel", "luigi", reverse("seller:cancel", args=[luigi_placed.pk])),
        PhonePage("seller-cancellation-requests", "mei", reverse("seller:cancellation-requests")),
        PhonePage("seller-queue-mei", "mei", reverse("seller:queue")),
        PhonePage("seller-verifications", "luigi", reverse("seller:verifications")),
        PhonePage("seller-ledger", "luigi", reverse("seller:ledger")),
        PhonePage(
            "seller-deduction-dispute",
            "luigi",
            reverse("seller:deduction-dispute", args=[deduction.pk]),
        ),
        PhonePage("seller-incidents", "luigi", reverse("seller:incidents")),
        PhonePage("seller-settings", "luigi", reverse("seller:settings")),
    ]
    with contextlib.suppress(NoReverseMatch):  # the menu management page, once there is one
        pages.append(PhonePage("seller-menu", "luigi", reverse("seller:menu")))
    return pages


def _escalate() -> list[PhonePage]:
    """Ada asks a supervisor to review her declined claim (L-8.1): the escalation's pages."""
    declined = RefundRequest.objects.get(order__buyer__username="ada", status="denied")
    escalation = escalation_open(
        request_id=declined.pk,
        actor=declined.order.buyer,
        statement="I did not like it because it was cold, not because of my taste.",
    )
    return [
        PhonePage("escalations-one", "ada", reverse("disputes:escalations")),
        PhonePage("escalation", "ada", escalation.get_absolute_url()),
        PhonePage("refund-request-escalated", "ada", declined.get_absolute_url()),
    ]


def _visit(context, phone_page: PhonePage, base_url: str) -> list[str]:
    page = context.new_page()
    try:
        return _check(page, phone_page, base_url)
    finally:
        page.close()


def _sign_in(context, base_url: str, username: str) -> None:
    page = context.new_page()
    page.goto(f"{base_url}{reverse('login')}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, f"{username} could not sign in"
    page.close()


def _fill_cart(context, base_url: str) -> None:
    """Two lines in Ada's cart, added through the menu page as a buyer would."""
    page = context.new_page()
    page.goto(f"{base_url}{reverse('orders:restaurant', args=['trattoria-roma'])}")
    for dish in ("Margherita", "Tiramisu"):
        page.locator("li", has_text=dish).get_by_role("button", name="Add to cart").click()
        page.wait_for_load_state()
    page.close()


def _check(page, phone_page: PhonePage, base_url: str) -> list[str]:
    """Open the page, screenshot it, and return what is wrong with it (empty when it fits)."""
    response = page.goto(f"{base_url}{phone_page.path}")
    where = f"{phone_page.name} ({phone_page.path} as {phone_page.who or 'visitor'})"
    if response is None or response.status != phone_page.status:
        return [f"{where}: HTTP {response.status if response else 'no response'}"]
    if not page.url.endswith(phone_page.path):
        return [f"{where}: sent on to {page.url}"]
    page.screenshot(path=str(ARTIFACTS / f"{phone_page.name}.png"), full_page=True)
    problems = _measure(page, where)
    toggle = page.locator("header .nav-menu > summary")
    if toggle.count() and toggle.is_visible():
        toggle.click()
        problems += _measure(page, f"{where} with the menu open")
        page.screenshot(path=str(ARTIFACTS / f"{phone_page.name}--menu.png"))
    return problems


def _measure(page, where: str) -> list[str]:
    facts = page.evaluate(MEASURE_JS, MIN_TOUCH_PX)
    problems = []
    # A page wider than the phone also widens a mobile browser's viewport to fit: both say so.
    widest = max(facts["scrollWidth"], facts["innerWidth"])
    if facts["scrollWidth"] > facts["innerWidth"] or widest > PHONE["width"]:
        overflow = widest - PHONE["width"]
        culprit = page.evaluate(WIDEST_JS, PHONE["width"])
        problems.append(
            f"{where}: {overflow} px too wide (viewport {facts['innerWidth']}); {culprit}"
        )
    problems += [f"{where}: touch target under {MIN_TOUCH_PX} px: {s}" for s in facts["small"]]
    return problems


def test_every_buyer_and_seller_page_fits_a_390px_phone(live_server, browser):
    call_command("load_demo", stdout=io.StringIO())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = _demo_pages()
    contexts = {}
    problems = []
    try:
        for who in dict.fromkeys(p.who for p in pages):
            context = browser.new_context(
                viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True
            )
            contexts[who] = context
            if who:
                _sign_in(context, live_server.url, who)
        _fill_cart(contexts["ada"], live_server.url)
        for phone_page in pages:
            problems += _visit(contexts[phone_page.who], phone_page, live_server.url)
        # Then Ada escalates her declined claim, for the escalation's own pages.
        escalation_pages = _escalate()
        for phone_page in escalation_pages:
            problems += _visit(contexts[phone_page.who], phone_page, live_server.url)
    finally:
        for context in contexts.values():
            context.close()
    assert len(pages) + len(escalation_pages) >= 38
    assert problems == [], "\n".join(problems)


def test_the_navigation_is_a_menu_on_a_phone_and_a_bar_on_a_wide_screen(
    live_server, browser, sign_in, buyer, restaurant
):
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    sign_in(phone, buyer)
    phone.goto(f"{live_server.url}{reverse('orders:list')}")
    wallet = phone.get_by_role("link", name="Wallet")
    toggle = phone.locator(".site-header .nav-menu > summary")
    header_height = phone.locator(".site-header").bounding_box()["height"]

    assert not wallet.is_visible()
    assert header_height <= 60  # one row: brand, cart, menu (it wrapped into 240 px before)
    toggle.click()
    wallet.click()
    phone.wait_for_url(f"{live_server.url}{reverse('credits:wallet')}")
    assert phone.get_by_role("heading", name="Wallet").is_visible()

    wide = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    sign_in(wide, buyer)
    wide.goto(f"{live_server.url}{reverse('orders:list')}")
    assert not wide.locator(".site-header .nav-menu > summary").is_visible()
    for name in ("Restaurants", "My orders", "Wallet", "Refund requests", "Policy"):
        assert wide.get_by_role("link", name=name, exact=True).is_visible(), name
    assert wide.get_by_role("button", name="Sign out").is_visible()
    wide.screenshot(path=str(ARTIFACTS.parent / "wide-my-orders.png"), full_page=True)
