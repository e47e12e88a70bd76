"""The project's URLs plus the baseline of the throughput figures: a minimal view served
through the same middleware stack (installed by tests/bench/run.py with override_settings)."""

from django.http import HttpResponse
from django.urls import include, path

MINIMAL_PATH = "/__bench__/minimal/"


def minimal(request):
    return HttpResponse("ok")


urlpatterns = [
    path(MINIMAL_PATH.strip("/") + "/", minimal, name="bench-minimal"),
    path("", include("config.urls")),
]
