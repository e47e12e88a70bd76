"""Notifications: every user's in-app list, with an email sent after commit."""

from core.models import Notification
from core.outbox import outbox_enqueue
from core.roles import User

SEND_NOTIFICATION_EMAIL = "core.tasks.send_notification_email"


def notify(*, user: User, title: str, body: str, order=None, url: str = "", email: bool = True):
    """Tell a user something (D-9: every refusal, wait and decision reaches the person): listed
    at once in the app; emailed by Celery once the change that caused it commits (never for a
    change that rolls back), through the outbox (D-8), so a broker outage delays the email and
    never fails the change. Takes no lock.

    Must be called inside `transaction.atomic()` when it emails: raises
    `OutboxNotInTransaction` otherwise. Raises no domain error.
    """
    notification = Notification.objects.create(
        user=user, title=title, body=body, order=order, url=url or _order_url(order), email=email
    )
    if email and user.email:
        outbox_enqueue(task=SEND_NOTIFICATION_EMAIL, kwargs={"notification_id": notification.pk})
    return notification


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
