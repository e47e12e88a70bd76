"""The refund request's timeline: every step written with who, when, from, to and the clauses."""

from core.fsm import apply_transition
from refunds.models import RefundRequestEvent


def refund_request_event_record(
    request, *, name, from_status, actor, role, message, clauses=(), at
) -> RefundRequestEvent:
    """Add a line to the request's timeline (the request's current status is its `to`)."""
    return RefundRequestEvent.objects.create(
        request=request,
        name=name,
        from_status=from_status,
        to_status=request.status,
        actor=actor,
        actor_role=role,
        message=message,
        clauses=list(clauses),
        created_at=at,
    )


def refund_request_step(
    request, transition, *, actor, role, message, clauses=(), at, **changes
) -> None:
    """Move a request along its state machine and put the step on its timeline.

    The caller holds the request's row lock; `changes` are saved with the new status.
    """
    from_status = request.status
    apply_transition(request, transition, at=at, **changes)
    refund_request_event_record(
        request,
        name=transition.__name__,
        from_status=from_status,
        actor=actor,
        role=role,
        message=message,
        clauses=clauses,
        at=at,
    )
