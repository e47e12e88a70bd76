"""Read queries for the platform's own records."""

from django.db.models import QuerySet

from core.models import Notification


def notification_list_for(user) -> QuerySet[Notification]:
    """The user's notifications, newest first."""
    return Notification.objects.filter(user=user)


def notification_of(user, notification_id: int | None) -> Notification | None:
    """One of the user's notifications, or None (another user's is not found)."""
    if notification_id is None:
        return None
    return Notification.objects.filter(pk=notification_id, user=user).first()
