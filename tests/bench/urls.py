"""The project's URLs plus what the throughput figures are measured against
(tests/bench/settings.py, tests/bench/server.py), served by the same server through the same
middleware:

- the baseline of every ratio, a constant JSON view;
- the floors of an authenticated request, constant answers behind the checks every API
  operation and every signed-in page pays before its own work: DRF's dispatch with the token
  check and permission, and the session and user a page reads.
"""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

CONSTANT_JSON_PATH = "/__bench__/constant.json"
TOKEN_FLOOR_PATH = "/__bench__/token.json"
SESSION_FLOOR_PATH = "/__bench__/session.json"


def constant(request):
    return JsonResponse({"status": "ok"})


class TokenFloor(APIView):
    """The project's API defaults (token or session authentication, signed in required)."""

    def get(self, request):
        return Response({"status": "ok"})


@login_required
def session_floor(request):
    return JsonResponse({"user": request.user.pk})


urlpatterns = [
    path(CONSTANT_JSON_PATH.lstrip("/"), constant, name="bench-constant"),
    path(TOKEN_FLOOR_PATH.lstrip("/"), TokenFloor.as_view(), name="bench-token-floor"),
    path(SESSION_FLOOR_PATH.lstrip("/"), session_floor, name="bench-session-floor"),
    path("", include("config.urls")),
]
