"""Incident rules (L-10). Pure: plain values in, a decision with its clause out."""

import datetime as dt
from dataclasses import dataclass

OUTAGE = "outage"
FORCE_MAJEURE = "force_majeure"
ALLERGEN = "allergen"
CLAUSES = ("L-10",)


@dataclass(frozen=True)
class IncidentEntry:
    """Whether a supervisor may enter an incident of `kind` over this window now, and if not
    why (`code`, `detail`)."""

    allowed: bool
    code: str = ""
    detail: str = ""
    clauses: tuple[str, ...] = CLAUSES


def incident_entry(
    *, kind: str, starts_at: dt.datetime | None, ends_at: dt.datetime | None, now: dt.datetime
) -> IncidentEntry:
    """L-10: an outage is entered once it is over (its window, start and end, in the past), so
    its affected orders (placed in the window) are all known when they are refunded; force
    majeure needs a start and may be ongoing (no end). An allergen investigation is opened by an
    allergic-reaction refund request, never entered by hand."""
    if kind not in (OUTAGE, FORCE_MAJEURE):
        return IncidentEntry(
            False,
            "incident_kind_not_entered",
            "An allergen investigation is opened by an allergic-reaction refund request.",
        )
    if starts_at is None:
        return IncidentEntry(False, "window_required", "Say when the incident started.")
    if kind == OUTAGE and ends_at is None:
        return IncidentEntry(False, "window_required", "Say when the outage ended.")
    if ends_at is not None and ends_at <= starts_at:
        return IncidentEntry(False, "window_invalid", "The window must end after it starts.")
    if kind == OUTAGE and ends_at > now:
        return IncidentEntry(
            False,
            "outage_not_over",
            "An outage is refunded once it is over: its end must not be in the future.",
        )
    return IncidentEntry(True)
