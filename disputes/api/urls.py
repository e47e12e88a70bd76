from django.urls import path

from disputes.api import views

urlpatterns = [
    path("support/incidents/", views.IncidentCreateApi.as_view(), name="api-support-incidents"),
    path(
        "support/incidents/<int:pk>/",
        views.IncidentDetailApi.as_view(),
        name="api-support-incident",
    ),
    path(
        "support/incidents/<int:pk>/refund/",
        views.IncidentRefundApi.as_view(),
        name="api-support-incident-refund",
    ),
]
