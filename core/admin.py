"""Platform records in admin, read-only, and the read-only building blocks every app's admin
shares (money and audit records are written by services only)."""

from decimal import Decimal

from django.contrib import admin
from django.db import models
from django.urls import path

from core.display import money_text, when_text
from core.models import IdempotencyRecord, Notification, OutboxMessage, TaskRun

# A read-only money field `amount` is shown through the admin attribute `amount_money`.
MONEY_DISPLAY_SUFFIX = "_money"


def money(amount: Decimal | None) -> str:
    """Money in admin as on every page (D-9): "1,234.50 USD"; "-" for None."""
    return "-" if amount is None else money_text(amount)


def moment(value) -> str:
    """A date and time in admin as on every page: "Mon 30 Nov 2026, 14:05"; "-" for None."""
    return "-" if value is None else when_text(value)


def is_money_field(field) -> bool:
    """Money is a two-place decimal that is not a percentage (D-7: `DecimalField(12, 2)`)."""
    return (
        isinstance(field, models.DecimalField)
        and field.decimal_places == 2
        and "percent" not in field.name
    )


def _money_display(name: str, label: str, ordering: str | None):
    def display(obj):
        return money(getattr(obj, name))

    display.short_description = label[:1].upper() + label[1:]
    display.admin_order_field = ordering
    return display


def _showing_money(method, swap):
    """`method` (an admin's own get_list_display, get_readonly_fields or get_fieldsets) with
    its result passed through the money swap `swap`."""

    def showing_money(self, request, *args, **kwargs):
        return swap(self, method(self, request, *args, **kwargs), request, *args, **kwargs)

    showing_money.shows_money = True
    return showing_money


class MoneyDisplayMixin:
    """Shows every money field that admin displays read-only (change lists, read-only fields,
    view-only pages, inlines) with two decimals and the currency (D-9), where Django would
    show a bare "47.76". Editable money fields stay form inputs.

    A read-only money field `amount` is swapped for `amount_money`, a display with the same
    label and ordering, in the list display and the fieldsets; every such display is a
    read-only field, so no form ever asks the model for one."""

    # Money the model computes rather than stores (`Order.amount_paid`), by attribute name.
    money_attributes: tuple[str, ...] = ()

    def _money_fields(self) -> dict[str, models.Field]:
        return {f.name: f for f in self.model._meta.concrete_fields if is_money_field(f)}

    def _money_names(self) -> dict[str, str]:
        names = [*self._money_fields(), *self.money_attributes]
        return {name: name + MONEY_DISPLAY_SUFFIX for name in names}

    def __getattr__(self, name):
        if name.endswith(MONEY_DISPLAY_SUFFIX) and not name.startswith("_"):
            original = name.removesuffix(MONEY_DISPLAY_SUFFIX)
            field = self._money_fields().get(original)
            if field is not None:
                return _money_display(original, str(field.verbose_name), original)
            if original in self.money_attributes:
                return _money_display(original, original.replace("_", " "), None)
        raise AttributeError(name)

    def __init_subclass__(cls, **kwargs):
        """An admin that overrides one of the three methods below still shows money one way:
        its override is wrapped in the same swap (which is idempotent)."""
        super().__init_subclass__(**kwargs)
        for name in ("get_list_display", "get_readonly_fields", "get_fieldsets"):
            own = cls.__dict__.get(name)
            if own is not None and not getattr(own, "shows_money", False):
                setattr(cls, name, _showing_money(own, getattr(MoneyDisplayMixin, f"_{name}")))

    def get_list_display(self, request):
        return self._get_list_display(super().get_list_display(request), request)

    def get_readonly_fields(self, request, obj=None):
        return self._get_readonly_fields(super().get_readonly_fields(request, obj), request, obj)

    def get_fieldsets(self, request, obj=None):
        return self._get_fieldsets(super().get_fieldsets(request, obj), request, obj)

    def _get_list_display(self, names, request) -> list:
        money_names = self._money_names()
        return [money_names.get(name, name) for name in names]

    def _get_readonly_fields(self, names, request, obj=None) -> list:
        names = list(names)
        return names + [name for name in self._money_names().values() if name not in names]

    def _get_fieldsets(self, fieldsets, request, obj=None) -> list:
        read_only = set(self.get_readonly_fields(request, obj))
        if not self.has_change_permission(request, obj):
            read_only = None  # a view-only page shows every field read-only
        seen: set[str] = set()
        return [
            (title, {**options, "fields": self._shown(options["fields"], read_only, seen)})
            for title, options in fieldsets
        ]

    def _shown(self, names, read_only: set[str] | None, seen: set[str]) -> list:
        """`names` (a fieldset's, maybe nested in rows) with each read-only money field swapped
        for its display, each name once, and no display beside an editable original."""
        money_names = self._money_names()
        originals = {display: field for field, display in money_names.items()}
        shown = []
        for name in names:
            if isinstance(name, (list, tuple)):
                row = self._shown(name, read_only, seen)
                if row:
                    shown.append(tuple(row))
                continue
            original = originals.get(name, name)
            if original in money_names:
                editable = read_only is not None and original not in read_only
                name = original if editable else money_names[original]
            if name not in seen:
                seen.add(name)
                shown.append(name)
        return shown


class ReadOnlyModelAdmin(MoneyDisplayMixin, admin.ModelAdmin):
    """Money and audit records: visible in admin, written only by services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTabularInline(MoneyDisplayMixin, admin.TabularInline):
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
