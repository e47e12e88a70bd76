from django.urls import path

from orders.api import catalogue, views
from orders.models import SELLER_ACTIONS

urlpatterns = [
    path("restaurants/", catalogue.RestaurantListApi.as_view(), name="api-restaurants"),
    path(
        "restaurants/<int:pk>/menu/",
        catalogue.RestaurantMenuApi.as_view(),
        name="api-restaurant-menu",
    ),
    path("orders/", views.OrderListCreateApi.as_view(), name="api-orders"),
    path("orders/<int:pk>/", views.OrderDetailApi.as_view(), name="api-order"),
    path("orders/<int:pk>/cancel/", views.OrderCancelApi.as_view(), name="api-order-cancel"),
    path(
        "orders/<int:pk>/report-missing/",
        views.OrderReportMissingApi.as_view(),
        name="api-order-report-missing",
    ),
    path("seller/orders/", views.SellerOrderListApi.as_view(), name="api-seller-orders"),
    path(
        "seller/orders/<int:pk>/locate/",
        views.SellerOrderLocateApi.as_view(),
        name="api-seller-order-locate",
    ),
    path(
        "seller/orders/<int:pk>/cancel/",
        views.SellerOrderCancelApi.as_view(),
        name="api-seller-order-cancel",
    ),
    path(
        "seller/orders/<int:pk>/delay/",
        views.SellerOrderDelayApi.as_view(),
        name="api-seller-order-delay",
    ),
    path(
        "seller/cancellation-requests/",
        views.SellerCancellationRequestListApi.as_view(),
        name="api-seller-cancellation-requests",
    ),
    path(
        "seller/cancellation-requests/<int:order_id>/approve/",
        views.SellerCancellationRequestApproveApi.as_view(),
        name="api-seller-cancellation-request-approve",
    ),
    path(
        "seller/cancellation-requests/<int:order_id>/deny/",
        views.SellerCancellationRequestDenyApi.as_view(),
        name="api-seller-cancellation-request-deny",
    ),
    *(
        # One URL per lifecycle action, hyphenated: /api/seller/orders/7/start-preparation/
        path(
            f"seller/orders/<int:pk>/{action.replace('_', '-')}/",
            views.SellerOrderActionApi.as_view(),
            {"action": action},
            name=f"api-seller-order-{action.replace('_', '-')}",
        )
        for action in SELLER_ACTIONS
    ),
]
