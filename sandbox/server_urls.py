"""URLconf of `manage.py run_sandbox`: only the sandbox, at / and at /sandbox/."""

from django.urls import include, path

urlpatterns = [
    path("sandbox/", include("sandbox.urls")),
    path("", include("sandbox.urls")),
]
