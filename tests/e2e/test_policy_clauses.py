"""The policy as a reference, on a phone, in Chromium (D-9, issue 10 part 2): /policy/ fits
390 px, a clause link lands on its clause, and tapping a clause link shows the clause's text
before it opens the policy; keyboard focus shows it too."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_the_policy_page_fits_a_phone_and_a_clause_link_lands_on_its_clause(live_server, browser):
    page = browser.new_context(viewport=PHONE).new_page()

    page.goto(f"{live_server.url}/policy/#K-B1")

    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    clause = page.locator("section#K-B1")
    expect(clause).to_contain_text("Cancellation Window")
    expect(clause).to_be_in_viewport()
    box = clause.bounding_box()
    assert 0 <= box["y"] < PHONE["height"] / 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "policy-390.png"))

    page.locator(".policy-toc").get_by_role("link", name="L-8.2 · Chargeback Policy").click()
    expect(page).to_have_url(re.compile(r"/policy/#L-8\.2$"))
    expect(page.locator("section#L-8\\.2")).to_be_in_viewport()


def test_tapping_a_clause_link_shows_its_text_then_opens_the_policy(
    live_server, browser, sign_in, buyer
):
    context = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    page = context.new_page()
    sign_in(page, buyer)
    page.goto(f"{live_server.url}/disputes/escalations/")
    link = page.locator("main a.clause", has_text="L-8.1")

    link.tap()

    popover = page.locator("#clause-popover")
    expect(popover).to_be_visible()
    expect(popover).to_contain_text("Escalation Process. If you disagree with our refund decision")
    expect(page).to_have_url(re.compile(r"/disputes/escalations/$"))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(ARTIFACTS / "clause-popover-390.png"))

    popover.get_by_role("link", name="Read L-8.1 in the policy").tap()

    expect(page).to_have_url(re.compile(r"/policy/#L-8\.1$"))
    expect(page.locator("section#L-8\\.1")).to_be_in_viewport()


def test_keyboard_focus_on_a_clause_link_shows_its_text_and_escape_hides_it(
    live_server, browser, sign_in, buyer
):
    page = browser.new_context().new_page()
    sign_in(page, buyer)
    page.goto(f"{live_server.url}/disputes/escalations/")
    link = page.locator("main a.clause", has_text="L-8.1")
    expect(link).to_have_attribute("title", re.compile(r"^L-8\.1 · Escalation Process\. "))

    link.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")

    popover = page.locator("#clause-popover")
    expect(popover).to_be_visible()
    expect(link).to_have_attribute("aria-describedby", "clause-popover")
    page.keyboard.press("Escape")
    expect(popover).to_be_hidden()
