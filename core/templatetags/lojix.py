"""Template filters every page uses to show money and time one way (D-9), builtins of every
template (settings TEMPLATES): `{{ order.total|money }}` -> "23.03 USD",
`{{ order.placed_at|when }}` -> "Mon 30 Nov 2026, 14:05" (current time zone),
`{{ day|day }}` -> "Mon 30 Nov 2026"; `{% clause "L-2.1" %}` links a clause to /policy/."""

from django import template

from core.display import day_text, money_text, when_text
from orders.clause_links import clause_link, link_clauses_in

register = template.Library()


@register.filter
def money(amount) -> str:
    """Two decimals and the deployment currency; "" for None."""
    return money_text(amount)


@register.filter
def when(moment) -> str:
    return when_text(moment)


@register.filter
def day(value) -> str:
    return day_text(value)


@register.simple_tag
def clause(clause_id: str) -> str:
    """`{% clause "L-2.1" %}`: the clause's link to /policy/#L-2.1 with its text on hover, tap
    and focus (`orders.clause_links`)."""
    return clause_link(clause_id)


@register.filter(is_safe=True)
def linkclauses(text) -> str:
    """`{{ event.message|linkclauses }}`: the text escaped, its clause ids linked to /policy/."""
    return link_clauses_in("" if text is None else text if isinstance(text, str) else str(text))
