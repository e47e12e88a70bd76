"""Issue 10 part 8 in Chromium: a buyer chooses photos, previews the claim, sees the photos kept
(their thumbnails load through the buyer-only view) and submits without choosing them again;
a reason whose window has closed cannot be picked."""

import datetime as dt
import io
import re

import pytest
import time_machine
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from refunds.models import HeldPhoto, RefundRequest
from tests.conftest import advance, place_order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_preview_keeps_the_photos_and_submit_attaches_them(
    live_server, browser, sign_in, buyer, restaurant, menu
):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 1, menu["Tiramisu"]: 1})
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")

    page = browser.new_context().new_page()
    sign_in(page, buyer)
    page.goto(f"{live_server.url}/refunds/new/{order.pk}/")
    page.locator("#reason-temperature input[type=radio]").check()
    page.get_by_label("How many Margherita?").select_option("1")
    page.get_by_label("Describe the problem").fill("Stone cold when it came.")
    page.get_by_label("Photos").set_input_files(
        [
            {"name": "a.png", "mimeType": "image/png", "buffer": png("orange")},
            {"name": "b.png", "mimeType": "image/png", "buffer": png("blue")},
        ]
    )
    page.get_by_role("button", name="Preview").click()

    expect(page.locator("#preview")).to_be_visible()
    thumbnails = page.locator("#held-photos img")
    expect(thumbnails).to_have_count(2)
    # Each thumbnail is a real image served to this buyer (a 404 would leave it empty).
    page.wait_for_function(
        "() => [...document.querySelectorAll('#held-photos img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    assert HeldPhoto.objects.count() == 2

    page.get_by_role("button", name="Submit").click()

    request = RefundRequest.objects.get(order=order)
    expect(page).to_have_url(re.compile(rf"/refunds/{request.pk}/$"))
    assert request.evidence.count() == 2
    assert not HeldPhoto.objects.exists()


def test_a_closed_window_reason_cannot_be_picked(
    live_server, browser, sign_in, buyer, restaurant, menu
):
    # Delivered two hours ago: the 60-minute quality window (L-5.1) has closed.
    with time_machine.travel(timezone.now() - dt.timedelta(hours=2)):
        order = place_order(buyer, restaurant, {menu["Margherita"]: 1})
        advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")

    page = browser.new_context().new_page()
    sign_in(page, buyer)
    page.goto(f"{live_server.url}/refunds/new/{order.pk}/")

    expect(page.locator("#reason-temperature input[type=radio]")).to_be_disabled()
    expect(page.locator("#reason-temperature")).to_contain_text("Window closed at")
    expect(page.locator("#reason-missing_items input[type=radio]")).to_be_enabled()
