"""Read queries for the platform's own records."""

from typing import NamedTuple

from django.db import connection
from django.db.models import Count, Min, Q, QuerySet, Sum

from core.models import Notification, OutboxMessage, TaskRun
from disputes.models import Suspension
from orders.models import Restaurant
from refunds.models import Refund


class HeaderFacts(NamedTuple):
    """What the site header shows a signed-in user (core.context_processors.SiteHeader)."""

    unread: int
    is_partner: bool
    is_suspended: bool


def header_facts(user_id: int) -> HeaderFacts:
    """The user's unread notification count, whether they belong to a restaurant, and whether
    their account is suspended (an unlifted `Suspension`, L-8.2), in one statement.

    Every page with the header runs it, so it is written once as SQL: built through the ORM,
    its three subqueries took about 3 ms of Python a page, several times what the database
    spends on it (issue 11 §1). Portable to SQLite; the tests compare it with the ORM's answer.
    """
    with connection.cursor() as cursor:
        cursor.execute(_HEADER_FACTS_SQL, [user_id, user_id, user_id])
        unread, is_partner, is_suspended = cursor.fetchone()
    return HeaderFacts(unread, bool(is_partner), bool(is_suspended))


_HEADER_FACTS_SQL = f"""
    SELECT
        (SELECT COUNT(*) FROM {Notification._meta.db_table}
            WHERE user_id = %s AND read_at IS NULL),
        EXISTS (SELECT 1 FROM {Restaurant.members.through._meta.db_table} WHERE user_id = %s),
        EXISTS (SELECT 1 FROM {Suspension._meta.db_table}
            WHERE buyer_id = %s AND lifted_at IS NULL)
"""


def notification_list_for(user) -> QuerySet[Notification]:
    """The user's notifications, newest first."""
    return Notification.objects.filter(user=user)


def notification_of(user, notification_id: int | None) -> Notification | None:
    """One of the user's notifications, or None (another user's is not found)."""
    if notification_id is None:
        return None
    return Notification.objects.filter(pk=notification_id, user=user).first()


def task_run_outcomes() -> list[dict]:
    """The last run of every periodic task (`TaskRun`, one row per task): dicts with `name`,
    `outcome`, `started_at`, `duration_ms` and `last_success_at`. One query over a table as
    small as the beat schedule."""
    return list(
        TaskRun.objects.order_by("name").values(
            "name", "outcome", "started_at", "duration_ms", "last_success_at"
        )
    )


def refund_outcomes() -> list[dict]:
    """Refunds grouped by `destination` and `status`: dicts with those two, `count` and
    `amount` (Decimal, the sum). One grouped aggregate over the whole refund table (a
    sequential scan of the table: its cost grows with the number of refunds)."""
    return list(
        Refund.objects.order_by()
        .values("destination", "status")
        .annotate(count=Count("pk"), amount=Sum("amount"))
        .order_by("destination", "status")
    )


def outbox_backlog() -> dict:
    """The outbox messages not yet handed to the broker: `{"unsent": n, "failing": n (unsent
    after at least one failed hand-over), "oldest_created_at": datetime | None}`. One aggregate
    over the unsent rows only (the partial index `outbox_message_unsent_due` covers them), so
    its cost follows the backlog, not the table."""
    return OutboxMessage.objects.filter(sent_at__isnull=True).aggregate(
        unsent=Count("pk"),
        failing=Count("pk", filter=Q(attempts__gt=0)),
        oldest_created_at=Min("created_at"),
    )
