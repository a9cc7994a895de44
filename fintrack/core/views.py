"""Plain-Django error handlers, so even errors outside DRF keep the JSON error shape under /api/."""

from django.http import JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "not_found", "message": "No such endpoint.", "extra": {}}, status=404
        )
    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "server_error", "message": "Internal error; it has been logged.", "extra": {}},
            status=500,
        )
    return django_server_error(request)
