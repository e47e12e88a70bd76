"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server."""

import os

import pytest

CHROMIUM = "/usr/bin/chromium"

# Playwright runs an event loop in the test thread; the ORM calls the tests make to set up and
# check data are synchronous and safe here (one thread at a time).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def sign_in(live_server):
    """`sign_in(page, user)`: sign in through the login page as `user` (password of the
    factories)."""

    def do(page, user, password="pass-word-123"):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()

    return do
