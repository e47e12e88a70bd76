"""Policy updates (K-UP): a supervisor drafts a new version, another supervisor approves it
(four eyes), and it is published with its effective date; buyers and partners are then told
of the change, in bounded batches on Celery. An order keeps the version it pinned when placed.
"""

import datetime as dt

from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from core.display import day_text
from core.errors import DomainError
from core.outbox import outbox_enqueue
from core.roles import User, is_supervisor
from core.services import notification, notify, notify_many
from orders import policy
from orders.models import PolicyVersion
from orders.selectors import (
    orders_placed_since_exist,
    policy_clause_texts_forget,
    policy_version_latest_effective_from,
)

ANNOUNCE_TASK = "orders.tasks.announce_policy_versions"
CLAUSES = ("K-UP",)
REASON_MAX_LENGTH = 4000


def policy_version_save_draft(*, version: PolicyVersion, actor: User) -> PolicyVersion:
    """Save a new draft, or an edit of one, written in admin's form (K-UP); whoever wrote it
    last is its drafter, so they cannot approve it. Saves in its own transaction.

    Errors: `supervisor_required` (409); `not_a_draft` (409) once it was approved."""
    _require_supervisor(actor)
    with transaction.atomic():
        if version.pk is not None:
            current = PolicyVersion.objects.select_for_update().get(pk=version.pk)
            if current.status != PolicyVersion.Status.DRAFT:
                raise DomainError("not_a_draft", "Only a draft can be changed.", clauses=CLAUSES)
        version.status, version.drafted_by = PolicyVersion.Status.DRAFT, actor
        version.save()
    return version


@transaction.atomic
def policy_version_approve(*, version_id: int, actor: User, now: dt.datetime) -> PolicyVersion:
    """A second supervisor approves a draft (K-UP, four eyes; the database refuses the drafter
    too). Takes the version's row lock.

    Errors: `not_found` (404); `supervisor_required`, `wrong_status`, `four_eyes` (409)."""
    _require_supervisor(actor)
    version = _for_update(version_id)
    _refuse_review("approve", version, actor)
    version.status = PolicyVersion.Status.APPROVED
    version.approved_by, version.approved_at = actor, now
    version.save(update_fields=["status", "approved_by", "approved_at"])
    return version


@transaction.atomic
def policy_version_reject(
    *, version_id: int, actor: User, explanation: str, now: dt.datetime
) -> PolicyVersion:
    """A supervisor rejects a draft in review (K-UP): it never applies and stays on record,
    read-only, with the reason; its drafter is told why. Takes the version's row lock.

    Errors: `not_found` (404); `supervisor_required`, `wrong_status` (409);
    `explanation_required` / `explanation_too_long` (400)."""
    _require_supervisor(actor)
    version = _for_update(version_id)
    _refuse_review("reject", version, actor)
    _refuse(_reason_refusal(explanation), kind="invalid")
    version.status = PolicyVersion.Status.REJECTED
    version.rejected_by, version.rejected_at = actor, now
    version.rejection_reason = explanation.strip()
    version.save(update_fields=["status", "rejected_by", "rejected_at", "rejection_reason"])
    if version.drafted_by_id is not None:
        notify(
            user=version.drafted_by,
            title=f"Policy version {version.label} was rejected",
            body=f"{actor.get_username()} rejected it in review: {version.rejection_reason}",
            url=reverse("admin:orders_policyversion_change", args=[version.pk]),
        )
    return version


@transaction.atomic
def policy_version_publish(
    *, version_id: int, actor: User, effective_from: dt.datetime | None, now: dt.datetime
) -> PolicyVersion:
    """A supervisor publishes an approved version from `effective_from` on (K-UP): orders
    placed from then on pin it, orders placed before keep theirs; buyers and partners are told
    once this commits (`announce_policy_versions`, through the outbox). Takes the version's row
    lock.

    Errors: `not_found` (404); `supervisor_required`, `wrong_status` (409);
    `effective_date_required`, `effective_date_past`, `effective_date_too_early` (400)."""
    _require_supervisor(actor)
    version = _for_update(version_id)
    _refuse_review("publish", version, actor)
    refusal = policy.effective_date_refusal(
        effective_from=effective_from, now=now, latest=policy_version_latest_effective_from()
    )
    if refusal is None and orders_placed_since_exist(effective_from):
        refusal = ("effective_date_past", "Orders placed since then keep their version.")
    _refuse(refusal, kind="invalid")
    version.status, version.effective_from = PolicyVersion.Status.PUBLISHED, effective_from
    version.published_by, version.published_at = actor, now
    version.save(update_fields=["status", "effective_from", "published_by", "published_at"])
    outbox_enqueue(task=ANNOUNCE_TASK, kwargs={}, now=now)
    # The "Why?" tooltips must switch to this version when it takes effect (sooner than the
    # cache's own 10 minutes).
    transaction.on_commit(policy_clause_texts_forget)
    return version


def policy_version_announce(*, version_id: int, now: dt.datetime, limit: int) -> int | None:
    """Tell the next `limit` buyers and partners (active users who are not staff), by user id,
    that a published version changes the policy (K-UP); the version's cursor moves past them
    in the same transaction, and it is marked announced after the last. Takes the version's
    row lock with SKIP LOCKED: None when another run holds it; 0 when nothing is left. Raises
    no domain error."""
    with transaction.atomic():
        version = (
            PolicyVersion.objects.select_for_update(skip_locked=True)
            .filter(pk=version_id, status=PolicyVersion.Status.PUBLISHED, announced_at=None)
            .first()
        )
        if version is None:
            return None
        users = list(
            get_user_model()
            .objects.filter(
                is_active=True, is_staff=False, pk__gt=version.announced_through_user_id
            )
            .order_by("pk")[:limit]
        )
        notify_many([_announcement(version, user) for user in users])
        if users:
            version.announced_through_user_id = users[-1].pk
        if len(users) < limit:
            version.announced_at = now
        version.save(update_fields=["announced_through_user_id", "announced_at"])
    return len(users)


def _announcement(version: PolicyVersion, user):
    when = day_text(version.effective_from)
    summary = version.summary_of_changes.strip() or "See what changed on the policy page."
    return notification(
        user=user,
        title=f"Our refund and cancellation policy changes on {when}",
        body=f"{summary}\nOrders placed before {when} keep the policy they were placed under; "
        f"the new version applies to orders placed from then on ({', '.join(CLAUSES)}). "
        "The policy page shows what changed.",
        url=f"{reverse('policy')}#version-{version.label}",
    )


def _for_update(version_id: int) -> PolicyVersion:
    version = PolicyVersion.objects.select_for_update().filter(pk=version_id).first()
    if version is None:
        raise DomainError(
            "not_found", f"There is no policy version {version_id}.", kind="not_found"
        )
    return version


def _require_supervisor(actor: User) -> None:
    if not is_supervisor(actor):
        raise DomainError(
            "supervisor_required",
            "Only a supervisor drafts, approves or publishes a policy version.",
            clauses=CLAUSES,
        )


def _reason_refusal(explanation: str) -> tuple | None:
    if not explanation.strip():
        return "explanation_required", "Say why the version is rejected; its drafter reads it."
    if len(explanation) > REASON_MAX_LENGTH:
        return "explanation_too_long", f"Keep the reason under {REASON_MAX_LENGTH} characters."
    return None


def _refuse_review(action: str, version: PolicyVersion, actor: User) -> None:
    """Raise the review rule's refusal of `actor` doing `action` to `version` (K-UP), if any."""
    _refuse(
        policy.policy_review_refusal(
            action=action,
            status=version.status,
            actor_id=actor.pk,
            drafted_by_id=version.drafted_by_id,
        )
    )


def _refuse(refusal: tuple | None, *, kind: str = "conflict") -> None:
    if refusal is not None:
        code, detail = refusal
        raise DomainError(code, detail, clauses=CLAUSES, kind=kind)
