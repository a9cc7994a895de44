"""The wrapper every bank route shares: method check, fault switches, auth/consent failures."""

from functools import cached_property, wraps

from django.views.decorators.csrf import csrf_exempt

from sandbox import clock, faults
from sandbox.auth import Denied, bearer_claims
from sandbox.http import Invalid, detail, invalid
from sandbox.layout import client_number


class BankRequest:
    """Per-request context: which bank, its fault switches, one clock reading."""

    def __init__(self, bank: str, config):
        self.bank = bank
        self.config = config

    @cached_property
    def clock(self) -> clock.ClockState:
        return clock.state()

    @property
    def now(self):
        return self.clock.now

    def claims(self, request) -> dict:
        return bearer_claims(request, self.bank, self.now, self.config)


def bank_view(*methods: str):
    """Wrap a bank route: 405 for other methods, faults before/after, Denied/Invalid answered."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, bank: str, **kwargs):
            if request.method not in methods:
                return detail(405, "Method Not Allowed")
            config = faults.config_for(bank)
            dice = None
            if config is not None:
                early, dice = faults.before(config)
                if early is not None:
                    return early
            context = BankRequest(bank, config)
            try:
                response = view(request, context, **kwargs)
            except Denied as denied:
                response = denied.response
            except Invalid as error:
                response = invalid(error.errors)
            if config is not None:
                response = faults.after(config, dice, response)
            return response

        return wrapper

    return decorate


def consent_required(message: str, url: str | None = None) -> Denied:
    body = {"error": "CONSENT_REQUIRED", "message": message}
    if url:
        body["consent_request_url"] = url
    return Denied(detail(403, body))


def known_client(client_id: str) -> bool:
    return client_number(client_id) is not None
