"""JOURNEYS partner 5 and L-9 in Chromium: a partner reads why a refund was deducted and
disputes it from the ledger; a supervisor finds the case in admin's interventions list,
follows its one action and upholds the dispute; the partner sees the decision and the amount
given back in the ledger."""

import pytest
from playwright.sync_api import expect

from refunds.models import DeductionDispute, RestaurantLedgerEntry
from tests.refunds.test_deduction_disputes import deducted

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_partner_disputes_a_deduction_and_a_supervisor_upholds_it(
    live_server, browser, sign_in, buyer, agent, partner, supervisor, restaurant, menu
):
    deduction = deducted(buyer, restaurant, menu, agent)

    portal = browser.new_context().new_page()
    sign_in(portal, partner)
    portal.goto(f"{live_server.url}/seller/ledger/")
    portal.locator(f"#entry-{deduction.pk}").get_by_role("link", name="Why? Dispute").click()
    expect(portal.locator("#deduction-reason")).to_contain_text("Items are missing")
    portal.get_by_label("Why this refund was not your restaurant's error").fill(
        "The tiramisu was sealed in the bag; the courier's photo shows it."
    )
    portal.get_by_role("button", name="Send dispute").click()
    expect(portal.locator("#dispute")).to_contain_text("Waiting for support")

    desk = browser.new_context().new_page()
    desk.goto(f"{live_server.url}/admin/login/")
    desk.get_by_label("Username").fill(supervisor.username)
    desk.get_by_label("Password").fill("pass-word-123")
    desk.get_by_role("button", name="Log in").click()
    desk.goto(f"{live_server.url}/admin/disputes/intervention/?kind__exact=deduction_dispute")
    desk.get_by_role("link", name="Uphold or reject the restaurant's dispute").click()
    dispute = DeductionDispute.objects.get()
    desk.locator(f'a[href*="/deductiondispute/{dispute.pk}/change/"]').first.click()
    desk.get_by_label("Explanation for the restaurant (required)").fill(
        "The courier lost it after pick-up; not the restaurant's error."
    )
    desk.get_by_role("button", name="Uphold: reverse the deduction").click()
    expect(desk.locator(".messagelist")).to_contain_text("Upheld: deduction reversed")

    portal.reload()
    expect(portal.locator("#dispute")).to_contain_text("Upheld: deduction reversed")
    expect(portal.locator("#dispute-reversal")).to_contain_text("6.00 USD")
    reversal = RestaurantLedgerEntry.objects.get(kind="deduction_reversal")
    portal.goto(f"{live_server.url}/seller/ledger/")
    expect(portal.locator(f"#entry-{reversal.pk}")).to_contain_text("6.00 USD")
    expect(portal.locator(f"#entry-{deduction.pk}")).to_contain_text("Upheld")
