"""`OperationsEndpointsMiddleware`: the endpoints machines call (`/healthz`, `/readyz`,
`/metrics`), answered before the rest of the stack.

It comes first in `MIDDLEWARE`, so these requests skip host validation (a load balancer
probes a pod by its IP address, which `ALLOWED_HOSTS` rightly does not list), the HTTPS
redirect (probes and scrapes speak plain HTTP inside the network), sessions, CSRF and the
request metrics (a probe every few seconds would drown the real traffic). `/metrics` still
checks who asks (`core.metrics.metrics_allowed`).
"""

from django.http import HttpRequest, HttpResponseNotAllowed

from core.health import healthz, readyz
from core.metrics import metrics

OPERATIONS_ENDPOINTS = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics}
SAFE_METHODS = ("GET", "HEAD")


class OperationsEndpointsMiddleware:
    """Answer `GET`/`HEAD` on the paths of `OPERATIONS_ENDPOINTS` with their view (405 for any
    other method); pass every other request on."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        view = OPERATIONS_ENDPOINTS.get(request.path_info)
        if view is None:
            return self.get_response(request)
        if request.method not in SAFE_METHODS:
            return HttpResponseNotAllowed(SAFE_METHODS)
        return view(request)
