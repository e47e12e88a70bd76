"""JOURNEYS support 4 and the suspended buyer in Chromium (L-8.2, D-4): a chargeback arrives
through the processor's signed webhook, a supervisor downloads its evidence PDF and suspends the
buyer from the chargeback's page, the buyer signs in, reads their order and is told why the
forms are gone; reinstated in admin, the buyer can report a problem again."""

import io
import json
import time

import pytest
from django.conf import settings
from playwright.sync_api import expect
from pypdf import PdfReader

from disputes.models import Chargeback, Suspension
from orders.gateway import webhook_signature
from tests.conftest import advance, place_order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def admin_page(browser, live_server, user):
    page = browser.new_context(accept_downloads=True).new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("pass-word-123")
    page.get_by_role("button", name="Log in").click()
    return page


def test_a_webhook_chargeback_leads_to_a_suspension_the_buyer_sees(
    live_server, browser, sign_in, buyer, supervisor, restaurant, menu
):
    order = advance(
        place_order(buyer, restaurant, {menu["Margherita"]: 1}),
        "accept", "start_preparation", "mark_ready", "dispatch", "deliver",
    )  # fmt: skip
    desk = admin_page(browser, live_server, supervisor)
    body = json.dumps(
        {
            "id": "evt_e2e_1",
            "type": "chargeback.opened",
            "data": {
                "charge_reference": order.payments.get().gateway_reference,
                "amount": "15.49",
                "currency": settings.LOJIX_CURRENCY,
                "bank_reference": "BANK-E2E",
                "reason_code": "13.1",
            },
        }
    ).encode()
    signature = webhook_signature(
        secret=settings.LOJIX_GATEWAY_WEBHOOK_SECRET, body=body, timestamp=int(time.time())
    )
    answer = desk.request.post(
        f"{live_server.url}/api/gateway/webhooks/",
        data=body,
        headers={"Content-Type": "application/json", "Lojix-Signature": signature},
    )
    assert answer.status == 200, answer.text()
    chargeback = Chargeback.objects.get()

    desk.goto(f"{live_server.url}/admin/disputes/chargeback/{chargeback.pk}/change/")
    expect(desk.locator("body")).to_contain_text("BANK-E2E")
    with desk.expect_download() as download:
        desk.get_by_role("link", name="PDF").click()
    with open(download.value.path(), "rb") as pdf:
        text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.read())).pages)
    assert f"order #{order.pk}" in text
    suspend = desk.locator('form[data-action="suspend"]')
    suspend.get_by_label("Reason").fill("A chargeback on a delivered order.")
    suspend.get_by_label("Suspected fraud").check()
    suspend.get_by_role("button", name="Suspend the buyer").click()
    expect(desk.locator(".messagelist")).to_contain_text("is suspended")
    assert Suspension.objects.get().suspected_fraud is True

    diner = browser.new_context().new_page()
    sign_in(diner, buyer)
    diner.goto(f"{live_server.url}/orders/{order.pk}/")
    page_body = diner.locator("body")
    expect(page_body).to_contain_text("Your account is suspended")
    expect(page_body).to_contain_text("reporting a problem is not possible")
    expect(diner.get_by_role("link", name="Report a problem")).to_have_count(0)
    expect(page_body).to_contain_text(f"Order #{order.pk}")

    desk.goto(f"{live_server.url}/admin/disputes/suspension/")
    desk.locator("input[name=_selected_action]").first.check()
    desk.locator("select[name=action]").select_option("reinstate")
    desk.get_by_role("button", name="Go").click()
    expect(desk.locator(".messagelist")).to_contain_text("is reinstated")

    diner.reload()
    expect(diner.locator("body")).not_to_contain_text("Your account is suspended")
    expect(diner.get_by_role("link", name="Report a problem")).to_have_count(1)
