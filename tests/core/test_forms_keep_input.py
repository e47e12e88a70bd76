"""Every refused form keeps what was typed (issue 10, part 8): sign in and sign up, the cart,
the reply on a refund request, escalations, and the partner's cancel, deny, verification and
settings forms come back with the input as sent and why it was refused; nothing changes.
(The report-a-problem form and its photos: tests/refunds/test_request_form_keeps_input.py.)"""

import html as html_lib
import io
import re
import uuid
from decimal import Decimal as D

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from disputes.models import Escalation
from orders.models import Order, Restaurant
from orders.services.cancellation import order_cancel_by_buyer
from refunds.models import HeldPhoto, RefundMessage
from refunds.services.requests import refund_request_ask_restaurant, refund_request_submit
from tests.conftest import advance, place_order
from tests.disputes.escalation_setup import denied_request

pytestmark = pytest.mark.django_db

LONG_TEXT = "x" * 4001


def png(name: str) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def signed_in(client, user):
    client.force_login(user)
    return client


def page(response) -> str:
    return html_lib.unescape(response.content.decode())


# -- accounts ---------------------------------------------------------------------------------


def test_a_refused_sign_in_keeps_the_username_and_never_the_password(client, buyer):
    response = client.post(reverse("login"), {"username": buyer.username, "password": "wrong-pw"})

    assert response.status_code == 200
    html = page(response)
    assert f'name="username" value="{buyer.username}"' in html
    assert "wrong-pw" not in html
    assert "_auth_user_id" not in client.session


def test_a_refused_sign_up_keeps_what_was_typed_but_the_passwords(client):
    data = {
        "username": "zoe",
        "email": "zoe@example.com",
        "first_name": "Zoë",
        "password1": "a-long-password-1",
        "password2": "a-different-one-2",
    }

    response = client.post(reverse("signup"), data)

    html = page(response)
    assert response.context["form"].errors["password2"]
    for field in ("username", "email", "first_name"):
        assert f'name="{field}" value="{data[field]}"' in html
    assert "a-long-password-1" not in html
    assert not get_user_model().objects.filter(username="zoe").exists()


# -- the cart ---------------------------------------------------------------------------------


def cart_post(client, lines, **fields):
    data = {
        "token": uuid.uuid4().hex,
        "fulfillment": "delivery",
        "delivery_address": "7 Harbour Road, Flat 2",
        "discount_code": "",
        "action": "place",
    } | fields
    data |= {f"qty_{item.pk}": quantity for item, quantity in lines.items()}
    return client.post(reverse("orders:cart"), data)


def fill_cart(client, *items):
    for item in items:
        client.post(reverse("orders:cart_add"), {"menu_item": item.pk, "quantity": 1})


def test_a_refused_order_keeps_the_address_code_and_quantities(client, buyer, menu):
    signed_in(client, buyer)
    fill_cart(client, menu["Margherita"])

    response = cart_post(client, {menu["Margherita"]: 3}, discount_code="NOSUCHCODE")

    assert response.status_code == 200
    html = page(response)
    assert 'value="7 Harbour Road, Flat 2"' in html
    assert 'value="NOSUCHCODE"' in html
    assert f'name="qty_{menu["Margherita"].pk}" value="3"' in html
    assert not Order.objects.exists()


def test_removing_a_line_keeps_the_rest_of_the_checkout_as_typed(client, buyer, menu):
    signed_in(client, buyer)
    fill_cart(client, menu["Margherita"], menu["Tiramisu"])

    response = cart_post(
        client,
        {menu["Margherita"]: 2, menu["Tiramisu"]: 1},
        action="preview",
        discount_code="WELCOME5",
        remove=str(menu["Tiramisu"].pk),
    )

    assert response.status_code == 200
    assert client.session["cart"]["lines"] == {str(menu["Margherita"].pk): 1}
    html = page(response)
    assert 'value="7 Harbour Road, Flat 2"' in html
    assert 'value="WELCOME5"' in html
    assert f'name="qty_{menu["Margherita"].pk}" value="2"' in html
    assert f'name="qty_{menu["Tiramisu"].pk}"' not in html
    assert not Order.objects.exists()


# -- buyer forms on a refund request ----------------------------------------------------------


@pytest.fixture
def delivered(now, buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 1})
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


@pytest.fixture
def claim(delivered, buyer):
    tiramisu = delivered.items.get(name="Tiramisu")
    return refund_request_submit(
        order_id=delivered.pk,
        actor=buyer,
        reason="missing_items",
        items=[(tiramisu.pk, 1)],
        description="No tiramisu.",
    )


def test_a_refused_reply_keeps_the_message(client, buyer, claim):
    signed_in(client, buyer)
    bad = SimpleUploadedFile("x.png", b"not an image", content_type="image/png")

    response = client.post(
        reverse("refunds:reply", args=[claim.pk]),
        {"body": "Here is the receipt.", "photos": [bad]},
    )

    assert response.status_code == 400
    assert "Here is the receipt.</textarea>" in page(response)
    assert not RefundMessage.objects.filter(role="buyer").exists()


def test_a_refused_reply_keeps_its_photos_and_the_next_one_sends_them(client, buyer, claim):
    signed_in(client, buyer)
    url = reverse("refunds:reply", args=[claim.pk])
    refused = client.post(url, {"body": "   ", "photos": [png("receipt.png")]})

    assert refused.status_code == 400
    held = HeldPhoto.objects.get()
    assert f'name="held_photos" value="{held.pk}"' in page(refused)
    assert claim.evidence.count() == 0

    sent = client.post(url, {"body": "The receipt.", "held_photos": [str(held.pk)]})

    assert sent.status_code == 302
    assert [e.file.name for e in claim.evidence.all()] == [held.file.name]
    assert not HeldPhoto.objects.exists()
    assert RefundMessage.objects.get(role="buyer").body == "The receipt."


def test_a_refused_escalation_on_an_order_keeps_the_statement(client, buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 1})
    signed_in(client, buyer)
    url = reverse("disputes:escalate-order", args=[order.pk])

    # Nothing to contest: the restaurant has not answered a cancellation request (K-DR).
    response = client.post(
        url, {"statement": "The fee is unfair.", "subject": "cancellation_denied"}
    )

    assert response.status_code == 409
    html = page(response)
    assert ">The fee is unfair.</textarea>" in html
    assert 'name="subject" value="cancellation_denied"' in html
    assert f'action="{url}"' in html
    assert not Escalation.objects.exists()


def test_an_escalation_statement_over_the_limit_comes_back_as_typed(
    client, buyer, restaurant, menu, agent
):
    denied = denied_request(buyer, restaurant, menu, agent)
    signed_in(client, buyer)

    response = client.post(
        reverse("disputes:escalate-request", args=[denied.pk]), {"statement": LONG_TEXT}
    )

    assert response.status_code == 400
    assert f">{LONG_TEXT}</textarea>" in page(response)
    assert not Escalation.objects.exists()


def test_a_refused_escalation_keeps_its_photos_and_the_next_try_sends_them(
    client, buyer, restaurant, menu, agent
):
    denied = denied_request(buyer, restaurant, menu, agent)
    signed_in(client, buyer)
    url = reverse("disputes:escalate-request", args=[denied.pk])

    refused = client.post(url, {"statement": LONG_TEXT, "photos": [png("receipt.png")]})

    assert refused.status_code == 400
    held = HeldPhoto.objects.get()
    assert (held.order_id, held.uploaded_by) == (denied.order_id, buyer)
    assert f'name="held_photos" value="{held.pk}"' in page(refused)

    sent = client.post(url, {"statement": "It was not packed.", "held_photos": [str(held.pk)]})

    escalation = Escalation.objects.get()
    assert sent["Location"] == escalation.get_absolute_url()
    assert [e.file.name for e in escalation.evidence.all()] == [held.file.name]
    assert not HeldPhoto.objects.exists()


# -- the partner's forms ----------------------------------------------------------------------


def test_a_refused_restaurant_cancellation_keeps_the_reason_and_explanation(
    client, partner, buyer, restaurant, menu
):
    order = advance(place_order(buyer, restaurant, {menu["Margherita"]: 1}), "accept")
    signed_in(client, partner)

    response = client.post(
        reverse("seller:cancel", args=[order.pk]),
        {"reason": "item_unavailable", "explanation": "Sorry"},
    )

    assert response.status_code == 400
    html = page(response)
    assert "Sorry</textarea>" in html
    assert re.search(r'value="item_unavailable"[^>]*checked', html)
    assert response.context["form"].errors["explanation"]
    assert Order.objects.get(pk=order.pk).status == Order.Status.ACCEPTED


def test_a_refused_verification_note_comes_back_on_its_claim(client, partner, agent, claim):
    refund_request_ask_restaurant(request_id=claim.pk, actor=agent, question="Was it packed?")
    signed_in(client, partner)

    response = client.post(
        reverse("seller:verification-answer", args=[claim.pk]), {"note": LONG_TEXT}
    )

    assert response.status_code == 400
    [row] = response.context["requests"]
    assert (row.pk, row.note_error) == (
        claim.pk,
        f"Refund request #{claim.pk}: Keep the note under 4000 characters.",
    )
    assert f">{LONG_TEXT}</textarea>" in page(response)
    assert not RefundMessage.objects.filter(role="restaurant").exists()


def test_a_refused_deny_keeps_the_reason_on_its_request(client, partner, buyer, restaurant, menu):
    order = advance(place_order(buyer, restaurant, {menu["Margherita"]: 1}), "accept")
    order, _ = order_cancel_by_buyer(order_id=order.pk, actor=buyer)
    signed_in(client, partner)
    reason = "y" * 401

    response = client.post(reverse("seller:cancellation-deny", args=[order.pk]), {"reason": reason})

    assert response.status_code == 400
    assert f'value="{reason}"' in page(response)
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLATION_REQUESTED


def test_refused_settings_keep_the_values_typed(client, partner, restaurant):
    signed_in(client, partner)
    before = (restaurant.cancellation_window_minutes, restaurant.cancellation_fee_percent)

    response = client.post(
        reverse("seller:settings"),
        {"cancellation_window_minutes": "7", "cancellation_fee_percent": "35"},
    )

    assert response.status_code == 400
    html = page(response)
    assert 'name="cancellation_window_minutes" value="7"' in html
    assert 'name="cancellation_fee_percent" value="35"' in html
    restaurant = Restaurant.objects.get(pk=restaurant.pk)
    assert (restaurant.cancellation_window_minutes, restaurant.cancellation_fee_percent) == before
    assert D(35) != restaurant.cancellation_fee_percent
