"""The seller portal (D-9): restaurant partners' pages, mounted at /seller/."""

from django.urls import path

from orders import seller_views

app_name = "seller"

urlpatterns = [
    path("", seller_views.queue, name="queue"),
    path("queue/fragment/", seller_views.queue_fragment, name="queue-fragment"),
    path("orders/<int:order_id>/<slug:action>/", seller_views.advance, name="advance"),
]
