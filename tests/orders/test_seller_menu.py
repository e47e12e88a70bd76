"""The seller's menu (D-9, issue 10 part 4): partners mark dishes sold out for today (back on
their own the next local day) and edit names, prices and allergens. New orders use the new
values; placed orders keep the name and price their lines copied. Only members of the
restaurant may change its dishes."""

import datetime as dt
import html as html_lib
import re
import uuid
from decimal import Decimal as D

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from core.errors import DomainError
from orders.models import MenuItem, Order, OrderItem
from orders.services.menu import menu_item_set_sold_out_today, menu_item_update
from tests.conftest import NOW, place_order
from tests.factories import MenuItemFactory, RestaurantFactory

pytestmark = pytest.mark.django_db

MENU = reverse("seller:menu")


@pytest.fixture
def luigi(client, partner, restaurant):
    client.force_login(partner)
    return client


def edit_url(item) -> str:
    return reverse("seller:menu-item", args=[item.pk])


def sold_out_url(item) -> str:
    return reverse("seller:menu-item-sold-out", args=[item.pk])


def text(html: str) -> str:
    words = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", html)).split())
    return re.sub(r" ([.,;:)])", r"\1", words)


def dish(response, item) -> str:
    """The HTML of the dish's card, from its <li> to the end of its edit form."""
    match = re.search(
        rf'<li class="[^"]*" id="dish-{item.pk}">.*?</details>', response.content.decode(), re.S
    )
    return match.group(0) if match else ""


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# -- the page -------------------------------------------------------------------------------


def test_the_menu_page_lists_the_dishes_with_their_forms(luigi, menu):
    menu["Margherita"].allergens = ["gluten", "milk"]
    menu["Margherita"].save()

    response = luigi.get(MENU)

    assert response.status_code == 200
    margherita = dish(response, menu["Margherita"])
    assert "12.50 USD" in margherita
    assert "On sale" in margherita
    assert f'action="{edit_url(menu["Margherita"])}"' in margherita
    assert 'value="gluten, milk"' in margherita
    assert f'id="dish-{menu["Margherita"].pk}-price"' in margherita
    assert "Price (USD)" in margherita
    assert f'action="{sold_out_url(menu["Margherita"])}"' in margherita
    assert "Sold out today" in margherita
    assert "orders already placed keep the name and price" in text(response.content.decode())


def test_the_nav_links_the_menu(luigi):
    html = luigi.get(reverse("seller:queue")).content.decode()

    assert f'<a href="{MENU}">Menu</a>' in html
    assert f'<a href="{MENU}" aria-current="page">Menu</a>' in luigi.get(MENU).content.decode()


def test_a_partner_of_two_restaurants_picks_one(client, partner, restaurant):
    second = RestaurantFactory(name="Pizzeria Due", slug="due", members=[partner])
    calzone = MenuItemFactory(restaurant=second, name="Calzone", price=D("11.00"))
    client.force_login(partner)

    first_by_name = client.get(MENU)
    roma = client.get(MENU, {"restaurant": restaurant.pk})

    assert dish(first_by_name, calzone)
    assert "Margherita" not in first_by_name.content.decode()
    assert 'id="seller-restaurant"' in roma.content.decode()
    assert "Calzone" not in roma.content.decode()
    assert "Margherita" in roma.content.decode()


def test_a_buyer_gets_the_not_partner_page(client, buyer, menu):
    client.force_login(buyer)

    page = client.get(MENU)
    edit = client.post(edit_url(menu["Margherita"]), {"name": "Free", "price": "0.01"})
    sold_out = client.post(sold_out_url(menu["Margherita"]), {"sold_out": "1"})

    for response in (page, edit, sold_out):
        assert response.status_code == 403
        assert "The seller portal is for restaurant partners." in response.content.decode()
    menu["Margherita"].refresh_from_db()
    assert (menu["Margherita"].name, menu["Margherita"].price) == ("Margherita", D("12.50"))
    assert menu["Margherita"].unavailable_on is None


def test_another_restaurants_partner_gets_a_404(client, other_partner, menu):
    client.force_login(other_partner)

    edit = client.post(edit_url(menu["Margherita"]), {"name": "Mine", "price": "1.00"})
    sold_out = client.post(sold_out_url(menu["Margherita"]), {"sold_out": "1"})
    filtered = client.get(MENU, {"restaurant": menu["Margherita"].restaurant_id})

    assert (edit.status_code, sold_out.status_code, filtered.status_code) == (404, 404, 404)
    menu["Margherita"].refresh_from_db()
    assert (menu["Margherita"].name, menu["Margherita"].price) == ("Margherita", D("12.50"))
    assert menu["Margherita"].unavailable_on is None


def test_anonymous_visitors_are_sent_to_sign_in(client, menu):
    for response in [
        client.get(MENU),
        client.post(edit_url(menu["Margherita"]), {"name": "X", "price": "1.00"}),
    ]:
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("dishes", [1, 15])
def test_the_menu_query_count_is_constant(luigi, restaurant, django_assert_num_queries, dishes):
    for n in range(dishes):
        MenuItemFactory(restaurant=restaurant, name=f"Extra {n}", allergens=["nuts"])

    # user (the session is in Redis), the partner's restaurants, the dishes, the nav's waiting
    # requests, and the header's "is a partner" check in base.html
    with django_assert_num_queries(5):
        response = luigi.get(MENU)

    assert response.content.decode().count('class="card seller-dish') == dishes + 3


# -- editing name, price, allergens ------------------------------------------------------------


def test_editing_a_dish_saves_it_for_new_orders(luigi, menu):
    item = menu["Margherita"]

    response = luigi.post(
        edit_url(item),
        {"name": "  Margherita DOP ", "price": "13.90", "allergens": "Gluten, milk,, gluten "},
    )

    assert (response.status_code, response.url) == (302, f"{MENU}#dish-{item.pk}")
    item.refresh_from_db()
    assert (item.name, item.price, item.allergens) == (
        "Margherita DOP",
        D("13.90"),
        ["gluten", "milk"],
    )
    assert messages_of(response) == [
        "Margherita DOP saved: 13.90 USD on new orders. Orders already placed keep the price "
        "they were placed at."
    ]


def test_placed_orders_keep_their_copied_names_and_prices(luigi, buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 1})
    before = (order.subtotal, order.total, order.amount_paid, order.amount_charged)
    lines_before = list(order.items.values_list("name", "unit_price", "quantity"))

    luigi.post(edit_url(menu["Margherita"]), {"name": "Margherita XL", "price": "19.00"})

    order.refresh_from_db()
    assert (order.subtotal, order.total, order.amount_paid, order.amount_charged) == before
    assert list(order.items.values_list("name", "unit_price", "quantity")) == lines_before
    assert lines_before[0] == ("Margherita", D("12.50"), 2)
    # A new order pays the new price under the new name.
    new = place_order(buyer, restaurant, {menu["Margherita"]: 1})
    assert list(new.items.values_list("name", "unit_price")) == [("Margherita XL", D("19.00"))]
    assert new.subtotal == D("19.00")


@pytest.mark.parametrize(
    ("case", "post", "field", "message"),
    [
        ("zero", {"price": "0"}, "price", "A price must be more than 0.00 USD."),
        ("negative", {"price": "-3.00"}, "price", "A price must be more than 0.00 USD."),
        ("three decimals", {"price": "12.505"}, "price", "A price has at most two decimals"),
        ("not a number", {"price": "twelve"}, "price", "Enter a number."),
        ("too large", {"price": "100000"}, "price", "A price is at most 9,999.99 USD."),
        ("no price", {"price": ""}, "price", "This field is required."),
        ("blank name", {"name": "   "}, "name", "This field is required."),
        ("long name", {"name": "x" * 121}, "name", "A dish name has at most 120 characters."),
        ("long allergen", {"allergens": "y" * 41}, "allergens", "An allergen has at most 40"),
    ],
)
def test_a_refused_edit_is_a_400_keeping_what_was_typed(luigi, menu, case, post, field, message):
    item = menu["Margherita"]
    body = {"name": "Margherita Nuova", "price": "13.00", "allergens": "gluten"} | post

    response = luigi.post(edit_url(item), body)

    assert response.status_code == 400, case
    section = dish(response, item)
    errors = re.search(rf'id="dish-{item.pk}-{field}-errors"[^>]*>(.*?)</div>', section, re.S)
    assert errors, case
    assert message in text(errors.group(1)), case
    assert '<details class="dish-edit" open>' in section
    for name, value in body.items():
        if value.strip() and name != field:
            assert f'value="{html_lib.escape(value)}"' in section, (case, name)
    item.refresh_from_db()
    assert (item.name, item.price, item.allergens) == ("Margherita", D("12.50"), [])


def test_the_service_refuses_a_non_member_and_bad_values(partner, other_partner, menu):
    item = menu["Tiramisu"]

    with pytest.raises(DomainError) as not_member:
        menu_item_update(
            menu_item_id=item.pk, actor=other_partner, name="X", price=D("1.00"), allergens=[]
        )
    with pytest.raises(DomainError) as bad:
        menu_item_update(
            menu_item_id=item.pk, actor=partner, name="", price=D("0.001"), allergens=[]
        )

    assert (not_member.value.code, not_member.value.kind) == ("not_found", "not_found")
    assert (bad.value.code, bad.value.kind) == ("invalid_menu_item", "invalid")
    assert set(bad.value.extra["errors"]) == {"name", "price"}
    item.refresh_from_db()
    assert (item.name, item.price) == ("Tiramisu", D("6.00"))


# -- sold out today ----------------------------------------------------------------------------


def test_sold_out_today_refuses_the_dish_until_tomorrow(luigi, buyer, restaurant, menu, now):
    item = menu["Tiramisu"]

    response = luigi.post(sold_out_url(item), {"sold_out": "1"})

    assert response.url == f"{MENU}#dish-{item.pk}"
    assert messages_of(response) == [
        "Tiramisu is sold out today; buyers see it back on the menu tomorrow."
    ]
    item.refresh_from_db()
    assert item.unavailable_on == NOW.date()
    assert "Sold out today" in dish(luigi.get(MENU), item)
    with pytest.raises(DomainError) as refused:
        place_order(buyer, restaurant, {item: 1, menu["Margherita"]: 1})
    assert refused.value.code == "item_unavailable_today"
    assert refused.value.detail == "Tiramisu is sold out today; it is back on the menu tomorrow."
    assert not Order.objects.filter(buyer=buyer).exists()

    now.move_to(dt.datetime(2026, 11, 21, 0, 0, 1, tzinfo=dt.UTC))  # the next local day

    order = place_order(buyer, restaurant, {item: 1})
    assert list(order.items.values_list("name", flat=True)) == ["Tiramisu"]


def test_back_on_sale_now(luigi, buyer, restaurant, menu, now):
    item = menu["Tiramisu"]
    luigi.post(sold_out_url(item), {"sold_out": "1"})

    response = luigi.post(sold_out_url(item), {"sold_out": "0"})

    assert messages_of(response)[-1] == "Tiramisu is back on sale."
    item.refresh_from_db()
    assert item.unavailable_on is None
    assert place_order(buyer, restaurant, {item: 1}).status == Order.Status.PLACED


def test_sold_out_needs_a_valid_choice(luigi, menu):
    response = luigi.post(sold_out_url(menu["Tiramisu"]), {"sold_out": "maybe"})

    assert response.status_code == 400
    assert "Select a valid choice." in response.content.decode()
    menu["Tiramisu"].refresh_from_db()
    assert menu["Tiramisu"].unavailable_on is None


def test_the_buyer_menu_shows_it_sold_out_and_the_cart_refuses_it(
    client, buyer, restaurant, menu, now
):
    menu_item_set_sold_out_today(
        menu_item_id=menu["Tiramisu"].pk, actor=restaurant.members.first(), sold_out=True
    )
    client.force_login(buyer)

    page = client.get(restaurant.get_absolute_url()).content.decode()
    added = client.post(
        reverse("orders:cart_add"), {"menu_item": menu["Tiramisu"].pk, "quantity": 1}
    )

    tiramisu = re.search(r"<h2>Tiramisu.*?</li>", page, re.S).group(0)
    assert "Sold out today" in tiramisu
    assert "Add to cart" not in tiramisu
    assert "Add to cart" in re.search(r"<h2>Lemonade.*?</li>", page, re.S).group(0)
    assert messages_of(added) == ["Tiramisu is sold out today; it is back on the menu tomorrow."]
    assert "cart" not in client.session


def test_a_dish_in_the_cart_sold_out_meanwhile_is_refused_at_placement(
    client, buyer, restaurant, menu, now
):
    client.force_login(buyer)
    client.post(reverse("orders:cart_add"), {"menu_item": menu["Tiramisu"].pk, "quantity": 1})
    menu_item_set_sold_out_today(
        menu_item_id=menu["Tiramisu"].pk, actor=restaurant.members.first(), sold_out=True
    )

    response = client.post(
        reverse("orders:cart"),
        {
            "action": "place",
            "fulfillment": "delivery",
            "delivery_address": "7 Harbour Road",
            "token": f"menu-test-{uuid.uuid4()}",
            f"qty_{menu['Tiramisu'].pk}": 1,
        },
    )

    assert "Tiramisu is sold out today; it is back on the menu tomorrow." in text(
        response.content.decode()
    ) + " ".join(messages_of(response))
    assert not Order.objects.filter(buyer=buyer).exists()
    assert not OrderItem.objects.exists()
    assert MenuItem.objects.get(pk=menu["Tiramisu"].pk).unavailable_on == NOW.date()
