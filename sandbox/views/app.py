"""The bank's own app, as far as consents go (SPEC §3.4, §17): the client sees its pending
consent requests and approves or rejects them there, not through any team's API.

`GET  …/<bank>/app/consents?client_id=…`           an HTML page of the client's pending requests
`POST …/<bank>/app/consents/<request_id>`          form fields `client_id`, `password`, `action`

Pages, not API routes: no bank_view wrapper (no fault switches, HTML answers, Django's CSRF
check). The password is the client's own, checked as `POST /auth/login` checks it. An approved
account consent gets a consent id the requesting team never learns (services.app_request_decide);
the page does not show it either.
"""

from functools import cache
from urllib.parse import urlencode

from django.http import HttpResponse, HttpResponseRedirect
from django.template import engines
from django.views.decorators.http import require_GET, require_POST

from sandbox import catalog, clock, services
from sandbox.auth import client_password_ok
from sandbox.layout import client_number
from sandbox.models import AccountConsentRequest

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ bank_name }}: consents</title></head>
<body>
<h1>{{ bank_name }}</h1>
{% if error %}<p role="alert"><strong>{{ error }}</strong></p>{% endif %}
{% if notice %}<p role="status">{{ notice }}</p>{% endif %}
{% if client_id %}
<h2>Consent requests waiting for {{ client_id }}</h2>
{% for item in pending %}
<section id="{{ item.request_id }}">
<h3>{{ item.requester }} asks for {{ item.kind }}</h3>
<p>Request <code>{{ item.request_id }}</code>, {{ item.created_at|date:"Y-m-d H:i" }} UTC</p>
<ul>{% for permission in item.permissions %}<li>{{ permission }}</li>{% endfor %}</ul>
{% if item.reason %}<p>Reason: {{ item.reason }}</p>{% endif %}
<form method="post" action="{{ base }}/{{ item.request_id }}">{% csrf_token %}
<input type="hidden" name="client_id" value="{{ client_id }}">
<label>Password <input type="password" name="password" required></label>
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="reject">Reject</button>
</form>
</section>
{% empty %}
<p>No consent requests are waiting.</p>
{% endfor %}
{% endif %}
</body></html>
"""

NOTICES = {"approved": "Request approved.", "rejected": "Request rejected."}


@cache
def _template():
    return engines["django"].from_string(PAGE)


def _item(row) -> dict:
    if isinstance(row, AccountConsentRequest):
        return {
            "request_id": row.request_id,
            "kind": "access to your accounts",
            "requester": row.requesting_bank_name or row.requesting_bank,
            "permissions": row.permissions,
            "reason": row.reason,
            "created_at": row.created_at,
        }
    flags = ("read_product_agreements", "open_product_agreements", "close_product_agreements")
    return {
        "request_id": row.request_id,
        "kind": "access to your product agreements",
        "requester": row.granted_to,
        "permissions": [flag for flag in flags if getattr(row, flag)],
        "reason": row.reason,
        "created_at": row.created_at,
    }


def _page(request, bank: str, *, base: str, client_id: str | None, status: int = 200,
          error: str = "", notice: str = "") -> HttpResponse:  # fmt: skip
    pending = []
    if client_id is not None:
        pending = services.app_pending_requests(bank=bank, client_id=client_id)
    context = {
        "bank_name": catalog.BANKS[bank]["name"],
        "client_id": client_id,
        "pending": [_item(row) for row in pending],
        "base": base,
        "error": error,
        "notice": notice,
    }
    return HttpResponse(_template().render(context, request), status=status)


def _known(client_id) -> bool:
    return isinstance(client_id, str) and client_number(client_id) is not None


@require_GET
def consents_page(request, bank: str):
    """The client's pending consent requests, each with an approve / reject form."""
    client_id = request.GET.get("client_id")
    base = request.path.rstrip("/")
    if not client_id:
        return _page(request, bank, base=base, client_id=None, status=400,
                     error="Field client_id is required.")  # fmt: skip
    if not _known(client_id):
        return _page(request, bank, base=base, client_id=None, status=404,
                     error=f"Client {client_id} not found")  # fmt: skip
    notice = NOTICES.get(request.GET.get("done", ""), "")
    return _page(request, bank, base=base, client_id=client_id, notice=notice)


@require_POST
def consent_decide(request, bank: str, request_id: str):
    """Approve or reject one pending request as the logged-in client; back to the list (303)."""
    client_id = request.POST.get("client_id", "")
    action = request.POST.get("action", "")
    base = request.path.rstrip("/").rsplit("/", 1)[0]
    shown = client_id if _known(client_id) else None
    if not client_password_ok(bank, client_id, request.POST.get("password")):
        return _page(request, bank, base=base, client_id=shown, status=403,
                     error="Wrong client id or password.")  # fmt: skip
    if action not in ("approve", "reject"):
        return _page(request, bank, base=base, client_id=shown, status=400,
                     error="Action must be 'approve' or 'reject'")  # fmt: skip
    try:
        services.app_request_decide(
            bank=bank, client_id=client_id, request_id=request_id,
            approve=action == "approve", now=clock.now(),
        )  # fmt: skip
    except services.RequestNotPending as exc:
        return _page(request, bank, base=base, client_id=shown, status=404, error=str(exc))
    done = "approved" if action == "approve" else "rejected"
    response = HttpResponseRedirect(f"{base}?{urlencode({'client_id': client_id, 'done': done})}")
    response.status_code = 303  # See Other: the list is fetched with GET
    return response
