from functools import cached_property

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from core.models import Notification
from disputes.models import Suspension
from orders.models import Restaurant
from orders.views import SessionCart


def lojix(request):
    return {"currency": settings.LOJIX_CURRENCY}


def site_header(request):
    """`site_header.unread_notifications`, `.is_partner`, `.is_suspended` and `.cart_items` for
    base.html."""
    return {"site_header": SiteHeader(request)}


class SiteHeader:
    """What the header shows a signed-in user: the unread notification count, whether to link
    the seller portal, and whether the account is suspended (L-8.2: the pages then explain why
    instead of showing the forms that start something new). Read lazily, in one query, only
    when a page shows the header."""

    def __init__(self, request):
        self.user = getattr(request, "user", None)
        self.session = getattr(request, "session", None)

    @cached_property
    def _facts(self) -> dict:
        if self.user is None or not self.user.is_authenticated:
            return {"unread": 0, "is_partner": False, "is_suspended": False}
        unread = (
            Notification.objects.filter(user=OuterRef("pk"), read_at__isnull=True)
            .order_by()
            .values("user")
            .annotate(count=Count("pk"))
            .values("count")
        )
        return (
            get_user_model()
            .objects.filter(pk=self.user.pk)
            .values(
                unread=Coalesce(Subquery(unread), Value(0), output_field=IntegerField()),
                is_partner=Exists(Restaurant.objects.filter(members=OuterRef("pk"))),
                is_suspended=Exists(
                    Suspension.objects.filter(buyer=OuterRef("pk"), lifted_at__isnull=True)
                ),
            )
            .get()
        )

    @property
    def unread_notifications(self) -> int:
        return self._facts["unread"]

    @property
    def is_partner(self) -> bool:
        return self._facts["is_partner"]

    @property
    def is_suspended(self) -> bool:
        return self._facts["is_suspended"]

    @cached_property
    def cart_items(self) -> int:
        """How many items the cart holds (the sum of its quantities). The cart lives in the
        session, which the authentication middleware has already read: no query."""
        if self.session is None:
            return 0
        return sum(SessionCart(self.session).lines.values())
