"""Platform records shared by every app."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class IdempotencyRecord(models.Model):
    """One `Idempotency-Key` a user sent to a mutating API endpoint, and what it answered (D-10).

    Written in the same transaction as the effect of the request it answered, so it exists
    exactly when that effect was committed; repeats get its response back. Kept 24 hours.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotency_records"
    )
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2000)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the request body.")
    response_status = models.PositiveSmallIntegerField()
    # The JSON text as first sent: jsonb would reorder its keys, and a replay must be the same.
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(help_text="When the response was stored.")

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once_per_user"),
        ]

    def __str__(self):
        return f"{self.method} {self.path} [{self.key}] {self.response_status}"


class Notification(models.Model):
    """A message to one user, listed in the app (unread count in the header) and, when
    `email` is set, sent by email after the change that caused it commits."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    title = models.CharField(max_length=160)
    body = models.TextField()
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    url = models.CharField(max_length=240, blank=True)
    email = models.BooleanField(default=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread"
            )
        ]

    def __str__(self):
        return f"{self.title} → {self.user}"


class OutboxMessage(models.Model):
    """A Celery task request written in the same transaction as the change that needs it
    (transactional outbox): handed to the broker after commit by the relay in `core.outbox`,
    and by the `outbox_relay` beat task for whatever is left, so a broker outage delays it and
    never loses it. `sent_at` is set once the broker took it."""

    task = models.CharField(max_length=200, help_text="Dotted Celery task name.")
    kwargs = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(
        default=timezone.now, help_text="Not handed to the broker before this (backoff)."
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Failed hand-overs so far.")
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    request_id = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="The web request that wrote it (X-Request-ID), published with the message.",
    )

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(
                fields=["available_at", "id"],
                condition=Q(sent_at__isnull=True),
                name="outbox_message_unsent_due",
            )
        ]

    def __str__(self):
        state = "sent" if self.sent_at else "unsent"
        return f"{self.task} #{self.pk} ({state})"


class TaskRun(models.Model):
    """The last run of each periodic task (D-8, issue 8 item 7): when it started, how long it
    took, its outcome and the counts it returned, so an operator sees in admin whether every
    timed rule is running and what it did. One row per task name, overwritten by each run
    (`core.services.task_run_record`), so the table stays as small as the beat schedule;
    `last_success_at` survives failures, telling how long a failing rule has been failing.

    Why not django-celery-results: it stores every task's result (the outbox's emails and
    refund requests too, millions of rows needing their own purge), records the return value
    but not the duration, and cannot say "failing since" without scanning that history."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    name = models.CharField(max_length=200, unique=True, help_text="Dotted Celery task name.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    counts = models.JSONField(
        default=dict, blank=True, help_text="What the run returned: rows acted on, skipped..."
    )
    error = models.TextField(blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name}: {self.outcome} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class PhotoEvidence(models.Model):
    """What every evidence photo records beside its `file` and `thumbnail` (each model gives
    those their own upload path): the photo as re-encoded by `refunds.photos`, its size and
    who uploaded it when. Abstract: refund requests (L-5.2) and escalations (L-8.1) each keep
    their own table."""

    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["created_at", "pk"]
