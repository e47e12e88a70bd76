"""Account forms: sign up, and sign in with a throttle on failed attempts (D-11)."""

import hashlib

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.cache import cache

# At most this many failed sign-ins per username and IP address within the window.
LOGIN_FAILURE_LIMIT = 10
LOGIN_FAILURE_WINDOW_SECONDS = 300


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=True)
    first_name = forms.CharField(label="First name", max_length=150, required=True)

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email", "first_name")

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists.")
        return email


class LoginThrottle:
    """Failed sign-ins counted in the cache per username and IP address, over a fixed window
    that starts at the first failure."""

    def __init__(self, username: str, ip: str):
        digest = hashlib.sha256(f"{username.strip().lower()}|{ip}".encode()).hexdigest()
        self.key = f"login-failures:{digest}"

    def is_blocked(self) -> bool:
        return (cache.get(self.key) or 0) >= LOGIN_FAILURE_LIMIT

    def record_failure(self) -> None:
        cache.add(self.key, 0, timeout=LOGIN_FAILURE_WINDOW_SECONDS)
        try:
            cache.incr(self.key)
        except ValueError:  # the window ended between add and incr
            cache.set(self.key, 1, timeout=LOGIN_FAILURE_WINDOW_SECONDS)

    def reset(self) -> None:
        cache.delete(self.key)


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = AuthenticationForm.error_messages | {
        "throttled": (
            "Too many failed sign-ins for this account from your network. "
            "Wait %(minutes)s minutes and try again."
        ),
    }

    def clean(self):
        ip = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
        throttle = LoginThrottle(self.cleaned_data.get("username") or "", ip)
        if throttle.is_blocked():
            raise forms.ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"minutes": LOGIN_FAILURE_WINDOW_SECONDS // 60},
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            throttle.record_failure()
            raise
        throttle.reset()
        return cleaned
