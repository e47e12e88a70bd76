"""The header every page shares (D-9): a cart link with the number of items in the cart, read
from the session at no query cost, next to the menu that holds the navigation."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from core.selectors import HeaderFacts, header_facts
from core.services import notify
from disputes.models import Suspension

pytestmark = pytest.mark.django_db


def cart_link(response) -> str:
    match = re.search(r'<a class="cart-link"[^>]*>.*?</a>', response.content.decode(), re.S)
    return match.group(0) if match else ""


def visible(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def add(client, item, quantity):
    response = client.post(reverse("orders:cart_add"), {"menu_item": item.pk, "quantity": quantity})
    assert response.status_code == 302


def test_the_cart_link_counts_the_items_in_the_cart(client, buyer, menu):
    client.force_login(buyer)
    assert visible(cart_link(client.get(reverse("orders:list")))) == "Cart 0 items"

    add(client, menu["Margherita"], 2)
    add(client, menu["Tiramisu"], 1)

    link = cart_link(client.get(reverse("orders:list")))
    assert f'href="{reverse("orders:cart")}"' in link
    assert 'data-cart-count="3"' in link
    assert visible(link) == "Cart 3 items"


def test_visitors_have_no_cart_link(client, restaurant):
    assert cart_link(client.get(reverse("orders:restaurants"))) == ""


@pytest.mark.parametrize("lines", [0, 3])
def test_the_cart_count_costs_no_query(client, buyer, menu, lines, django_assert_num_queries):
    client.force_login(buyer)
    for item in list(menu.values())[:lines]:
        add(client, item, 1)

    # user (the session is in Redis), the restaurants, the header's count and partner check in one
    # query
    with django_assert_num_queries(3):
        response = client.get(reverse("orders:restaurants"))
    assert f'data-cart-count="{lines}"' in cart_link(response)


def toggle(response) -> str:
    html = response.content.decode()
    menu = re.search(r'<details class="nav-menu">.*?</details>', html, re.S).group(0)
    assert '<nav aria-label="Main">' in menu
    return visible(re.search(r"<summary>.*?</summary>", menu, re.S).group(0))


def test_the_navigation_sits_in_a_menu_whose_toggle_tells_of_unread_notifications(client, buyer):
    client.force_login(buyer)
    assert toggle(client.get(reverse("orders:list"))) == "Menu"

    notify(user=buyer, title="Order placed", body="Your order is in.", email=False)
    notify(user=buyer, title="Accepted", body="The restaurant accepted.", email=False)

    assert toggle(client.get(reverse("orders:list"))) == "Menu (2 unread)"


def orm_header_facts(user) -> HeaderFacts:
    """The header's facts read the plain way, to check the one hand-written statement."""
    return HeaderFacts(
        unread=user.notifications.filter(read_at__isnull=True).count(),
        is_partner=user.restaurants.exists(),
        is_suspended=user.suspensions.filter(lifted_at__isnull=True).exists(),
    )


@pytest.mark.parametrize("unread", [0, 2])
@pytest.mark.parametrize("suspension", ["none", "lifted", "active"])
def test_the_header_facts_statement_agrees_with_the_orm(users, restaurant, unread, suspension):
    buyer, partner, supervisor = users["buyer"], users["partner"], users["supervisor"]
    now = timezone.now()
    for index in range(unread + 1):
        notify(user=buyer, title=f"Note {index}", body="-", email=False)
    buyer.notifications.filter(pk=buyer.notifications.order_by("pk").first().pk).update(read_at=now)
    notify(user=partner, title="For the partner", body="-", email=False)
    if suspension != "none":
        Suspension.objects.create(
            buyer=buyer,
            reason="chargeback",
            created_by=supervisor,
            lifted_at=now if suspension == "lifted" else None,
        )

    for user in (buyer, partner, supervisor):
        assert header_facts(user.pk) == orm_header_facts(user)
    assert header_facts(buyer.pk) == HeaderFacts(unread, False, suspension == "active")
    assert header_facts(partner.pk) == HeaderFacts(1, True, False)
