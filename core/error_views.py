"""The 400/403/404/500 handlers (`config.urls`): JSON with a `code` under `/api/` (D-10), the
styled HTML pages (`templates/404.html`, ...) everywhere else."""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from core.api import DATABASE_RETRY_AFTER_SECONDS, STATUS_BY_KIND, database_unavailable_error

API_PREFIX = "/api/"


def _is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _api_error(code: str, detail: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)


def bad_request(request, exception=None):
    """400 `bad_request` (a request Django refused before any view: a bad host, a body too
    large)."""
    if _is_api(request):
        return _api_error("bad_request", "The request could not be read.", 400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    """403 `permission_denied`, the code DRF gives the same refusal inside a view."""
    if _is_api(request):
        return _api_error(
            "permission_denied", "You do not have permission to perform this action.", 403
        )
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception=None):
    """404 `not_found`: an unknown route, or an id in the path that is not a number
    (`/api/orders/abc/`)."""
    if _is_api(request):
        return _api_error("not_found", f"There is no API endpoint at {request.path}.", 404)
    return defaults.page_not_found(request, exception)


# A 404 changes nothing, so it needs no CSRF check: without this, a POST with a session cookie
# to an unknown API path (`/api/orders/abc/cancel/`) got Django's HTML "Form expired" 403.
@csrf_exempt
def api_route_not_found(request, exception=None):
    """The JSON 404 of an `/api/` path no route matches (`config.api_urls`' last routes)."""
    return page_not_found(request, exception)


def server_error(request):
    """500 `server_error`: the error is logged with its request id; the body says nothing
    more. A database connection that failed (a restart, a failover, a terminated backend, a
    statement timeout) is no bug: 503 `database_unavailable` with Retry-After, as the API's
    views answer it (`core.api`), and `templates/503.html` for a page. Django calls this
    while it handles the exception, which `sys.exception()` reads."""
    if isinstance(sys.exception(), OperationalError | InterfaceError):
        return _database_unavailable(request)
    if _is_api(request):
        return _api_error("server_error", "Something went wrong on our side; try again.", 500)
    return defaults.server_error(request)


def _database_unavailable(request):
    error = database_unavailable_error()
    status = STATUS_BY_KIND[error.kind]
    if _is_api(request):
        response = JsonResponse(error.as_dict(), status=status)
    else:
        # Standalone like 500.html: no context, so no query.
        response = HttpResponse(loader.get_template("503.html").render(), status=status)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response
