"""JOURNEYS buyer 6 and supervisor 4 in Chromium: a buyer escalates a denied claim with a
statement and a photo, a supervisor overturns it in admin, the buyer sees the final decision
marked final and the money on the order's timeline (L-8.1)."""

import io
import re
from decimal import Decimal as D

import pytest
from PIL import Image
from playwright.sync_api import expect

from disputes.models import Escalation
from refunds.models import Refund
from tests.disputes.escalation_setup import denied_request

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "brown").save(buffer, "PNG")
    return buffer.getvalue()


def test_a_denial_escalated_and_overturned_in_admin(
    live_server, browser, sign_in, buyer, agent, supervisor, restaurant, menu
):
    request = denied_request(buyer, restaurant, menu, agent)

    diner = browser.new_context().new_page()
    sign_in(diner, buyer)
    diner.goto(f"{live_server.url}/refunds/{request.pk}/")
    expect(diner.locator("#escalation-panel")).to_contain_text("Disagree with this decision?")
    diner.get_by_label("Why you disagree").fill(
        "The tiramisu was not in the bag: the photo shows everything that came."
    )
    diner.get_by_label("Photos").set_input_files(
        {"name": "bag.png", "mimeType": "image/png", "buffer": png()}
    )
    diner.get_by_role("button", name="Ask a supervisor to review").click()

    escalation = Escalation.objects.get(refund_request=request)
    expect(diner).to_have_url(re.compile(rf"/disputes/escalations/{escalation.pk}/$"))
    expect(diner.locator("body")).to_contain_text(
        f"A supervisor decides by {escalation.due_at:%a %-d %b %Y}"
    )
    assert escalation.evidence.count() == 1

    desk = browser.new_context().new_page()
    desk.goto(f"{live_server.url}/admin/login/")
    desk.get_by_label("Username").fill(supervisor.username)
    desk.get_by_label("Password").fill("pass-word-123")
    desk.get_by_role("button", name="Log in").click()
    desk.goto(f"{live_server.url}/admin/disputes/escalation/")
    desk.get_by_role("link", name=str(escalation.pk), exact=True).click()
    expect(desk.locator("#escalation-decision")).to_be_visible()
    desk.get_by_label("Explanation the buyer reads (required)").fill(
        "The driver confirms the bag was short; we refund the tiramisu."
    )
    desk.get_by_label("New total refund if overturned").fill("6.00")
    desk.get_by_role("button", name="Overturn").click()
    expect(desk.locator(".messagelist")).to_contain_text("overturned")
    expect(desk.locator(".messagelist")).to_contain_text("6.00 USD")

    diner.goto(f"{live_server.url}/refunds/{request.pk}/")
    panel = diner.locator("#escalation-panel")
    expect(panel).to_contain_text("Overturned")
    expect(panel).to_contain_text("Final decision")
    expect(panel).to_contain_text("6.00 USD")
    expect(panel).to_contain_text("cannot be escalated again")
    expect(diner.locator("#escalation-form")).to_have_count(0)

    diner.goto(f"{live_server.url}/orders/{request.order_id}/")
    timeline = diner.locator("body")
    expect(timeline).to_contain_text("Refund of 6.00 USD sent to your card")
    refund = Refund.objects.get(idempotency_key=f"escalation:{escalation.pk}:card")
    assert (refund.amount, refund.status) == (D("6.00"), "succeeded")
