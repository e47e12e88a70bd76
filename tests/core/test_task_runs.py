"""Each periodic task's last run and outcome (D-8, issue 8 item 7): recorded by
`task_run_recorded` in one row per task, shown read-only in admin."""

import datetime as dt
import logging

import pytest
from django.urls import reverse

from core.models import TaskRun
from core.services import task_run_record, task_run_recorded
from core.tasks import outbox_relay, purge_idempotency_records
from disputes.tasks import hand_unanswered_verifications_to_support
from tests.concurrency import run_concurrently
from tests.conftest import NOW

pytestmark = pytest.mark.django_db

PURGE = "core.tasks.purge_idempotency_records"


class Boom(Exception):
    pass


@task_run_recorded
def flaky(fail: bool) -> int:
    if fail:
        raise Boom("the processor is down")
    return 3


def test_a_run_is_recorded_with_its_counts_and_duration(now):
    assert purge_idempotency_records() == 0

    run = TaskRun.objects.get()
    assert (run.name, run.outcome, run.counts, run.error) == (
        PURGE,
        "succeeded",
        {"acted_on": 0},
        "",
    )
    assert NOW <= run.started_at <= run.finished_at == run.last_success_at
    assert run.finished_at - run.started_at == dt.timedelta(milliseconds=run.duration_ms)
    assert purge_idempotency_records.name == PURGE  # the Celery name is the function's


def test_a_dict_result_is_recorded_as_its_counts(now):
    outbox_relay()
    assert TaskRun.objects.get(name="core.tasks.outbox_relay").counts == {
        "published": 0,
        "failed": 0,
    }


def test_each_task_keeps_one_row_its_last_run(now):
    purge_idempotency_records()
    now.shift(dt.timedelta(minutes=5))
    purge_idempotency_records()
    hand_unanswered_verifications_to_support()

    runs = dict(TaskRun.objects.values_list("name", "started_at"))
    assert set(runs) == {PURGE, "disputes.tasks.hand_unanswered_verifications_to_support"}
    assert runs[PURGE] >= NOW + dt.timedelta(minutes=5)


def test_a_failure_is_recorded_re_raised_and_keeps_the_last_success(now, caplog):
    name = f"{__name__}.flaky"
    assert flaky(False) == 3
    succeeded_at = TaskRun.objects.get(name=name).last_success_at
    now.shift(dt.timedelta(minutes=1))

    with caplog.at_level(logging.INFO, logger="lojix.tasks"), pytest.raises(Boom):
        flaky(True)

    run = TaskRun.objects.get(name=name)
    assert (run.outcome, run.counts, run.error) == (
        "failed", {}, "Boom('the processor is down')",
    )  # fmt: skip
    assert run.last_success_at == succeeded_at < run.started_at
    [record] = [r for r in caplog.records if r.getMessage().startswith("task ")]
    assert (record.task, record.outcome, record.error) == (
        name, "failed", "Boom('the processor is down')",
    )  # fmt: skip
    assert isinstance(record.duration_ms, int)


def test_the_log_line_carries_the_counts_as_fields(now, caplog):
    with caplog.at_level(logging.INFO, logger="lojix.tasks"):
        flaky(False)
    [record] = [r for r in caplog.records if r.getMessage().startswith("task ")]
    assert (record.task, record.outcome, record.acted_on) == (f"{__name__}.flaky", "succeeded", 3)


def test_admin_lists_each_tasks_last_run_read_only(client, agent, now):
    flaky(False)
    with pytest.raises(Boom):
        flaky(True)
    purge_idempotency_records()
    client.force_login(agent)

    changelist = client.get(reverse("admin:core_taskrun_changelist"))

    assert changelist.status_code == 200
    assert [r.name for r in changelist.context["cl"].result_list] == [PURGE, f"{__name__}.flaky"]
    page = changelist.content.decode()
    assert "Boom(&#x27;the processor is down&#x27;)" in page
    run = TaskRun.objects.get(name=PURGE)
    change_url = reverse("admin:core_taskrun_change", args=[run.pk])
    assert client.get(change_url).status_code == 200
    assert client.post(change_url, {"outcome": "failed"}).status_code == 403
    assert client.get(reverse("admin:core_taskrun_add")).status_code == 403
    assert TaskRun.objects.get(name=PURGE).outcome == "succeeded"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_finishing_at_once_leave_one_row():
    def record():
        task_run_record(
            name=PURGE, started_at=NOW, duration_ms=7, outcome="succeeded", counts={"acted_on": 1}
        )

    results = run_concurrently(record, 4)

    assert results == [None] * 4
    run = TaskRun.objects.get()
    assert (run.name, run.duration_ms, run.counts) == (PURGE, 7, {"acted_on": 1})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_beat_task_run_twice_at_once_records_one_row():
    results = run_concurrently(hand_unanswered_verifications_to_support, 2)

    assert results == [0, 0]
    assert (
        TaskRun.objects.filter(
            name="disputes.tasks.hand_unanswered_verifications_to_support", outcome="succeeded"
        ).count()
        == 1
    )
