"""Accounts: sign up, sign in, sign out, and which pages need a sign-in (lockouts:
test_signin_lockout.py)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "pass-word-123"  # tests.factories.UserFactory's password


def signed_in_user_id(client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value else None


def test_sign_up_creates_the_account_and_signs_in(client):
    response = client.post(
        reverse("signup"),
        {
            "username": "linus",
            "email": "linus@example.com",
            "first_name": "Linus",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
        },
        follow=True,
    )

    user = User.objects.get(username="linus")
    assert (user.email, user.first_name) == ("linus@example.com", "Linus")
    assert user.check_password("a-long-pass-phrase")
    assert signed_in_user_id(client) == user.pk
    assert response.redirect_chain[0] == (reverse("home"), 302)
    assert "Welcome, Linus! Your account is ready." in response.content.decode()


@pytest.mark.parametrize(
    ("case", "changes", "error"),
    [
        ("passwords differ", {"password2": "another-pass-phrase"}, "The two password fields didn"),
        ("email taken", {"email": "ADA@example.com"}, "An account with this email already exists."),
        ("no first name", {"first_name": ""}, "This field is required."),
        ("no email", {"email": ""}, "This field is required."),
    ],
)
def test_sign_up_refusals_create_nothing(client, buyer, case, changes, error):
    data = {
        "username": "linus",
        "email": "linus@example.com",
        "first_name": "Linus",
        "password1": "a-long-pass-phrase",
        "password2": "a-long-pass-phrase",
    } | changes

    response = client.post(reverse("signup"), data)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not User.objects.filter(username="linus").exists()
    assert signed_in_user_id(client) is None


def test_sign_in_and_out(client, buyer):
    response = client.post(reverse("login"), {"username": "ada", "password": PASSWORD})
    assert (response.status_code, response["Location"]) == (302, reverse("home"))
    assert signed_in_user_id(client) == buyer.pk

    assert client.get(reverse("logout")).status_code == 405  # signing out is a POST
    response = client.post(reverse("logout"))
    assert (response.status_code, response["Location"]) == (302, reverse("home"))
    assert signed_in_user_id(client) is None


def test_sign_in_follows_a_safe_next(client, buyer):
    response = client.post(
        reverse("login") + "?next=/cart/",
        {"username": "ada", "password": PASSWORD, "next": "/cart/"},
    )
    assert response["Location"] == "/cart/"


def test_a_partner_lands_on_the_seller_portal(client, partner, restaurant):
    response = client.post(reverse("login"), {"username": "luigi", "password": PASSWORD})

    assert (response.status_code, response["Location"]) == (302, reverse("seller:queue"))
    assert signed_in_user_id(client) == partner.pk
    # Signed in already, the sign-in page sends the partner to the portal too.
    assert client.get(reverse("login"))["Location"] == reverse("seller:queue")


def test_a_partners_next_still_wins(client, partner, restaurant):
    response = client.post(
        reverse("login") + "?next=/policy/",
        {"username": "luigi", "password": PASSWORD, "next": "/policy/"},
    )

    assert response["Location"] == "/policy/"


def test_an_unsafe_next_sends_a_partner_to_the_portal(client, partner, restaurant):
    response = client.post(
        reverse("login"),
        {"username": "luigi", "password": PASSWORD, "next": "https://evil.example/"},
    )

    assert response["Location"] == reverse("seller:queue")


def test_a_buyer_still_lands_on_the_restaurants(client, buyer, restaurant):
    response = client.post(reverse("login"), {"username": "ada", "password": PASSWORD})

    assert response["Location"] == reverse("home")


def test_a_support_agent_lands_in_admin(client, agent):
    response = client.post(reverse("login"), {"username": agent.username, "password": PASSWORD})

    assert response["Location"] == reverse("admin:index")


def test_wrong_password_is_refused(client, buyer):
    response = client.post(reverse("login"), {"username": "ada", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert signed_in_user_id(client) is None


def test_home_shows_the_restaurants(client):
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, reverse("orders:restaurants"))


@pytest.mark.parametrize(
    "url",
    ["/cart/", "/orders/", "/orders/1/", "/wallet/"],
)
def test_buyer_pages_need_a_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("name", ["signup", "login", "policy", "orders:restaurants"])
def test_public_pages_need_no_sign_in(client, name):
    assert client.get(reverse(name)).status_code == 200


def test_forms_need_the_csrf_token(buyer):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "ada", "password": PASSWORD})
    assert response.status_code == 403
    assert 'name="csrfmiddlewaretoken"' in client.get(reverse("login")).content.decode()
    assert 'name="csrfmiddlewaretoken"' in client.get(reverse("signup")).content.decode()
