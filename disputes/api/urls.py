from django.urls import path

from disputes.api import views

CHARGEBACK_ACTIONS = {
    "submit-evidence": views.ChargebackSubmitEvidenceApi,
    "won": views.ChargebackWonApi,
    "lost": views.ChargebackLostApi,
    "accept": views.ChargebackAcceptApi,
}

urlpatterns = [
    path(
        "support/chargebacks/",
        views.ChargebackListCreateApi.as_view(),
        name="api-support-chargebacks",
    ),
    path(
        "support/chargebacks/<int:pk>/",
        views.ChargebackDetailApi.as_view(),
        name="api-support-chargeback",
    ),
    path(
        "support/chargebacks/<int:pk>/evidence.pdf",
        views.ChargebackEvidencePdfApi.as_view(),
        name="api-support-chargeback-evidence-pdf",
    ),
    path(
        "support/chargebacks/<int:pk>/evidence.json",
        views.ChargebackEvidenceJsonApi.as_view(),
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
        views.BuyerSuspendApi.as_view(),
        name="api-support-buyer-suspend",
    ),
    path(
        "support/buyers/<int:user_id>/reinstate/",
        views.BuyerReinstateApi.as_view(),
        name="api-support-buyer-reinstate",
    ),
    path("gateway/webhooks/", views.GatewayWebhookApi.as_view(), name="api-gateway-webhooks"),
]
