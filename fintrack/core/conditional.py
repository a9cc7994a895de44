"""Conditional GET for API views: an ETag on every 200, and 304 Not Modified for a repeat.

The frontend polls the dashboard and analytics; a client that sends back the ETag it got
(`If-None-Match`) gets an empty 304 while nothing changed. A view may set its own ETag, one
that is cheaper than hashing its whole answer and changes exactly when the answer does (the
dashboard hashes its live part, which holds the snapshot's id: analytics.dashboard);
ConditionalGetMiddleware keeps it and compares it. Otherwise the ETag is Django's own, a hash of
the rendered body, so it changes whenever anything in the answer does.
`Cache-Control: private, no-cache` keeps shared caches out (answers are per user) and makes the
browser revalidate each time.
"""

from django.middleware.http import ConditionalGetMiddleware
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.decorators import decorator_from_middleware, method_decorator

_conditional_get = decorator_from_middleware(ConditionalGetMiddleware)


class _PrivateRevalidate:
    """Runs before ConditionalGetMiddleware, so a 304 keeps these headers too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def process_response(self, request, response):
        if request.method in ("GET", "HEAD"):
            patch_cache_control(response, private=True, no_cache=True)
            patch_vary_headers(response, ("Authorization",))
        return response


_private_revalidate = decorator_from_middleware(_PrivateRevalidate)


def conditional_get(view_class):
    """Class decorator for DRF views: ETag and 304 on GET (see the module docstring)."""
    view_class.dispatch = method_decorator(_conditional_get)(
        method_decorator(_private_revalidate)(view_class.dispatch)
    )
    return view_class
