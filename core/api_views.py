from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.throttling import ScopedRateThrottle


class TokenObtainApi(ObtainAuthToken):
    """`POST /api/auth/token/` with username and password returns `{"token": ...}`; throttled
    like the sign-in page."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"
