"""Notifications: every user's in-app list, with an email sent after commit; the record of
each periodic task's last run."""

import datetime as dt
import functools
import logging
import time

from django.db import DatabaseError
from django.utils import timezone

from core.models import Notification, TaskRun
from core.outbox import outbox_enqueue_many
from core.roles import User

SEND_NOTIFICATION_EMAILS = "core.tasks.send_notification_emails"
# Notifications per email task: a batch (the late sweep, D-8) asks the broker for a handful of
# tasks, not one per buyer, and a task stays well inside its time limit.
EMAIL_TASK_CHUNK = 100


def notification(*, user: User, title: str, body: str, order=None, url: str = "", email=True):
    """A notification, not yet sent: `notify` sends one, `notify_many` a batch."""
    return Notification(
        user=user, title=title, body=body, order=order, url=url or _order_url(order), email=email
    )


def notify(*, user: User, title: str, body: str, order=None, url: str = "", email: bool = True):
    """Tell a user something (D-9: every refusal, wait and decision reaches the person): listed
    at once in the app; emailed by Celery once the change that caused it commits (never for a
    change that rolls back), through the outbox (D-8), so a broker outage delays the email and
    never fails the change. Takes no lock.

    Must be called inside `transaction.atomic()` when it emails: raises
    `OutboxNotInTransaction` otherwise. Raises no domain error.
    """
    (sent,) = notify_many(
        [notification(user=user, title=title, body=body, order=order, url=url, email=email)]
    )
    return sent


def notify_many(notifications: list[Notification]) -> list[Notification]:
    """Send `notification`s as `notify` does, in one insert, with one email task per
    `EMAIL_TASK_CHUNK` of them. Same transaction rule and errors as `notify`."""
    Notification.objects.bulk_create(notifications)
    emailed = [n.pk for n in notifications if n.email and n.user.email]
    if emailed:
        outbox_enqueue_many(
            task=SEND_NOTIFICATION_EMAILS,
            kwargs_list=[
                {"notification_ids": emailed[start : start + EMAIL_TASK_CHUNK]}
                for start in range(0, len(emailed), EMAIL_TASK_CHUNK)
            ],
        )
    return notifications


def notify_restaurant(restaurant, **kwargs) -> None:
    """Tell every partner of a restaurant (D-4), as `notify` does (inside a transaction when
    it emails). Takes no lock. Raises no domain error."""
    for member in restaurant.members.all():
        notify(user=member, **kwargs)


def notifications_mark_read(*, user: User, notification_ids=None, now) -> int:
    """Mark the user's own notifications read at `now` (all unread ones, or just these ids;
    another user's ids are ignored, D-4). One conditional update, no lock. Returns how many.
    Raises no domain error."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read_at=now)


def _order_url(order) -> str:
    return order.get_absolute_url() if order is not None else ""


logger = logging.getLogger("lojix.tasks")


def task_run_record(
    *,
    name: str,
    started_at: dt.datetime,
    duration_ms: int,
    outcome: str,
    counts: dict,
    error: str = "",
) -> None:
    """Record a periodic task's latest run (D-8): one row per task name, overwritten in one
    upsert (INSERT ... ON CONFLICT), so two runs finishing at once leave one row and no error;
    `last_success_at` moves only on success. Takes no lock; runs in its own autocommit
    statement, outside the task's transactions. Raises no domain error."""
    finished_at = started_at + dt.timedelta(milliseconds=duration_ms)
    succeeded = outcome == TaskRun.Outcome.SUCCEEDED
    row = TaskRun(
        name=name,
        started_at=started_at,
        finished_at=finished_at,
        duration_ms=duration_ms,
        outcome=outcome,
        counts=counts,
        error=error,
        last_success_at=finished_at if succeeded else None,
    )
    update_fields = ["started_at", "finished_at", "duration_ms", "outcome", "counts", "error"]
    TaskRun.objects.bulk_create(
        [row],
        update_conflicts=True,
        unique_fields=["name"],
        update_fields=[*update_fields, "last_success_at"] if succeeded else update_fields,
    )


def task_run_recorded(func):
    """Decorate a periodic task's function (under `@shared_task`) so that each run is timed,
    logged as structured fields (`task`, `outcome`, `duration_ms` and the counts it returns)
    and recorded by `task_run_record` under the task's dotted name. A returned int counts as
    `{"acted_on": n}`, a dict of numbers as itself. A failing run is recorded as failed and its
    exception re-raised; a failure to record is logged and never fails the task."""
    name = f"{func.__module__}.{func.__name__}"

    @functools.wraps(func)
    def run(*args, **kwargs):
        started_at, started = timezone.now(), time.monotonic()
        try:
            result = func(*args, **kwargs)
        except Exception as error:
            _finish(name, started_at, started, TaskRun.Outcome.FAILED, {}, repr(error))
            raise
        _finish(name, started_at, started, TaskRun.Outcome.SUCCEEDED, _counts(result), "")
        return result

    return run


def _finish(name, started_at, started, outcome, counts, error) -> None:
    duration_ms = round((time.monotonic() - started) * 1000)
    fields = {"task": name, "outcome": outcome, "duration_ms": duration_ms, **counts}
    logger.info(
        "task %s %s in %d ms %s",
        name,
        outcome,
        duration_ms,
        counts or "",
        extra=fields | ({"error": error} if error else {}),
    )
    try:
        task_run_record(
            name=name,
            started_at=started_at,
            duration_ms=duration_ms,
            outcome=outcome,
            counts=counts,
            error=error,
        )
    except DatabaseError:
        logger.exception("task_run_not_recorded", extra={"task": name})


def _counts(result) -> dict:
    if isinstance(result, bool) or result is None:
        return {}
    if isinstance(result, int):
        return {"acted_on": result}
    if isinstance(result, dict):
        return {str(k): v for k, v in result.items() if isinstance(v, int | float | str)}
    return {}
