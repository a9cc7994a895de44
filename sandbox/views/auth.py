"""Root info, health, team token (§2.1) and bank-client login (§2.2)."""

from django.conf import settings

from sandbox import catalog
from sandbox.auth import (
    TOKEN_TTL_SECONDS,
    Denied,
    client_password_ok,
    issue_client_token,
    issue_team_token,
    team_credentials,
)
from sandbox.http import Invalid, detail, json_body, json_response, missing
from sandbox.views.common import bank_view


@bank_view("GET")
def root(request, bank):
    return json_response(
        {
            "bank": catalog.BANKS[bank.bank]["name"],
            "bank_code": bank.bank,
            "api_version": "2.1",
            "status": "online",
        }
    )


@bank_view("GET")
def health(request, bank):
    return json_response({"status": "healthy", "bank": bank.bank})


@bank_view("POST")
def bank_token(request, bank):
    client_id = request.GET.get("client_id")
    secret = request.GET.get("client_secret")
    errors = [missing("query", name) for name, value in
              (("client_id", client_id), ("client_secret", secret)) if value is None]  # fmt: skip
    if errors:
        raise Invalid(errors)
    # This bank's own team id and secret (SPEC §17): another bank's secret is refused here.
    team, team_secret = team_credentials(bank.bank, settings)
    if client_id != team:
        raise Denied(detail(401, "Invalid client_id"))
    if secret != team_secret:
        raise Denied(detail(401, "Invalid client_secret"))
    return json_response(
        {
            "access_token": issue_team_token(bank.bank, bank.now, team),
            "token_type": "bearer",
            "client_id": client_id,
            "algorithm": "HS256",
            "expires_in": TOKEN_TTL_SECONDS,
        }
    )


@bank_view("POST")
def login(request, bank):
    body = json_body(request, required=("username", "password"))
    username = str(body["username"])
    if not client_password_ok(bank.bank, username, body["password"], settings):
        raise Denied(detail(401, "Invalid credentials"))
    return json_response(
        {
            "access_token": issue_client_token(bank.bank, username, bank.now),
            "token_type": "bearer",
            "client_id": username,
        }
    )
