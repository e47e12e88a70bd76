from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from core.views import notifications

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("config.api_urls")),
    path("accounts/", include("core.urls")),
    path("seller/", include("orders.seller_urls")),
    path("wallet/", include("credits.urls")),
    path("refunds/", include("refunds.urls")),
    path("notifications/", notifications, name="notifications"),
    path("", include("orders.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
