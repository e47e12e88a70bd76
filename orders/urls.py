"""Buyer pages at the site root: `home` and `policy` unnamespaced (base.html names them), the
rest under the app name "orders" (more buyer pages join `buyer_patterns`).

No module-level `app_name`: it would put `home` and `policy` in the namespace too."""

from django.urls import include, path
from django.views.generic import RedirectView

from orders import views

buyer_patterns = [
    path("restaurants/", views.restaurant_list, name="restaurants"),
    path("restaurants/<slug:slug>/", views.restaurant_menu, name="restaurant"),
    path("cart/", views.cart, name="cart"),
    path("cart/add/", views.cart_add, name="cart_add"),
    path("orders/", views.order_list, name="list"),
    path("orders/<int:order_id>/", views.order_detail, name="detail"),
    path("orders/<int:order_id>/cancel/", views.order_cancel, name="cancel"),
    path("orders/<int:order_id>/missing/", views.order_missing, name="missing"),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="orders:restaurants"), name="home"),
    path("policy/", views.policy, name="policy"),
    path("", include((buyer_patterns, "orders"))),
]
