"""Links to the clauses a page cites (D-9): each goes to its anchor on /policy/ and carries the
clause's text (from the version in force, cached: `selectors.policy_clause_texts`) as its
`title` and as `data-clause-text`, which `static/js/clauses.js` shows as a popover on tap or
keyboard focus. Used by the `clause` tag and `linkclauses` filter, and by admin."""

import re
from collections.abc import Iterable

from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeData, SafeString, mark_safe

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


_CLAUSE_IN_TEXT = re.compile(r"(?<![\w#/-])([LK]-(?:\d+(?:\.\d+)?|[A-Z]{1,2}\d?))(?![\w-]|\.\d)")


def link_clauses_in(text: str) -> SafeString:
    """`text` escaped, with every clause id of the version in force in it linked
    ("Refused (L-3.3)." -> "Refused (<a class="clause" ...>L-3.3</a>)."); text already marked
    safe (HTML) is returned as it is."""
    if isinstance(text, SafeData):
        return text  # already HTML: left as written
    known = policy_clause_texts(timezone.now())

    def link(match: re.Match) -> str:
        clause = match.group(1)
        return clause_link(clause) if clause in known else clause

    return mark_safe(_CLAUSE_IN_TEXT.sub(link, str(escape(text))))  # escaped first
