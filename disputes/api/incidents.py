"""The incidents API (D-10, L-10): thin views over `disputes.services.outages` and
`disputes.selectors`. Support (agents and supervisors) read an incident and its progress;
supervisors enter one (with a dry run that writes nothing) and run an outage's bulk refund. Any
other signed-in user gets a 403; a refusal is the service's own (409 state, 400 input)."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import validated
from core.errors import DomainError, InvalidInput
from core.idempotency import idempotent
from core.roles import is_supervisor
from disputes.api import examples
from disputes.api.incident_serializers import (
    FIELD_CODES,
    IncidentCreateSerializer,
    IncidentSerializer,
    OutageEstimateSerializer,
)
from disputes.models import Incident
from disputes.selectors import incident_detail_queryset, outage_refunds_by_restaurant
from disputes.services.outages import incident_create, outage_dry_run, outage_refund_start
from orders.models import is_support


class IsSupport(BasePermission):
    message = "Only support agents and supervisors see incidents."
    code = "not_support"

    def has_permission(self, request, view):
        return is_support(request.user)


class IsSupervisor(BasePermission):
    message = "Only supervisors enter incidents and run an outage's bulk refund."
    code = "not_supervisor"

    def has_permission(self, request, view):
        return is_supervisor(request.user)


def _detail(incident_id: int) -> dict:
    incident = incident_detail_queryset().filter(pk=incident_id).first()
    if incident is None:
        raise DomainError("not_found", f"There is no incident {incident_id}.", kind="not_found")
    incident.refund_summary = outage_refunds_by_restaurant(incident)
    return IncidentSerializer(incident).data


class IncidentCreateApi(APIView):
    """`POST /api/support/incidents/`: a supervisor enters an outage or force majeure (L-10).
    With `dry_run: true` the answer is what an outage's bulk refund would give back now
    (`{affected_orders, total_amount, per_restaurant}`) and nothing is written; otherwise 201
    with the incident, and an outage's bulk refund starts on the worker."""

    permission_classes = [IsAuthenticated, IsSupervisor]

    @extend_schema(
        request=IncidentCreateSerializer,
        responses={200: OutageEstimateSerializer, 201: IncidentSerializer},
        summary="Enter an incident, or dry-run an outage's bulk refund",
        examples=examples.INCIDENT,
    )
    @idempotent
    def post(self, request):
        data = validated(IncidentCreateSerializer, request.data, FIELD_CODES)
        entry = {
            "actor": request.user,
            "kind": data["kind"],
            "starts_at": data["starts_at"],
            "ends_at": data["ends_at"],
            "restaurant_ids": data["restaurants"],
            "now": timezone.now(),
        }
        if data["dry_run"]:
            if data["kind"] != Incident.Kind.OUTAGE:
                raise InvalidInput("dry_run_outage_only", "Only an outage has a dry run.")
            return Response(OutageEstimateSerializer(outage_dry_run(**entry)).data)
        incident = incident_create(
            **entry, title=data["title"], description=data["description"], start_refund=True
        )
        return Response(_detail(incident.pk), status=status.HTTP_201_CREATED)


class IncidentDetailApi(APIView):
    """`GET /api/support/incidents/{id}/`: the incident and its progress."""

    permission_classes = [IsAuthenticated, IsSupport]

    @extend_schema(responses={200: IncidentSerializer}, summary="An incident")
    def get(self, request, pk: int):
        return Response(_detail(pk))


class IncidentRefundApi(APIView):
    """`POST /api/support/incidents/{id}/refund/`: run or resume an outage's bulk refund on the
    worker (202 with its progress); running it twice refunds nothing twice. A finished one is a
    409 `incident_closed`; an incident that is no outage, `not_an_outage`."""

    permission_classes = [IsAuthenticated, IsSupervisor]

    @extend_schema(
        request=None,
        responses={202: IncidentSerializer},
        summary="Run or resume an outage's bulk refund",
    )
    @idempotent
    def post(self, request, pk: int):
        outage_refund_start(incident_id=pk, actor=request.user, now=timezone.now())
        return Response(_detail(pk), status=status.HTTP_202_ACCEPTED)
