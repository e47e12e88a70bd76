"""Platform tasks: notification emails and timed housekeeping (D-8)."""

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from core.idempotency import PURGE_BATCH_SIZE, idempotency_records_purge
from core.models import Notification


@shared_task
def purge_idempotency_records(batch_size: int = PURGE_BATCH_SIZE) -> int:
    """Delete `Idempotency-Key` records past their 24 hours (D-10). Returns how many."""
    return idempotency_records_purge(now=timezone.now(), batch_size=batch_size)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_notification_email(notification_id: int) -> bool:
    """Email a notification once; a retry after a sent email sends nothing more."""
    notification = (
        Notification.objects.select_related("user")
        .filter(pk=notification_id, emailed_at__isnull=True)
        .first()
    )
    if notification is None:
        return False
    send_mail(
        subject=f"lojix: {notification.title}",
        message=_email_body(notification),
        from_email=None,
        recipient_list=[notification.user.email],
    )
    Notification.objects.filter(pk=notification_id).update(emailed_at=timezone.now())
    return True


def _email_body(notification) -> str:
    link = (
        f"\n\n{settings.LOJIX_SITE_URL.rstrip('/')}{notification.url}" if notification.url else ""
    )
    name = notification.user.get_short_name() or notification.user.username
    return f"Hello {name},\n\n{notification.body}{link}\n\nlojix support"
