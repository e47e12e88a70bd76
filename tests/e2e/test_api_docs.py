"""`/api/docs/` works with no internet (D-9, issue 10 part 6): Swagger UI comes from
drf-spectacular-sidecar through our static files, its start-up script is a file of its own (no
inline script), and every operation of the schema is listed."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_with_everything_but_the_server_blocked(live_server, page):
    blocked, served = [], []

    def only_the_server(route):
        url = route.request.url
        if url.startswith(live_server.url):
            served.append(url)
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", only_the_server)
    page.goto(f"{live_server.url}/api/docs/")

    orders = page.locator(".opblock").filter(has_text="/api/orders/").first
    expect(orders).to_be_visible(timeout=15000)
    catalogue = page.locator(".opblock-get").filter(has_text="/api/restaurants/{id}/menu/")
    expect(catalogue).to_be_visible()
    expect(page.locator(".opblock-post").filter(has_text="/api/auth/token/")).to_be_visible()
    assert blocked == []
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/" in url for url in served)
    assert page.locator("script:not([src])").count() == 0
