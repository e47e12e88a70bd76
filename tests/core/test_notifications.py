"""Every user's notifications: the list, marking read (never just by looking), and the unread
count in the header."""

import datetime as dt
import html as html_lib
import re

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.urls import reverse

from core.models import Notification
from core.services import notify
from tests.conftest import NOW, place_order

pytestmark = pytest.mark.django_db

PAGE = "/notifications/"


@pytest.fixture
def ada(client, buyer):
    client.force_login(buyer)
    return client


def text(response) -> str:
    html = re.sub(r"</?(a|span|strong|time|b|em)\b[^>]*>", "", response.content.decode())
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def tell(user, title, minutes=0, **kwargs):
    """A notification created `minutes` after NOW, without an email."""
    with time_machine.travel(NOW + dt.timedelta(minutes=minutes), tick=False):
        return notify(
            user=user, title=title, body=kwargs.pop("body", "Body."), email=False, **kwargs
        )


def unread_of(user) -> list[str]:
    return list(
        Notification.objects.filter(user=user, read_at__isnull=True)
        .order_by("pk")
        .values_list("title", flat=True)
    )


def test_the_list_shows_only_the_users_own_newest_first_unread_marked(
    ada, buyer, other_buyer, restaurant
):
    order = place_order(buyer, restaurant)
    tell(buyer, "Order placed", 0, body="Your order is in.\nWe tell you when it moves.")
    tell(other_buyer, "Grace's news", 1)
    newest = tell(buyer, "Order cancelled", 2, order=order, body="27.99 USD comes back.")
    Notification.objects.filter(title="Order placed").update(read_at=NOW)

    response = ada.get(PAGE)

    assert response.status_code == 200
    page = text(response)
    assert "Grace's news" not in page
    assert (
        "Notifications 1 unread. Mark all read "
        f"New Order cancelled Fri 20 Nov 2026, 12:02 27.99 USD comes back. Open order #{order.pk} "
        "Order placed Fri 20 Nov 2026, 12:00 · read Your order is in. We tell you when it moves."
    ) in page
    html = response.content.decode()
    assert "<p>Your order is in.<br>We tell you when it moves.</p>" in html
    assert f'<button type="submit" name="open" value="{newest.pk}" class="link">' in html
    assert html.count('class="card notification unread"') == 1


def test_opening_the_page_marks_nothing_read(ada, buyer):
    tell(buyer, "One")
    tell(buyer, "Two")

    ada.get(PAGE)
    ada.get(PAGE)

    assert unread_of(buyer) == ["One", "Two"]


def test_mark_all_read_marks_only_the_users_own(ada, buyer, other_buyer):
    tell(buyer, "One")
    tell(buyer, "Two")
    tell(other_buyer, "Grace's")

    with time_machine.travel(NOW + dt.timedelta(hours=1), tick=False):
        response = ada.post(PAGE, {"read_all": "1"})

    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert messages_of(response) == ["Marked 2 notifications read."]
    assert unread_of(buyer) == []
    assert set(Notification.objects.filter(user=buyer).values_list("read_at", flat=True)) == {
        NOW + dt.timedelta(hours=1)
    }
    assert unread_of(other_buyer) == ["Grace's"]


def test_mark_all_read_with_nothing_unread_says_so(ada, buyer):
    response = ada.post(PAGE, {"read_all": "1"})

    assert messages_of(response) == ["Nothing unread."]


def test_following_a_notification_marks_that_one_read_and_goes_to_its_order(ada, buyer, restaurant):
    order = place_order(buyer, restaurant)
    followed = tell(buyer, "Order cancelled", order=order)
    tell(buyer, "Other")

    response = ada.post(PAGE, {"open": followed.pk})

    assert response.status_code == 302
    assert response["Location"] == f"/orders/{order.pk}/"
    assert unread_of(buyer) == ["Other"]


def test_a_notification_pointing_off_site_is_not_followed(ada, buyer):
    notification = tell(buyer, "Odd", url="https://evil.example/")

    response = ada.post(PAGE, {"open": notification.pk})

    assert response["Location"] == PAGE


def test_another_users_notification_cannot_be_opened(ada, other_buyer):
    theirs = tell(other_buyer, "Grace's", url="/orders/")

    assert ada.post(PAGE, {"open": theirs.pk}).status_code == 404
    assert ada.post(PAGE, {"open": "nope"}).status_code == 404
    assert unread_of(other_buyer) == ["Grace's"]


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={PAGE}"


def test_the_header_shows_the_unread_count(ada, buyer, other_buyer):
    tell(buyer, "One")
    tell(buyer, "Two")
    tell(other_buyer, "Grace's")

    assert "Notifications (2)" in text(ada.get(reverse("orders:list")))

    ada.post(PAGE, {"read_all": "1"})

    assert "Notifications (0)" in text(ada.get(reverse("orders:list")))


def test_the_header_has_no_count_for_visitors_and_links_the_seller_portal_for_partners(
    client, partner, restaurant
):
    page = text(client.get(reverse("orders:restaurants")))
    assert "Notifications" not in page
    assert "Seller portal" not in page

    client.force_login(partner)
    tell(partner, "New order")
    page = text(client.get(reverse("orders:restaurants")))
    assert "My orders Wallet Notifications (1) Seller portal" in page


def test_the_header_count_is_one_query_and_visitors_cost_none(
    client, buyer, django_assert_num_queries
):
    with django_assert_num_queries(1):  # the restaurants list
        client.get(reverse("orders:restaurants"))

    client.force_login(buyer)
    tell(buyer, "One")
    # user (the session is in Redis), the restaurants, the header's count and partner check in one
    # query
    with django_assert_num_queries(3):
        client.get(reverse("orders:restaurants"))


@pytest.mark.parametrize("how_many", [1, 40])
def test_notifications_page_query_count_is_constant(
    ada, buyer, restaurant, how_many, django_assert_num_queries
):
    order = place_order(buyer, restaurant)
    for n in range(how_many):
        tell(buyer, f"Note {n}", n, order=order if n % 2 else None)

    # user (the session is in Redis), count, the page of notifications, the header
    with django_assert_num_queries(4):
        response = ada.get(PAGE)
    assert text(response).count("Note ") == min(how_many, 30)
