"""Security headers on every response (issue 11 part 3): the Content-Security-Policy
(django-csp), the Permissions-Policy, and Django's own headers kept; no template carries an
inline script or event handler the policy would block."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'self'; object-src 'none'"
)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)


def csp_directives(header: str) -> dict[str, str]:
    parts = (part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    return {name: rest for name, rest in parts}


@pytest.mark.parametrize(
    "url",
    ["/", "/policy/", "/accounts/login/", "/admin/login/", "/api/docs/", "/api/restaurants/"],
)
def test_every_response_carries_the_policies_and_django_headers(client, buyer, url):
    client.force_login(buyer)
    response = client.get(url, follow=True)

    assert response.status_code == 200
    assert csp_directives(response["Content-Security-Policy"]) == csp_directives(CSP)
    permissions = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in permissions
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_error_pages_carry_the_policies_too(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "camera=()" in response["Permissions-Policy"]


def test_no_template_has_an_inline_script_or_event_handler():
    found = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER)
        for match in pattern.finditer(path.read_text())
    ]
    assert found == []
