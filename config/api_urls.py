from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.api_views import TokenObtainApi
from core.error_views import api_route_not_found

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
    # Last: any other /api/.../ path is the API's JSON 404, DEBUG or not (handler404 only
    # answers when DEBUG is off). Paths without the slash still get APPEND_SLASH's redirect.
    re_path(r"^.*/$", api_route_not_found),
    # A path that names a file (`support/chargebacks/abc/evidence.pdf`) gets no slash appended:
    # APPEND_SLASH would redirect it to the route above, a 301 that only leads to a 404.
    re_path(r"^.*\.[A-Za-z0-9]+$", api_route_not_found),
]
