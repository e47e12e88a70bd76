from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.api_views import TokenObtainApi

urlpatterns = [
    path("auth/token/", TokenObtainApi.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from drf-spectacular-sidecar (SPECTACULAR_SETTINGS), its start-up script served
    # as a file of its own (`?script`): no CDN and no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("orders.api.urls")),
    path("", include("credits.api.urls")),
    path("", include("refunds.api.urls")),
    path("", include("disputes.api.urls")),
]
