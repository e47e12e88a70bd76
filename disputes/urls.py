"""Buyer dispute pages (D-9), mounted at /disputes/."""

from django.urls import path

from disputes import views

app_name = "disputes"

urlpatterns = [
    path("escalations/", views.escalation_list, name="escalations"),
    path("escalations/<int:escalation_id>/", views.escalation_detail, name="escalation"),
    path(
        "refund-requests/<int:request_id>/escalate/",
        views.escalate_refund_request,
        name="escalate-request",
    ),
    path("orders/<int:order_id>/escalate/", views.escalate_order, name="escalate-order"),
    path("evidence/<int:evidence_id>/", views.evidence, name="evidence"),
]
