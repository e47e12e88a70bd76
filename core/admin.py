"""Platform records in admin, read-only, and the read-only building blocks every app's admin
shares (money and audit records are written by services only)."""

from django.contrib import admin
from django.urls import path

from core.models import IdempotencyRecord, Notification, OutboxMessage, TaskRun


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Money and audit records: visible in admin, written only by services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTabularInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def search_term_without_hash(search_term: str) -> str:
    """People copy "Order #12" from pages; search for 12."""
    return search_term.replace("#", " ").strip()


def timestamp_set_filter(field: str, title: str, set_label: str, unset_label: str):
    """A list filter on whether something happened (its timestamp is set), in plain words."""

    class TimestampSetFilter(admin.SimpleListFilter):
        parameter_name = field.removesuffix("_at")

        def lookups(self, request, model_admin):
            return [("yes", set_label), ("no", unset_label)]

        def queryset(self, request, queryset):
            if self.value() in ("yes", "no"):
                return queryset.filter(**{f"{field}__isnull": self.value() == "no"})
            return queryset

    TimestampSetFilter.title = title
    return TimestampSetFilter


class DecideUrlMixin:
    """A model admin whose change page posts one decision at a time to
    `<object_id>/decide/<decision>/` (URL name `admin:<app>_<model>_decide`), handled by its
    own `decide_view(request, object_id, decision)` through the services."""

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        decide = path(
            "<path:object_id>/decide/<str:decision>/",
            self.admin_site.admin_view(self.decide_view),
            name="{}_{}_decide".format(*info),
        )
        return [decide, *super().get_urls()]


class SearchWithoutHashMixin:
    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term_without_hash(search_term))


@admin.register(Notification)
class NotificationAdmin(SearchWithoutHashMixin, ReadOnlyModelAdmin):
    """What each user was told and when: support answers "did I get told?" from here."""

    list_display = ("created_at", "user", "title", "order", "read", "emailed")
    list_filter = (
        timestamp_set_filter("read_at", "read", "Read", "Unread"),
        timestamp_set_filter("emailed_at", "emailed", "Emailed", "Not emailed"),
        "created_at",
    )
    search_fields = ("user__username", "user__email", "title", "order__id__exact")
    date_hierarchy = "created_at"
    list_select_related = ("user", "order")
    fields = (
        "user",
        "title",
        "body",
        "order",
        "url",
        "email",
        "created_at",
        "read_at",
        "emailed_at",
    )

    @admin.display(description="Read", boolean=True, ordering="read_at")
    def read(self, notification: Notification) -> bool:
        return notification.read_at is not None

    @admin.display(description="Emailed", boolean=True, ordering="emailed_at")
    def emailed(self, notification: Notification) -> bool:
        return notification.emailed_at is not None


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyModelAdmin):
    """`Idempotency-Key`s the API has seen (D-10), for debugging a client's retries. Stored
    responses may hold a user's order details, so only superusers see them (core/roles.py
    gives support no permission here)."""

    list_display = (
        "created_at",
        "user",
        "method",
        "path",
        "key",
        "response_status",
        "completed_at",
    )
    list_filter = ("method", "response_status", "created_at")
    search_fields = ("key", "path", "user__username", "user__email")
    date_hierarchy = "created_at"
    list_select_related = ("user",)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyModelAdmin):
    """Task requests waiting for the broker and those handed over (core/outbox.py): the
    "Not sent" filter's count is the backlog during a broker outage; `last_error` says why."""

    list_display = ("created_at", "task", "kwargs", "attempts", "available_at", "sent", "sent_at")
    list_filter = (timestamp_set_filter("sent_at", "sent", "Sent", "Not sent"), "task")
    # A request id (X-Request-ID, in every log line) finds the task requests it wrote.
    search_fields = ("task", "last_error", "=request_id")
    date_hierarchy = "created_at"
    fields = (
        "task",
        "kwargs",
        "request_id",
        "created_at",
        "available_at",
        "attempts",
        "sent_at",
        "last_error",
    )

    @admin.display(description="Sent", boolean=True, ordering="sent_at")
    def sent(self, message: OutboxMessage) -> bool:
        return message.sent_at is not None


@admin.register(TaskRun)
class TaskRunAdmin(ReadOnlyModelAdmin):
    """The last run of each periodic task (D-8): when, how long, its outcome and counts, and
    since when a failing one has been failing. django-celery-beat's "Periodic tasks" page
    holds the schedule and `last_run_at`; this page says what each run did."""

    list_display = (
        "name",
        "started_at",
        "duration_ms",
        "outcome",
        "counts",
        "last_success_at",
        "error_summary",
    )
    list_filter = ("outcome",)
    search_fields = ("name", "error")
    fields = (
        "name",
        "started_at",
        "finished_at",
        "duration_ms",
        "outcome",
        "counts",
        "last_success_at",
        "error",
    )

    @admin.display(description="Error")
    def error_summary(self, run: TaskRun) -> str:
        return run.error[:120]
