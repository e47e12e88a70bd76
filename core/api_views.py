from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError

from core.api import ApiErrorSerializer
from core.parsers import SafeJSONParser
from core.signin import lockout_response


class TokenSerializer(AuthTokenSerializer):
    """`username` and `password` in (write-only), `token` out (read-only): with the schema's
    split components a client sends the first two and reads the third."""


class TokenObtainApi(ObtainAuthToken):
    """`POST /api/auth/token/` with username and password returns `{"token": ...}`. Send
    it as `Authorization: Token <token>` on every other call. Failures count with the sign-in
    page's and the admin's (django-axes, D-11): a locked-out username or address gets a 429
    `{"code": "locked_out", ...}` with Retry-After."""

    throttle_classes = []
    parser_classes = [SafeJSONParser]
    serializer_class = TokenSerializer

    @extend_schema(
        auth=[],  # no credentials needed: this is where a client gets them
        request=TokenSerializer,
        responses={200: TokenSerializer, 400: ApiErrorSerializer, 429: ApiErrorSerializer},
        summary="Sign in: exchange a username and password for an API token",
        examples=[
            OpenApiExample(
                "Sign in",
                value={"username": "ada", "password": "pass-word-123"},
                request_only=True,
            ),
            OpenApiExample(
                "Token",
                value={"token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"},
                response_only=True,
            ),
            OpenApiExample(
                "Wrong password",
                value={
                    "code": "invalid_credentials",
                    "detail": "Unable to log in with provided credentials.",
                },
                response_only=True,
                status_codes=["400"],
            ),
            OpenApiExample(
                "Locked out",
                value={
                    "code": "locked_out",
                    "detail": "Too many failed sign-ins. Try again after Mon 30 Nov 2026, 14:05.",
                },
                response_only=True,
                status_codes=["429"],
            ),
        ],
    )
    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            # axes flags DRF's request object, which its middleware never sees: answer here.
            if getattr(request, "axes_locked_out", False):
                return lockout_response(request._request, credentials=request.data)
            raise
