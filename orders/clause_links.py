"""Links to the clauses a page cites (D-9): each goes to its anchor on /policy/ and carries the
clause's text (from the version in force, cached: `selectors.policy_clause_texts`) as its
`title` and as `data-clause-text`, which `static/js/clauses.js` shows as a popover on tap or
keyboard focus. Used by the `clause` template tag and by admin."""

from collections.abc import Iterable

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from orders.selectors import policy_clause_texts


def clause_link(clause: str) -> SafeString:
    """`<a class="clause" href="/policy/#L-2.1" title="L-2.1 Customer-Initiated ...">L-2.1</a>`.

    A clause id the version in force does not have still links (to the top of the page)."""
    text = policy_clause_texts(timezone.now()).get(clause, "")
    return format_html(
        '<a class="clause" href="{}#{}" title="{}" data-clause-text="{}">{}</a>',
        reverse("policy"),
        clause,
        f"{clause} · {text}" if text else clause,
        text,
        clause,
    )


def clause_links(clauses: Iterable[str], separator: str = ", ") -> SafeString:
    """Each clause's link, joined; "" for none."""
    return format_html_join(separator, "{}", ((clause_link(clause),) for clause in clauses))
