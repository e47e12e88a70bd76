from django.contrib import admin
from django.urls import include, path

from core.views import notifications

# Uploaded files (evidence photos) are never served from MEDIA_URL: only through the
# permission-checked view `refunds:evidence`, in development too.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("config.api_urls")),
    path("accounts/", include("core.urls")),
    path("seller/", include("orders.seller_urls")),
    path("wallet/", include("credits.urls")),
    path("refunds/", include("refunds.urls")),
    path("disputes/", include("disputes.urls")),
    path("notifications/", notifications, name="notifications"),
    path("", include("orders.urls")),
]

# JSON under /api/ (D-10), the styled pages elsewhere.
handler400 = "core.error_views.bad_request"
handler403 = "core.error_views.permission_denied"
handler404 = "core.error_views.page_not_found"
handler500 = "core.error_views.server_error"
