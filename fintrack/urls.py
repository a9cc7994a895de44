"""Root URLs: every app mounts its own `urls.py` under /api/; the sandbox banks under /sandbox/."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from fintrack.core.apis import HealthApi

api_patterns = [
    path("health", HealthApi.as_view(), name="health"),
    path("", include("users.urls")),
    path("", include("banking.urls")),
    path("", include("consents.urls")),
    path("", include("sync.urls")),
    path("", include("analytics.urls")),
    path("", include("audit.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))

handler404 = "fintrack.core.views.not_found"
handler500 = "fintrack.core.views.server_error"
