"""Root URLs: every app mounts its own `urls.py` under /api/; the sandbox banks under /sandbox/;
a landing page at /. Any other /api/ URL answers the standard JSON 404 (even with DEBUG on)."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from fintrack.core.admin import admin_console_install
from fintrack.core.views import api_not_found, landing
from fintrack.health import HealthApi

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

# Every admin is registered by now (admin autodiscovery runs before the URLconf loads): local
# times with seconds and zone, and changelists that fit 1400 px, for all of them.
admin_console_install(admin.site)

urlpatterns = [
    path("", landing, name="landing"),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))

# Last: an /api/ URL nothing above matched.
urlpatterns.append(re_path(r"^api/(?P<unknown_path>.*)$", api_not_found, name="api-not-found"))

handler404 = "fintrack.core.views.not_found"
handler500 = "fintrack.core.views.server_error"
