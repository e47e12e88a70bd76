from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.throttling import ScopedRateThrottle

from core.api import ApiErrorSerializer
from core.parsers import SafeJSONParser


class TokenSerializer(AuthTokenSerializer):
    """`username` and `password` in (write-only), `token` out (read-only): with the schema's
    split components a client sends the first two and reads the third."""


class TokenObtainApi(ObtainAuthToken):
    """`POST /api/auth/token/` with username and password returns `{"token": ...}`; throttled
    like the sign-in page. Send it as `Authorization: Token <token>` on every other call."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"
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
        ],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
