"""Checks and writers shared by the refund request services."""

from core.errors import DomainError, InvalidInput
from core.roles import User
from orders.models import is_support
from orders.policy import explanation_error
from refunds import policy
from refunds.models import RefundMessage, RefundRequest


def require_support(actor: User) -> None:
    """Only support staff (agents and supervisors, D-4) decide refund requests (L-4.1): refuses
    anyone else with `forbidden` (400). Takes no lock; call after locking the request."""
    if not is_support(actor):
        raise DomainError("forbidden", "Only support staff decide refund requests.", kind="invalid")


def require_reviewable(request) -> None:
    """Support decides a request under review or waiting on the restaurant (L-4.1, K-OV);
    anything else is refused with `not_under_review` (409). Call while holding the request's row
    lock, so the status cannot change before the decision."""
    if not policy.is_reviewable(request.status):
        raise DomainError(
            "not_under_review",
            f"Request #{request.pk} is {request.get_status_display().lower()}, not under review.",
        )


def require_under_review(request) -> None:
    """Support asks a question (of the buyer or the restaurant) only of a request under review:
    one question waits at a time, so a request already waiting on the restaurant is refused
    with `not_under_review` (409) like any other, where the transition would fail. Call while
    holding the request's row lock."""
    if request.status != RefundRequest.Status.UNDER_REVIEW:
        raise DomainError(
            "not_under_review",
            f"Request #{request.pk} is {request.get_status_display().lower()}, not under review.",
        )


def require_explanation(explanation: str) -> None:
    """The buyer reads why (L-4.1 step 4): refuses a missing or overlong explanation with
    InvalidInput `explanation_required` / `explanation_too_long` (400). Takes no lock."""
    code, detail = explanation_error(explanation)
    if code:
        raise InvalidInput(code, detail)


def require_text(text: str, name: str) -> None:
    """A message, question or note on a request (L-4.1) is written and at most 4000 characters:
    refuses with InvalidInput `<name>_required` / `<name>_too_long` (400). Takes no lock."""
    if not text.strip():
        raise InvalidInput(f"{name}_required", f"Write a {name}.")
    if len(text) > 4000:
        raise InvalidInput(f"{name}_too_long", f"Keep the {name} under 4000 characters.")


def message_add(request, *, author: User, role, body, now) -> RefundMessage:
    """Add a message to the request's conversation (L-4.1: questions, answers, the restaurant's
    verification), written by `author` at `now`. Call while holding the request's row lock.
    Raises no domain error."""
    return RefundMessage.objects.create(
        request=request, author=author, role=role, body=body.strip(), created_at=now
    )
