from django.urls import path

from credits.api import views

urlpatterns = [
    path("credits/", views.CreditWalletApi.as_view(), name="api-credits"),
]
