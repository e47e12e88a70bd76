from django.urls import path

from disputes.api import escalations

urlpatterns = [
    path(
        "refund-requests/<int:pk>/escalate/",
        escalations.RefundRequestEscalateApi.as_view(),
        name="api-refund-request-escalate",
    ),
    path(
        "orders/<int:pk>/escalate/",
        escalations.OrderEscalateApi.as_view(),
        name="api-order-escalate",
    ),
    path("escalations/", escalations.EscalationListApi.as_view(), name="api-escalations"),
    path(
        "escalations/<int:pk>/",
        escalations.EscalationDetailApi.as_view(),
        name="api-escalation",
    ),
    path(
        "support/escalations/",
        escalations.SupportEscalationListApi.as_view(),
        name="api-support-escalations",
    ),
    path(
        "support/escalations/<int:pk>/take/",
        escalations.SupportEscalationTakeApi.as_view(),
        name="api-support-escalation-take",
    ),
    path(
        "support/escalations/<int:pk>/decide/",
        escalations.SupportEscalationDecideApi.as_view(),
        name="api-support-escalation-decide",
    ),
]
