"""Bank calls made while answering a web request end in time for the answer to be sent.

A hanging bank must not outlive the web worker's timeout (gunicorn kills it at 30 s and the user
gets an HTML 500): every bank client used during a request shares one deadline, counted from the
request's start (BANK_WEB_REQUEST_DEADLINE_SECONDS). Past it no retry or wait starts, each attempt's
timeout is cut to what is left, and the BankUnavailableError raised is answered as the standard
JSON 503 by the API's exception handler. Celery tasks run outside any request: no deadline.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from banking.clients.transport import bank_call_deadline


class BankCallDeadlineMiddleware:
    """Runs each request inside `bank_call_deadline(BANK_WEB_REQUEST_DEADLINE_SECONDS)`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with bank_call_deadline(settings.BANK_WEB_REQUEST_DEADLINE_SECONDS):
            return self.get_response(request)
