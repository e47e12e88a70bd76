from django.urls import path

from disputes.api import chargebacks, escalations, incidents

CHARGEBACK_ACTIONS = {
    "submit-evidence": chargebacks.ChargebackSubmitEvidenceApi,
    "won": chargebacks.ChargebackWonApi,
    "lost": chargebacks.ChargebackLostApi,
    "accept": chargebacks.ChargebackAcceptApi,
}

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
    path(
        "support/chargebacks/",
        chargebacks.ChargebackListCreateApi.as_view(),
        name="api-support-chargebacks",
    ),
    path(
        "support/chargebacks/<int:pk>/",
        chargebacks.ChargebackDetailApi.as_view(),
        name="api-support-chargeback",
    ),
    path(
        "support/chargebacks/<int:pk>/evidence.pdf",
        chargebacks.ChargebackEvidencePdfApi.as_view(),
        name="api-support-chargeback-evidence-pdf",
    ),
    path(
        "support/chargebacks/<int:pk>/evidence.json",
        chargebacks.ChargebackEvidenceJsonApi.as_view(),
        name="api-support-chargeback-evidence-json",
    ),
    *(
        path(
            f"support/chargebacks/<int:pk>/{action}/",
            view.as_view(),
            name=f"api-support-chargeback-{action}",
        )
        for action, view in CHARGEBACK_ACTIONS.items()
    ),
    path(
        "support/buyers/<int:user_id>/suspend/",
        chargebacks.BuyerSuspendApi.as_view(),
        name="api-support-buyer-suspend",
    ),
    path(
        "support/buyers/<int:user_id>/reinstate/",
        chargebacks.BuyerReinstateApi.as_view(),
        name="api-support-buyer-reinstate",
    ),
    path("gateway/webhooks/", chargebacks.GatewayWebhookApi.as_view(), name="api-gateway-webhooks"),
    path("support/incidents/", incidents.IncidentCreateApi.as_view(), name="api-support-incidents"),
    path(
        "support/incidents/<int:pk>/",
        incidents.IncidentDetailApi.as_view(),
        name="api-support-incident",
    ),
    path(
        "support/incidents/<int:pk>/refund/",
        incidents.IncidentRefundApi.as_view(),
        name="api-support-incident-refund",
    ),
]
