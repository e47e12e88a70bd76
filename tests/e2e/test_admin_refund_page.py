"""The refund request page in admin puts the decision first (issue 10, part 5): in Chromium at
1280 x 800 the policy's suggestion, what is still refundable and the decision forms are inside
the first viewport, and the rest (items, photos, messages, refunds, timelines, the request's
fields) is folded into <details> sections, so the page is short until the agent opens one.
Measured on this request: 5,182 px tall before this layout (every section open, the decision
forms stacked), about 1,560 px folded."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from playwright.sync_api import expect

from refunds.models import RefundRequest
from refunds.services.decisions import refund_request_deny
from refunds.services.requests import (
    refund_request_reply,
    refund_request_request_info,
    refund_request_submit,
)
from tests.conftest import advance, place_order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VIEWPORT = {"width": 1280, "height": 800}
# The folded page: the decision panel, the summary lines of the folded sections, the header.
FOLDED_MAX_HEIGHT = 2000


def photo(colour: str) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, "PNG")
    return SimpleUploadedFile(f"{colour}.png", buffer.getvalue(), content_type="image/png")


def delivered(buyer, restaurant, items):
    order = place_order(buyer, restaurant, items)
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def busy_request(buyer, agent, restaurant, menu) -> RefundRequest:
    """A missing-items claim with photos, a question and its answer, and an earlier denied
    claim of the same buyer: everything the page shows, as on a working day."""
    earlier = delivered(buyer, restaurant, {menu["Lemonade"]: 1})
    first = refund_request_submit(
        order_id=earlier.pk,
        actor=buyer,
        reason="missing_items",
        items=[(earlier.items.get().pk, 1)],
    )
    refund_request_deny(request_id=first.pk, actor=agent, explanation="The bag was complete.")
    order = delivered(buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 2})
    request = refund_request_submit(
        order_id=order.pk,
        actor=buyer,
        reason="missing_items",
        items=[(order.items.get(name="Tiramisu").pk, 2)],
        description="Both tiramisu were missing from the bag.",
        photos=[photo("orange"), photo("blue")],
    )
    refund_request_request_info(request_id=request.pk, actor=agent, question="Was it sealed?")
    refund_request_reply(
        request_id=request.pk, actor=buyer, body="Yes, sealed.", photos=[photo("green")]
    )
    return request


def page_height(page) -> int:
    return page.evaluate("document.documentElement.scrollHeight")


def test_the_decision_comes_first_and_the_rest_is_folded(
    live_server, browser, buyer, agent, restaurant, menu
):
    request = busy_request(buyer, agent, restaurant, menu)
    desk = browser.new_context(viewport=VIEWPORT).new_page()
    desk.goto(f"{live_server.url}/admin/login/")
    desk.get_by_label("Username").fill(agent.username)
    desk.get_by_label("Password").fill("pass-word-123")
    desk.get_by_role("button", name="Log in").click()

    desk.goto(f"{live_server.url}/admin/refunds/refundrequest/{request.pk}/change/")

    decision = desk.locator("#refund-decisions")
    expect(decision).to_contain_text("The policy suggests")
    expect(decision).to_contain_text("still refundable")
    for form in ("approve", "partially_approve", "deny"):
        box = desk.locator(f'form[data-decision="{form}"]').bounding_box()
        assert box is not None
        assert box["y"] < VIEWPORT["height"], (form, box)
    button = desk.locator('form[data-decision="approve"] button[type=submit]').bounding_box()
    assert button["y"] + button["height"] <= VIEWPORT["height"]

    folded = page_height(desk)
    sections = desk.locator("details.refund-section")
    names = sections.evaluate_all("els => els.map(e => e.dataset.section)")
    assert names == [
        "request",
        "items",
        "evidence",
        "messages",
        "timeline",
        "order",
        "refunds",
        "claims",
        "order-timeline",
    ]
    assert sections.evaluate_all("els => els.filter(e => e.open).length") == 0
    assert folded <= FOLDED_MAX_HEIGHT, folded
    desk.screenshot(path="test-results/admin-refund-request-folded.png", full_page=True)

    desk.locator('details[data-section="evidence"] > summary').click()
    expect(desk.locator("img.evidence-thumbnail").first).to_be_visible()
    expect(desk.locator("img.evidence-thumbnail")).to_have_count(3)
    for summary in desk.locator("details.refund-section > summary").all():
        if summary.evaluate("s => !s.parentElement.open"):
            summary.click()
    unfolded = page_height(desk)
    assert unfolded > folded + 1000, (folded, unfolded)
    expect(desk.locator('details[data-section="messages"]')).to_contain_text("Yes, sealed.")
    expect(desk.locator('details[data-section="claims"]')).to_contain_text("1 other claim")
    print(f"refund request page: {folded} px folded, {unfolded} px with every section open")
