"""The transactional outbox: Celery task requests written in the same transaction as the change
that needs them, and the relay that hands them to the broker (docs/architecture.md, "The money
path").

A message is written by `outbox_enqueue` inside the caller's transaction, so it exists exactly
when the change does. After commit a relay publishes it at once; if the broker is down the
request still succeeds, the failure is logged and the row waits for the `outbox_relay` beat
task, which retries due rows with a capped exponential backoff. A message may be published more
than once (a relay that dies between publishing and marking it sent), so every task requested
through the outbox must be safe to run twice.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from celery import current_app
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.models import OutboxMessage
from core.request_id import TASK_HEADER, request_id_get

logger = logging.getLogger(__name__)

RELAY_BATCH_SIZE = 100
# A relay claims rows for this long before publishing them; if it dies meanwhile, the rows
# become due again after it and are published by the next relay.
CLAIM_SECONDS = 120
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 600
LAST_ERROR_MAX_CHARS = 2000


class OutboxNotInTransaction(RuntimeError):
    """`outbox_enqueue` was called in autocommit mode, where no commit would carry the row."""

    def __init__(self):
        super().__init__(
            "outbox_enqueue() must be called inside transaction.atomic(), so the message is "
            "written with the change that needs it."
        )


@dataclass(frozen=True)
class RelayResult:
    """What one relay pass did: rows handed to the broker, rows it failed on (then it stopped),
    and claimed rows it gave back unpublished after that failure."""

    published: int = 0
    failed: int = 0
    released: int = 0

    @property
    def claimed(self) -> int:
        return self.published + self.failed + self.released


def outbox_enqueue(*, task: str, kwargs: dict, now: dt.datetime | None = None) -> OutboxMessage:
    """Write a request for Celery task `task` (dotted name) with JSON `kwargs`, to be published
    once the current transaction commits; nothing is published if it rolls back.

    Must be called inside `transaction.atomic()`; raises `OutboxNotInTransaction` otherwise.
    After commit the message is published by `outbox_relay_committed`, which never raises;
    whatever it could not publish is left to the `core.tasks.outbox_relay` beat task.
    """
    (message,) = outbox_enqueue_many(task=task, kwargs_list=[kwargs], now=now)
    return message


def outbox_enqueue_many(
    *, task: str, kwargs_list: list[dict], now: dt.datetime | None = None
) -> list[OutboxMessage]:
    """`outbox_enqueue` for several requests of one task (a batch, D-8): one insert, and one
    relay after commit that claims and marks them together. Same transaction rule and
    errors."""
    if not transaction.get_connection().in_atomic_block:
        raise OutboxNotInTransaction()
    now = now or timezone.now()
    request_id = request_id_get() or ""
    messages = OutboxMessage.objects.bulk_create(
        OutboxMessage(
            task=task, kwargs=kwargs, created_at=now, available_at=now, request_id=request_id
        )
        for kwargs in kwargs_list
    )
    # One callback per call: Django drops the callbacks of a rolled-back savepoint with it, and
    # tests capture callbacks by position, so a shared per-transaction callback could be lost.
    transaction.on_commit(lambda: outbox_relay_committed(messages=messages), robust=True)
    return messages


def outbox_relay_committed(*, messages: list[OutboxMessage]) -> RelayResult:
    """Publish messages their transaction just committed, except those another relay claimed
    first.

    Never raises: a broker failure is logged as a warning and the rows stay unsent, due at
    once, for the beat relay. Runs after the commit, in one short transaction that claims the
    rows (`SKIP LOCKED`, and only while `available_at` is still the value written, which a
    beat relay's claim changes), then publishes with no lock held and marks them sent in one
    statement.
    """
    try:
        now = timezone.now()
        with transaction.atomic():
            claimed = set(
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(
                    pk__in=[m.pk for m in messages],
                    sent_at__isnull=True,
                    available_at=messages[0].available_at,
                )
                .values_list("pk", flat=True)
            )
            OutboxMessage.objects.filter(pk__in=claimed).update(
                available_at=now + dt.timedelta(seconds=CLAIM_SECONDS)
            )
        if not claimed:
            return RelayResult()
        mine = [m for m in messages if m.pk in claimed]
        result = _publish(mine, now=now, retry_at=lambda _message: now)
    except Exception:
        logger.warning(
            "outbox: relay after commit failed; the beat relay will retry", exc_info=True
        )
        return RelayResult()
    return result


def outbox_relay_due(*, now: dt.datetime, batch_size: int = RELAY_BATCH_SIZE) -> RelayResult:
    """Publish up to `batch_size` unsent messages due at `now`, oldest first, and mark them sent.

    Claims the rows with `SELECT ... FOR UPDATE SKIP LOCKED` and moves their `available_at`
    `CLAIM_SECONDS` ahead in a short transaction, so relays running at once publish each row
    once; publishes with no lock held. On the first publish failure the row's `attempts` goes
    up, it is retried after `BACKOFF_BASE_SECONDS * 2**attempts` (capped at
    `BACKOFF_CAP_SECONDS`), and the rest of the batch is given back unpublished, due at `now`.
    Broker errors do not propagate; database errors do.
    """
    with transaction.atomic():
        messages = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(sent_at__isnull=True, available_at__lte=now)
            .order_by("available_at", "pk")[:batch_size]
        )
        OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).update(
            available_at=now + dt.timedelta(seconds=CLAIM_SECONDS)
        )
    return _publish(messages, now=now, retry_at=lambda m: now + backoff(m.attempts + 1))


def backoff(attempts: int) -> dt.timedelta:
    """How long a message waits after its `attempts`-th failed hand-over: 10 s, 20 s, 40 s, ...
    up to 10 minutes."""
    seconds = BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return dt.timedelta(seconds=min(seconds, BACKOFF_CAP_SECONDS))


def outbox_publish(message: OutboxMessage) -> None:
    """Hand one message to Celery as `apply_async`, with the stable task id `outbox-<pk>` (so
    `CELERY_TASK_ALWAYS_EAGER` runs it in-process) and the id of the request that wrote it as
    the `lojix_request_id` header (`core.request_id`), so the task logs under that id whoever
    relays it. Raises the broker's error (kombu `OperationalError`) or
    `celery.exceptions.NotRegistered` for an unknown task name."""
    tasks = current_app.tasks
    if message.task not in tasks:
        # Web processes import task modules only when something imports them.
        current_app.loader.import_default_modules()
    headers = {TASK_HEADER: message.request_id} if message.request_id else {}
    tasks[message.task].apply_async(
        kwargs=message.kwargs, task_id=f"outbox-{message.pk}", headers=headers
    )


def _publish(messages: list[OutboxMessage], *, now: dt.datetime, retry_at) -> RelayResult:
    sent = []
    for index, message in enumerate(messages):
        try:
            outbox_publish(message)
        except Exception as error:
            _mark_sent(sent, now=now)
            _record_failure(message, error, retry_at=retry_at(message))
            rest = [m.pk for m in messages[index + 1 :]]
            OutboxMessage.objects.filter(pk__in=rest).update(available_at=now)
            logger.warning(
                "outbox: the broker refused a message; %d message(s) left unsent for the beat "
                "relay: %r",
                1 + len(rest),
                error,
            )
            return RelayResult(published=len(sent), failed=1, released=len(rest))
        sent.append(message.pk)
    _mark_sent(sent, now=now)
    return RelayResult(published=len(sent))


def _mark_sent(message_ids: list[int], *, now) -> None:
    if message_ids:
        OutboxMessage.objects.filter(pk__in=message_ids).update(sent_at=now)


def _record_failure(message: OutboxMessage, error: Exception, *, retry_at) -> None:
    OutboxMessage.objects.filter(pk=message.pk).update(
        attempts=F("attempts") + 1,
        available_at=retry_at,
        last_error=repr(error)[:LAST_ERROR_MAX_CHARS],
    )
