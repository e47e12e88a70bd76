"""The seller portal (D-9): restaurant partners' pages, mounted at /seller/."""

from django.urls import path

from disputes import seller_views as disputes_seller_views
from orders import seller_views

app_name = "seller"

urlpatterns = [
    path("", seller_views.queue, name="queue"),
    path("queue/fragment/", seller_views.queue_fragment, name="queue-fragment"),
    path("orders/<int:order_id>/", seller_views.order_detail, name="order"),
    path("orders/<int:order_id>/cancel/", seller_views.cancel, name="cancel"),
    path("orders/<int:order_id>/delay/", seller_views.set_delay_cause, name="delay"),
    path("orders/<int:order_id>/locate/", seller_views.locate, name="locate"),
    path("orders/<int:order_id>/<slug:action>/", seller_views.advance, name="advance"),
    path(
        "cancellation-requests/",
        seller_views.cancellation_requests,
        name="cancellation-requests",
    ),
    path(
        "cancellation-requests/<int:order_id>/approve/",
        seller_views.cancellation_approve,
        name="cancellation-approve",
    ),
    path(
        "cancellation-requests/<int:order_id>/deny/",
        seller_views.cancellation_deny,
        name="cancellation-deny",
    ),
    path("verifications/", seller_views.verifications, name="verifications"),
    path(
        "verifications/<int:request_id>/answer/",
        seller_views.verification_answer,
        name="verification-answer",
    ),
    path("ledger/", seller_views.ledger, name="ledger"),
    path(
        "ledger/<int:entry_id>/dispute/",
        seller_views.deduction_dispute,
        name="deduction-dispute",
    ),
    path("incidents/", disputes_seller_views.incidents, name="incidents"),
    path(
        "incidents/<int:incident_id>/answer/",
        disputes_seller_views.incident_answer,
        name="incident-answer",
    ),
    path("settings/", seller_views.restaurant_settings, name="settings"),
    path("menu/", seller_views.menu, name="menu"),
    path("menu/<int:item_id>/", seller_views.menu_item_edit, name="menu-item"),
    path(
        "menu/<int:item_id>/sold-out/", seller_views.menu_item_sold_out, name="menu-item-sold-out"
    ),
]
