"""Incidents (L-10): outages, allergen investigations and force majeure."""

import datetime as dt

from disputes.models import Incident


def incident_open_allergen(*, request, now: dt.datetime) -> Incident:
    """An allergic reaction opens an allergen investigation against the restaurant (L-10).
    Call inside the transaction that submits the request, holding the order's row lock. Raises
    no domain error."""
    order = request.order
    incident = Incident.objects.create(
        kind=Incident.Kind.ALLERGEN,
        title=f"Allergic reaction after order #{order.pk} at {order.restaurant.name}",
        description=request.description,
        order=order,
        refund_request=request,
        created_at=now,
    )
    incident.restaurants.add(order.restaurant)
    return incident
