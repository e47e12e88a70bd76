"""Platform tasks: notification emails, the outbox relay and timed housekeeping (D-8)."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from core.idempotency import PURGE_BATCH_SIZE, idempotency_records_purge
from core.models import Notification
from core.outbox import RELAY_BATCH_SIZE, outbox_relay_due
from core.services import task_run_recorded

OUTBOX_RELAY_MAX_BATCHES = 10

logger = logging.getLogger(__name__)


@shared_task
@task_run_recorded
def purge_idempotency_records(batch_size: int = PURGE_BATCH_SIZE) -> int:
    """Delete `Idempotency-Key` records past their 24 hours (D-10). Returns how many."""
    return idempotency_records_purge(now=timezone.now(), batch_size=batch_size)


@shared_task
@task_run_recorded
def outbox_relay(
    batch_size: int = RELAY_BATCH_SIZE, max_batches: int = OUTBOX_RELAY_MAX_BATCHES
) -> dict:
    """Hand due outbox messages to the broker (beat, every 30 s): up to `max_batches` batches
    of `batch_size`, stopping early at an empty or short batch or at a broker failure. Returns
    `{"published": n, "failed": n}`; safe to run several at once (rows are claimed with
    SKIP LOCKED)."""
    now = timezone.now()
    published = failed = 0
    for _batch in range(max_batches):
        result = outbox_relay_due(now=now, batch_size=batch_size)
        published, failed = published + result.published, failed + result.failed
        if result.failed or result.claimed < batch_size:
            break
    return {"published": published, "failed": failed}


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_notification_emails(notification_ids: list[int]) -> int:
    """Email each notification once; returns how many were sent now. Requested through the
    outbox, which delivers at least once: a notification with `emailed_at` set is skipped, so
    a second run (or a retry after a mail-server error part way) sends nothing twice."""
    due = Notification.objects.select_related("user").filter(
        pk__in=notification_ids, emailed_at__isnull=True
    )
    sent = 0
    for notification in due.order_by("pk"):
        send_mail(
            subject=f"lojix: {notification.title}",
            message=_email_body(notification),
            from_email=None,
            recipient_list=[notification.user.email],
        )
        Notification.objects.filter(pk=notification.pk).update(emailed_at=timezone.now())
        sent += 1
    logger.info(
        "notification emails sent",
        extra={"sent": sent, "already_sent": len(notification_ids) - sent},
    )
    return sent


def _email_body(notification) -> str:
    link = (
        f"\n\n{settings.LOJIX_SITE_URL.rstrip('/')}{notification.url}" if notification.url else ""
    )
    name = notification.user.get_short_name() or notification.user.username
    return f"Hello {name},\n\n{notification.body}{link}\n\nlojix support"
