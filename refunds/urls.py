"""Buyer refund pages (D-9), mounted at /refunds/."""

from django.urls import path

from refunds import views

app_name = "refunds"

urlpatterns = [
    path("", views.request_list, name="list"),
    path("new/<int:order_id>/", views.request_new, name="new"),
    path("<int:request_id>/", views.request_detail, name="request"),
    path("<int:request_id>/reply/", views.request_reply, name="reply"),
    path("evidence/<int:evidence_id>/", views.evidence, name="evidence"),
    path("evidence/held/<int:photo_id>/", views.held_photo, name="held_photo"),
]
