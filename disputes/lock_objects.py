"""Row locks for incidents: taken after any order lock (order, then request, then refund, then
incident; D-3)."""

from core.errors import DomainError
from disputes.models import Incident


def incident_for_update(incident_id: int) -> Incident:
    """Lock an incident row for a decision. Call inside a transaction. Raises DomainError
    `not_found` (404)."""
    incident = Incident.objects.select_for_update(of=("self",)).filter(pk=incident_id).first()
    if incident is None:
        raise DomainError("not_found", f"There is no incident {incident_id}.", kind="not_found")
    return incident
