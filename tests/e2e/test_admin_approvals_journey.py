"""JOURNEYS support 2 and supervisor 4 in Chromium: an agent's large refund decision waits; a
supervisor finds it from the admin index's count, rejects one with a reason and approves the
other, and the queue is empty."""

import pytest
from playwright.sync_api import expect

from refunds.models import Refund, RefundRequest
from refunds.services.decisions import refund_request_approve
from refunds.services.requests import refund_request_submit
from tests.conftest import advance, place_order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def waiting_decision(buyer, agent, restaurant, menu) -> RefundRequest:
    """5 Margherita + 2.99 delivery = 65.49, all wrong; approved by the agent above 50.00."""
    order = place_order(buyer, restaurant, {menu["Margherita"]: 5})
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    request = refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")
    return refund_request_approve(request_id=request.pk, actor=agent)


def test_a_supervisor_works_the_second_approval_queue(
    live_server, browser, buyer, agent, supervisor, restaurant, menu
):
    rejected = waiting_decision(buyer, agent, restaurant, menu)
    approved = waiting_decision(buyer, agent, restaurant, menu)
    desk = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    desk.goto(f"{live_server.url}/admin/login/")
    desk.get_by_label("Username").fill(supervisor.username)
    desk.get_by_label("Password").fill("pass-word-123")
    desk.get_by_role("button", name="Log in").click()

    expect(desk.locator("#awaiting-second-approval .approval-badge")).to_have_text("2")
    desk.get_by_role("link", name="Awaiting a second approval").click()
    first = desk.locator(f'tr[data-awaiting="refund-request-{rejected.pk}"]')
    expect(first).to_contain_text("65.49 USD")
    first.get_by_label(f"Why you reject Refund request #{rejected.pk}").fill(
        "Only the drinks were wrong on the photos."
    )
    first.get_by_role("button", name="Reject").click()
    expect(desk.locator(".messagelist")).to_contain_text("sent back to review")
    desk.locator(f'tr[data-awaiting="refund-request-{approved.pk}"]').get_by_role(
        "button", name="Approve"
    ).click()
    expect(desk.locator(".messagelist")).to_contain_text("second approval given; 65.49 USD")
    expect(desk.locator("[data-empty]")).to_contain_text("Nothing awaits a second approval.")
    desk.screenshot(path="test-results/admin-approvals-empty.png", full_page=True)

    rejected.refresh_from_db()
    approved.refresh_from_db()
    assert (rejected.status, approved.second_approved_by) == ("under_review", supervisor)
    assert [r.request_id for r in Refund.objects.all()] == [approved.pk]
