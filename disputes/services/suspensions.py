"""Account suspensions (L-8.2, D-4): a supervisor suspends a buyer, after a chargeback or on its
own, and reinstates them; every buyer action that starts something new checks
`disputes.guards.buyer_must_not_be_suspended`."""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import DomainError, InvalidInput
from core.roles import User, is_supervisor
from core.services import notify
from disputes.lock_objects import suspension_active_for_update
from disputes.models import Chargeback, Suspension


def _require_supervisor(actor: User) -> None:
    if not is_supervisor(actor):
        raise DomainError(
            "supervisor_required",
            "Only a supervisor suspends or reinstates an account.",
            kind="forbidden",
        )


def _buyer(buyer_id: int) -> User:
    buyer = get_user_model().objects.filter(pk=buyer_id).first()
    if buyer is None:
        raise DomainError("not_found", f"There is no user {buyer_id}.", kind="not_found")
    if buyer.is_staff or buyer.is_superuser:
        raise InvalidInput("not_a_buyer", "Staff accounts are not suspended this way.")
    return buyer


@transaction.atomic
def buyer_suspend(
    *,
    buyer_id: int,
    actor: User,
    reason: str,
    suspected_fraud: bool = False,
    chargeback_id: int | None = None,
) -> Suspension:
    """Suspend a buyer (L-8.2): they keep reading their orders, requests and credit but start
    nothing new until reinstated; they are told why. One active suspension per buyer, by
    constraint (two supervisors at once suspend once).

    Errors: `supervisor_required` (403); `not_found` (404); 400: `not_a_buyer`,
    `reason_required`, `reason_too_long`, `chargeback_not_of_buyer`; `already_suspended`
    (409)."""
    _require_supervisor(actor)
    buyer = _buyer(buyer_id)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("reason_required", "Give the reason the buyer will read.")
    if len(reason) > 2000:
        raise InvalidInput("reason_too_long", "Keep the reason under 2000 characters.")
    chargeback = None
    if chargeback_id is not None:
        chargeback = Chargeback.objects.filter(pk=chargeback_id, order__buyer=buyer).first()
        if chargeback is None:
            raise InvalidInput(
                "chargeback_not_of_buyer", f"Chargeback {chargeback_id} is not on their orders."
            )
    try:
        with transaction.atomic():
            suspension = Suspension.objects.create(
                buyer=buyer,
                reason=reason,
                chargeback=chargeback,
                suspected_fraud=bool(suspected_fraud),
                created_by=actor,
                created_at=timezone.now(),
            )
    except IntegrityError as error:
        raise DomainError("already_suspended", f"{buyer} is already suspended.") from error
    notify(
        user=buyer,
        title="Your account is suspended",
        body=(
            f"{reason} You can still see your orders, requests and credit, but you cannot place "
            "orders, cancel, ask for refunds or escalate until support reinstates you (L-8.2)."
        ),
        url="/orders/",
    )
    return suspension


@transaction.atomic
def buyer_reinstate(*, buyer_id: int, actor: User, note: str = "") -> Suspension:
    """Lift the buyer's suspension (L-8.2); they may act again and are told. Takes the
    suspension's row lock.

    Errors: `supervisor_required` (403); `not_found` (404); `not_suspended` (409)."""
    _require_supervisor(actor)
    buyer = _buyer(buyer_id)
    suspension = suspension_active_for_update(buyer.pk)
    if suspension is None:
        raise DomainError("not_suspended", f"{buyer} is not suspended.")
    suspension.lifted_at = timezone.now()
    suspension.lifted_by = actor
    suspension.lift_note = (note or "").strip()[:2000]
    suspension.save(update_fields=["lifted_at", "lifted_by", "lift_note"])
    notify(
        user=buyer,
        title="Your account is active again",
        body="Support reinstated your account: you can order and ask for refunds again.",
        url="/orders/",
    )
    return suspension
