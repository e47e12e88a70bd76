"""JOURNEYS buyer 4 and support 1-2 in Chromium: a buyer files a missing-items claim with a
photo, an agent partially approves it in admin, the buyer sees the amount and expected dates."""

import io
import re
from decimal import Decimal as D

import pytest
from PIL import Image
from playwright.sync_api import expect

from refunds.models import Refund, RefundRequest
from tests.conftest import advance, place_order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "orange").save(buffer, "PNG")
    return buffer.getvalue()


def test_missing_items_claim_partially_approved_in_admin(
    live_server, browser, sign_in, buyer, agent, restaurant, menu
):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 2})
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")

    diner = browser.new_context().new_page()
    sign_in(diner, buyer)
    diner.goto(f"{live_server.url}/orders/{order.pk}/")
    diner.get_by_role("link", name="Report a problem").click()
    diner.locator("#reason-missing_items input[type=radio]").check()
    diner.get_by_label("How many Tiramisu?").select_option("2")
    diner.get_by_label("Describe the problem").fill("Both tiramisu were missing from the bag.")
    diner.get_by_label("Photos").set_input_files(
        {"name": "bag.png", "mimeType": "image/png", "buffer": png()}
    )
    diner.get_by_role("button", name="Submit").click()

    request = RefundRequest.objects.get(order=order)
    expect(diner).to_have_url(re.compile(rf"/refunds/{request.pk}/$"))
    expect(diner.locator("body")).to_contain_text("Under review")
    # 2 x 6.00: everything was paid by card, so a line's share of what was paid is its price.
    assert (request.suggested_outcome, request.suggested_amount) == ("partial", D("12.00"))
    assert request.evidence.count() == 1

    desk = browser.new_context().new_page()
    desk.goto(f"{live_server.url}/admin/login/")
    desk.get_by_label("Username").fill(agent.username)
    desk.get_by_label("Password").fill("pass-word-123")
    desk.get_by_role("button", name="Log in").click()
    desk.goto(f"{live_server.url}/admin/refunds/refundrequest/{request.pk}/change/")
    partial = desk.locator('form[data-decision="partially_approve"]')
    partial.get_by_label("Amount").fill("9.00")
    partial.get_by_label("Explanation the buyer reads").fill(
        "One tiramisu was found in the second bag; refunding the other and the delivery share."
    )
    partial.get_by_role("button").click()
    expect(desk.locator(".messagelist")).to_contain_text("9.00")

    diner.reload()
    body = diner.locator("body")
    expect(body).to_contain_text("9.00")
    expect(body).to_contain_text("at your bank between")
    request.refresh_from_db()
    assert (request.status, request.decided_amount, request.decided_by) == (
        "refunded",
        D("9.00"),
        agent,
    )
    refund = Refund.objects.get(request=request)
    assert refund.expected_in_bank_by is not None
    expect(body).to_contain_text(f"{refund.expected_in_bank_by:%-d %b %Y}")
