"""The project's URLs plus the baseline of the throughput figures: a constant JSON view served
by the same server through the same middleware (tests/bench/settings.py, tests/bench/server.py)."""

from django.http import JsonResponse
from django.urls import include, path

CONSTANT_JSON_PATH = "/__bench__/constant.json"


def constant(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path(CONSTANT_JSON_PATH.lstrip("/"), constant, name="bench-constant"),
    path("", include("config.urls")),
]
