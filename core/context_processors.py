from functools import cached_property

from django.conf import settings

from core.selectors import HeaderFacts, header_facts
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
    def _facts(self) -> HeaderFacts:
        if self.user is None or not self.user.is_authenticated:
            return HeaderFacts(unread=0, is_partner=False, is_suspended=False)
        return header_facts(self.user.pk)

    @property
    def unread_notifications(self) -> int:
        return self._facts.unread

    @property
    def is_partner(self) -> bool:
        return self._facts.is_partner

    @property
    def is_suspended(self) -> bool:
        return self._facts.is_suspended

    @cached_property
    def cart_items(self) -> int:
        """How many items the cart holds (the sum of its quantities). The cart lives in the
        session, which the authentication middleware has already read: no query."""
        if self.session is None:
            return 0
        return sum(SessionCart(self.session).lines.values())
