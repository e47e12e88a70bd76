"""K-UP: a supervisor rejects a draft in review with a reason; it never applies, stays on
record read-only, and its drafter is told. Every refusal changes nothing."""

import pytest
from django.utils import timezone

from core.errors import DomainError
from core.models import Notification
from orders.models import PolicyVersion
from orders.services.policy_versions import (
    policy_version_approve,
    policy_version_reject,
    policy_version_save_draft,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_supervisor(db):
    return UserFactory(username="boss2", is_staff=True, groups=["supervisor"])


def draft(actor) -> PolicyVersion:
    version = PolicyVersion(label="2", text="Version 2.", summary_of_changes="Fee 12 %.")
    return policy_version_save_draft(version=version, actor=actor)


def reject(version, actor, explanation="Contradicts L-2.1.", at=None):
    return policy_version_reject(
        version_id=version.pk, actor=actor, explanation=explanation, now=at or timezone.now()
    )


def test_a_rejected_draft_records_who_when_why_and_tells_its_drafter(
    now, supervisor, second_supervisor
):
    version = draft(supervisor)

    at = timezone.now()

    rejected = reject(version, second_supervisor, "  Contradicts L-2.1.  ", at=at)

    assert (rejected.status, rejected.rejected_by, rejected.rejection_reason) == (
        "rejected",
        second_supervisor,
        "Contradicts L-2.1.",
    )
    assert PolicyVersion.objects.get(pk=version.pk).rejected_at == at
    (told,) = Notification.objects.filter(user=supervisor)
    assert told.title == "Policy version 2 was rejected"
    with pytest.raises(DomainError) as refused:
        policy_version_approve(version_id=version.pk, actor=second_supervisor, now=timezone.now())
    assert refused.value.code == "wrong_status"
    assert PolicyVersion.objects.published().count() == 1


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("an agent", "supervisor_required"),
        ("no reason", "explanation_required"),
        ("a reason too long", "explanation_too_long"),
        ("already approved", "wrong_status"),
    ],
)
def test_refusals_change_nothing(supervisor, second_supervisor, agent, case, code):
    version = draft(supervisor)
    if case == "already approved":
        policy_version_approve(version_id=version.pk, actor=second_supervisor, now=timezone.now())
    before = PolicyVersion.objects.values().get(pk=version.pk)
    actor = agent if case == "an agent" else second_supervisor
    explanation = {"no reason": "   ", "a reason too long": "x" * 4001}.get(case, "Wrong.")

    with pytest.raises(DomainError) as refused:
        reject(version, actor, explanation)

    assert (refused.value.code, refused.value.clauses) == (code, ("K-UP",))
    assert PolicyVersion.objects.values().get(pk=version.pk) == before
    assert Notification.objects.count() == 0
