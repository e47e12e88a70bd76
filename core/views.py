"""Accounts: sign up, sign in (django-axes locks out repeated failures), sign out; every
user's notifications."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from core.forms import SignUpForm
from core.selectors import notification_list_for, notification_of
from core.services import notifications_mark_read

NOTIFICATIONS_PER_PAGE = 30


class SignInView(LoginView):
    """Sign in. A safe `next` wins; otherwise a restaurant partner lands on the seller portal
    (D-9), staff (support agents, supervisors) on admin, where they work, and everybody else on
    LOGIN_REDIRECT_URL. Too many failures: django-axes answers
    with the lockout page instead (core.signin)."""

    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        if self.request.user.restaurants.exists():
            return reverse("seller:queue")
        if self.request.user.is_staff:
            return reverse("admin:index")
        return super().get_default_redirect_url()


def signup(request):
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.first_name}! Your account is ready.")
        return redirect(_safe_next(request) or settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {"form": form, "next": _safe_next(request)})


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else ""


@login_required
def notifications(request):
    """The user's notifications, newest first. Opening the page marks nothing read: "Mark all
    read" does, and so does following one notification's link (POST `open`)."""
    if request.method == "POST":
        return _notifications_post(request)
    paginator = Paginator(notification_list_for(request.user), NOTIFICATIONS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "core/notifications.html",
        {"page": page, "notifications": page.object_list},
    )


def _notifications_post(request):
    now = timezone.now()
    if "open" in request.POST:
        notification = notification_of(request.user, _int_or_none(request.POST["open"]))
        if notification is None:
            raise Http404("No such notification.")
        notifications_mark_read(user=request.user, notification_ids=[notification.pk], now=now)
        target = notification.url
        safe = url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        return redirect(target if target and safe else "notifications")
    marked = notifications_mark_read(user=request.user, now=now)
    messages.success(
        request,
        f"Marked {marked} notification{'s' if marked != 1 else ''} read."
        if marked
        else "Nothing unread.",
    )
    return redirect("notifications")


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
