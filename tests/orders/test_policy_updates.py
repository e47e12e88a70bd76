"""Policy updates (K-UP) on PostgreSQL: a supervisor drafts a version, another approves it (four
eyes: never the drafter), a supervisor publishes it with an effective date; buyers and partners
are told in bounded batches; `/policy/` shows what changed; orders keep their pinned version."""

import datetime as dt
import re
from decimal import Decimal as D

import pytest
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config.celery import app as celery_app
from core.errors import DomainError
from core.models import Notification, OutboxMessage
from orders.models import PolicyVersion
from orders.selectors import (
    CLAUSE_TEXTS_CACHE_KEY,
    policy_clause_texts,
    policy_clause_texts_forget,
)
from orders.services.policy_versions import (
    policy_version_approve,
    policy_version_publish,
    policy_version_save_draft,
)
from orders.tasks import announce_policy_versions
from tests.concurrency import run_concurrently
from tests.conftest import place_order, wait_for
from tests.factories import UserFactory
from tests.orders.test_admin import _policy_form_data

pytestmark = pytest.mark.django_db

TITLE = "Our refund and cancellation policy changes on"


@pytest.fixture
def second_supervisor(db):
    return UserFactory(username="boss2", is_staff=True, groups=["supervisor"])


def draft(actor, **fields) -> PolicyVersion:
    fields = {"label": "2", "text": "Version 2.", "summary_of_changes": "Half refund at 40 %."}
    return policy_version_save_draft(
        version=PolicyVersion(**fields | {"late_partial_percent": D("40")}), actor=actor
    )


def approved(drafter, approver) -> PolicyVersion:
    version = draft(drafter)
    return policy_version_approve(version_id=version.pk, actor=approver, now=timezone.now())


def publish(version, actor, effective_from):
    return policy_version_publish(
        version_id=version.pk, actor=actor, effective_from=effective_from, now=timezone.now()
    )


def test_a_draft_is_approved_by_another_supervisor_then_published(
    now, supervisor, second_supervisor
):
    version = draft(supervisor)
    assert (version.status, version.drafted_by) == ("draft", supervisor)
    assert PolicyVersion.objects.in_force(timezone.now()).label == "1"  # a draft never applies

    approved_ = policy_version_approve(
        version_id=version.pk, actor=second_supervisor, now=timezone.now()
    )
    assert (approved_.status, approved_.approved_by) == ("approved", second_supervisor)
    assert PolicyVersion.objects.in_force(timezone.now() + dt.timedelta(days=9)).label == "1"

    starts = timezone.now() + dt.timedelta(days=7)
    published = publish(version, supervisor, starts)

    assert (published.status, published.effective_from, published.published_by) == (
        "published",
        starts,
        supervisor,
    )
    assert PolicyVersion.objects.in_force(starts - dt.timedelta(seconds=1)).label == "1"
    assert PolicyVersion.objects.in_force(starts).label == "2"
    assert OutboxMessage.objects.filter(task="orders.tasks.announce_policy_versions").count() == 1


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("the drafter approves", "four_eyes"),
        ("an agent approves", "supervisor_required"),
        ("a buyer approves", "supervisor_required"),
    ],
)
def test_four_eyes_the_drafter_cannot_approve(supervisor, agent, buyer, case, code):
    version = draft(supervisor)
    actor = {"the drafter approves": supervisor, "an agent approves": agent}.get(case, buyer)

    with pytest.raises(DomainError) as refused:
        policy_version_approve(version_id=version.pk, actor=actor, now=timezone.now())

    assert (refused.value.code, refused.value.clauses) == (code, ("K-UP",))
    version.refresh_from_db()
    assert (version.status, version.approved_by) == ("draft", None)


def test_whoever_edits_a_draft_last_is_its_drafter(supervisor, second_supervisor):
    version = draft(supervisor)
    version.text = "Version 2, reworded."
    policy_version_save_draft(version=version, actor=second_supervisor)

    with pytest.raises(DomainError) as refused:
        policy_version_approve(version_id=version.pk, actor=second_supervisor, now=timezone.now())
    assert refused.value.code == "four_eyes"
    assert policy_version_approve(version_id=version.pk, actor=supervisor, now=timezone.now())


def test_the_database_refuses_an_approval_by_the_drafter(supervisor):
    version = draft(supervisor)
    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyVersion.objects.filter(pk=version.pk).update(approved_by=supervisor)


def test_an_approved_version_is_no_longer_edited(supervisor, second_supervisor):
    version = approved(supervisor, second_supervisor)
    version.text = "Changed after approval"
    with pytest.raises(DomainError) as refused:
        policy_version_save_draft(version=version, actor=supervisor)
    assert refused.value.code == "not_a_draft"
    assert PolicyVersion.objects.get(pk=version.pk).text == "Version 2."


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("no date", "effective_date_required"),
        ("in the past", "effective_date_past"),
        ("before version 1", "effective_date_past"),
        ("a draft", "wrong_status"),
    ],
)
def test_refused_publications_change_nothing(now, supervisor, second_supervisor, case, code):
    version = draft(supervisor) if case == "a draft" else approved(supervisor, second_supervisor)
    effective_from = {
        "no date": None,
        "in the past": timezone.now() - dt.timedelta(hours=1),
        "before version 1": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    }.get(case, timezone.now() + dt.timedelta(days=1))

    with pytest.raises(DomainError) as refused:
        publish(version, supervisor, effective_from)

    assert refused.value.code == code
    version.refresh_from_db()
    assert version.status != "published"
    assert not OutboxMessage.objects.filter(task="orders.tasks.announce_policy_versions").exists()


def test_orders_keep_their_pinned_version(now, buyer, restaurant, supervisor, second_supervisor):
    before = place_order(buyer, restaurant)
    version = approved(supervisor, second_supervisor)
    publish(version, supervisor, timezone.now() + dt.timedelta(hours=1))
    between = place_order(buyer, restaurant)

    now.shift(dt.timedelta(hours=2))
    after = place_order(buyer, restaurant)

    pinned = {o.pk: o.policy_version.label for o in (before, between, after)}
    assert pinned == {before.pk: "1", between.pk: "1", after.pk: "2"}
    before.refresh_from_db()
    assert (before.policy_version.label, before.policy_version.late_partial_percent) == (
        "1",
        D("50.00"),
    )
    assert after.policy_version.late_partial_percent == D("40.00")


def test_buyers_and_partners_are_told_once_in_bounded_batches(
    now, buyer, other_buyer, partner, other_partner, agent, supervisor, second_supervisor
):
    version = approved(supervisor, second_supervisor)
    publish(version, supervisor, timezone.now() + dt.timedelta(days=7))

    first = announce_policy_versions(batch_size=2, max_batches=1)
    second = announce_policy_versions(batch_size=2, max_batches=5)
    third = announce_policy_versions(batch_size=2, max_batches=5)

    assert (first, second, third) == (
        {"versions": 1, "told": 2},
        {"versions": 1, "told": 2},
        {"versions": 0, "told": 0},
    )
    told = Notification.objects.filter(title__startswith=TITLE)
    assert sorted(n.user.username for n in told) == sorted(
        [buyer.username, other_buyer.username, partner.username, other_partner.username]
    )  # staff are not told
    notice = told.first()
    assert "Half refund at 40 %." in notice.body
    assert "keep the policy they were placed under" in notice.body
    assert notice.url == "/policy/#version-2"
    version.refresh_from_db()
    assert version.announced_at is not None


def test_the_policy_page_shows_what_changed_and_hides_drafts(
    now, client, supervisor, second_supervisor
):
    version = approved(supervisor, second_supervisor)
    publish(version, supervisor, timezone.now() + dt.timedelta(days=7))
    policy_version_save_draft(
        version=PolicyVersion(label="3", text="Secret draft", summary_of_changes="Not yet"),
        actor=supervisor,
    )

    page = client.get(reverse("policy")).content.decode()

    row = re.search(r'<tr id="version-2">.*?</tr>', page, re.S).group(0)
    assert "upcoming" in row
    assert "Half refund at 40 %." in row
    assert "Late partial percent: 50.00 → 40.00" in row
    assert 'id="version-3"' not in page
    assert "Not yet" not in page


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_announcement_runs_at_once_tell_each_user_once(
    monkeypatch, supervisor, second_supervisor
):
    """The publication's own task request waits in Redis (no worker, no eager run), so the two
    runs here are the only ones; the queue is purged afterwards."""
    for number in range(7):
        UserFactory(username=f"diner{number}")
    version = approved(supervisor, second_supervisor)
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    try:
        publish(version, supervisor, timezone.now() + dt.timedelta(days=7))
        assert not Notification.objects.filter(title__startswith=TITLE).exists()

        results = run_concurrently(lambda: announce_policy_versions(batch_size=3), 2)
    finally:
        celery_app.control.purge()

    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(r["told"] for r in results) == 7
    told = Notification.objects.filter(title__startswith=TITLE)
    assert told.count() == len(set(told.values_list("user_id", flat=True))) == 7


# -- admin: who may do what, as a table ---------------------------------------------------------


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("role", "action", "status", "after", "message"),
    [
        ("agent", "approve", 403, "draft", None),
        ("agent", "publish", 403, "approved", None),
        ("drafter", "approve", 302, "draft", "error"),
        ("second_supervisor", "approve", 302, "approved", "success"),
        ("drafter", "publish", 302, "published", "success"),
        ("second_supervisor", "publish", 302, "published", "success"),
    ],
)
def test_admin_review_actions_by_role(
    now, supervisor, second_supervisor, agent, role, action, status, after, message
):
    version = draft(supervisor) if action == "approve" else approved(supervisor, second_supervisor)
    user = {"agent": agent, "drafter": supervisor, "second_supervisor": second_supervisor}[role]
    starts = timezone.localtime() + dt.timedelta(days=3)

    response = client_for(user).post(
        reverse(f"admin:orders_policyversion_{action}", args=[version.pk]),
        {"effective_from": starts.strftime("%Y-%m-%d %H:%M")},
    )

    assert response.status_code == status
    version.refresh_from_db()
    assert version.status == after
    levels = [m.level_tag for m in get_messages(response.wsgi_request)]
    assert levels == ([message] if message else [])


def test_admin_offers_approval_to_another_supervisor_only(supervisor, second_supervisor):
    version = draft(supervisor)
    url = reverse("admin:orders_policyversion_change", args=[version.pk])

    mine = client_for(supervisor).get(url).content.decode()
    theirs = client_for(second_supervisor).get(url).content.decode()

    assert 'id="policy-approve"' not in mine
    assert "another supervisor approves it" in mine
    assert 'id="policy-approve"' in theirs


def test_admin_add_form_drafts_as_the_signed_in_supervisor(supervisor):
    response = client_for(supervisor).post(
        reverse("admin:orders_policyversion_add"), _policy_form_data()
    )

    assert response.status_code == 302
    version = PolicyVersion.objects.get(label="2")
    assert (version.status, version.drafted_by) == ("draft", supervisor)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_publishing_tells_everyone_through_a_real_worker(worker, supervisor, second_supervisor):
    """K-UP on Celery: the publication's outbox row reaches a real worker over Redis, which
    tells every buyer and partner once."""
    diners = [UserFactory(username=f"diner{number}") for number in range(5)]
    version = approved(supervisor, second_supervisor)

    publish(version, supervisor, timezone.now() + dt.timedelta(days=7))

    assert wait_for(
        lambda: PolicyVersion.objects.get(pk=version.pk).announced_at is not None, seconds=30
    )
    told = Notification.objects.filter(title__startswith=TITLE)
    assert sorted(told.values_list("user__username", flat=True)) == sorted(
        d.username for d in diners
    )


def test_the_clause_texts_of_the_why_links_follow_the_version_in_force(
    now, supervisor, second_supervisor, django_capture_on_commit_callbacks
):
    assert policy_clause_texts(timezone.now())["L-8.1"].startswith("Escalation Process. If you")
    text = "Refund Policy\n8. Disputes\n8.1 Escalation\nAsk a supervisor within 30 days."
    version = policy_version_save_draft(
        version=PolicyVersion(label="2", text=text, summary_of_changes="Shorter."), actor=supervisor
    )
    policy_version_approve(version_id=version.pk, actor=second_supervisor, now=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        publish(version, supervisor, timezone.now() + dt.timedelta(days=7))

    # Publishing dropped the cached texts; version 1 stays in force until version 2's date.
    assert cache.get(CLAUSE_TEXTS_CACHE_KEY) is None
    assert policy_clause_texts(timezone.now())["L-8.1"].startswith("Escalation Process. If you")
    now.shift(dt.timedelta(days=8))
    policy_clause_texts_forget()  # what the cache's timeout (at most until that date) does
    texts = policy_clause_texts(timezone.now())
    assert texts["L-8.1"] == "Escalation. Ask a supervisor within 30 days."
    assert "K-B1" not in texts
