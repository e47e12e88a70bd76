"""Signing in under django-axes (D-11): which address a request comes from, until when a
locked-out username or address must wait, and the answer a locked-out attempt gets.

axes calls `client_ip` (AXES_CLIENT_IP_CALLABLE) for every attempt and `lockout_response`
(AXES_LOCKOUT_CALLABLE) when it refuses one; the token API calls `lockout_response` itself,
because DRF hands axes its own request object, which the axes middleware never sees.
Everything here reads the database, never the cache: sign-in works with Redis down.
"""

from datetime import datetime

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from core.display import when_text

LOCKED_OUT_TEMPLATE = "registration/locked_out.html"


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address as a string (None if the request carries none).

    With `LOJIX_TRUSTED_PROXY_COUNT` = 0, REMOTE_ADDR: X-Forwarded-For is ignored, as anybody
    can send one. With N > 0 trusted proxies, each appending the address it saw, the entry N
    places from the right of X-Forwarded-For; a header shorter than that did not come through
    all of them, so REMOTE_ADDR is used instead.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.LOJIX_TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    return hops[-count] if len(hops) >= count else remote


def locked_until(request: HttpRequest, credentials: dict | None) -> datetime | None:
    """When the lock on this attempt's username or address ends (aware datetime): the last
    recorded failure for either plus AXES_COOLOFF_TIME. None if nothing is recorded."""
    username = get_client_username(request, credentials)
    ip_address = client_ip(request)
    matches = Q(ip_address=ip_address) if ip_address else Q(pk__in=[])
    if username:
        matches |= Q(username=username)
    last = AccessAttempt.objects.filter(matches).aggregate(last=Max("attempt_time"))["last"]
    cool_off = get_cool_off(request)
    if last is None or cool_off is None:
        return None
    return last + cool_off


def lockout_message(until: datetime | None) -> str:
    """The sentence a locked-out person reads, e.g. "Too many failed sign-ins. Try again after
    Mon 30 Nov 2026, 14:05." """
    if until is None:
        return "Too many failed sign-ins. Try again later."
    return f"Too many failed sign-ins. Try again after {when_text(until)}."


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """The answer to a refused sign-in, status AXES_HTTP_RESPONSE_CODE (429) with Retry-After
    in seconds: under /api/ JSON `{"code": "locked_out", "detail": <message>}`, elsewhere the
    lockout page (`registration/locked_out.html`)."""
    until = locked_until(request, credentials)
    message = lockout_message(until)
    status = settings.AXES_HTTP_RESPONSE_CODE
    if request.path_info.startswith("/api/"):
        response = JsonResponse({"code": "locked_out", "detail": message}, status=status)
    else:
        context = {"message": message, "until": until}
        response = render(request, LOCKED_OUT_TEMPLATE, context, status=status)
    if until is not None:
        seconds = max(0, int((until - timezone.now()).total_seconds()))
        response["Retry-After"] = str(seconds)
    return response
