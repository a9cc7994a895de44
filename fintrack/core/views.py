"""Plain-Django views: the landing page at /, the JSON 404 of unknown /api/ URLs, and the error
handlers, so even errors outside DRF keep the JSON error shape under /api/."""

from django.conf import settings
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error


def _not_found_json() -> JsonResponse:
    return JsonResponse(
        {"code": "not_found", "message": "No such endpoint.", "extra": {}}, status=404
    )


def landing(request):
    """/: where to go from here — the API docs, the admin console, the sandbox, health."""
    sandbox_bank = settings.BANK_CODES[0] if settings.SANDBOX_ENABLED else ""
    return render(
        request,
        "fintrack/landing.html",
        {"sandbox_enabled": settings.SANDBOX_ENABLED, "sandbox_bank": sandbox_bank},
    )


@csrf_exempt  # it changes nothing; a CSRF refusal would answer 403 HTML instead of the JSON 404
def api_not_found(request, unknown_path: str = ""):
    """Any /api/ URL no endpoint matches: the standard JSON 404 (even with DEBUG on).

    A GET or HEAD of a path that exists with a trailing slash (e.g. /api/docs) is redirected
    there, as CommonMiddleware's APPEND_SLASH would have done before this catch-all took it.
    """
    if request.method in ("GET", "HEAD") and not request.path_info.endswith("/"):
        try:
            match = resolve(f"{request.path_info}/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return _not_found_json()


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return _not_found_json()
    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "server_error", "message": "Internal error; it has been logged.", "extra": {}},
            status=500,
        )
    return django_server_error(request)
