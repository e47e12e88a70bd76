"""Checks and writers shared by the refund request services."""

import datetime as dt

from django.utils import timezone

from core.errors import DomainError, InvalidInput
from orders.models import is_support
from orders.policy import explanation_error
from refunds import policy
from refunds.models import RefundMessage


def require_support(actor) -> None:
    if not is_support(actor):
        raise DomainError("forbidden", "Only support staff decide refund requests.", kind="invalid")


def require_reviewable(request) -> None:
    """Support decides a request under review or waiting on the restaurant (L-4.1, K-OV);
    anything else is refused with `not_under_review` (409)."""
    if not policy.is_reviewable(request.status):
        raise DomainError(
            "not_under_review",
            f"Request #{request.pk} is {request.get_status_display().lower()}, not under review.",
        )


def require_explanation(explanation: str) -> None:
    """The buyer reads why (L-4.1 step 4): refuses a missing or overlong explanation with
    InvalidInput `explanation_required` / `explanation_too_long` (400)."""
    code, detail = explanation_error(explanation)
    if code:
        raise InvalidInput(code, detail)


def require_text(text: str, name: str) -> None:
    if not text.strip():
        raise InvalidInput(f"{name}_required", f"Write a {name}.")
    if len(text) > 4000:
        raise InvalidInput(f"{name}_too_long", f"Keep the {name} under 4000 characters.")


def message_add(request, *, author, role, body, now) -> RefundMessage:
    return RefundMessage.objects.create(
        request=request, author=author, role=role, body=body.strip(), created_at=now
    )


def when(moment: dt.datetime) -> str:
    return f"{timezone.localtime(moment):%a %d %b, %H:%M}"
