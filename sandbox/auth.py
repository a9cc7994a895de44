"""Bank tokens (HS256, one key per bank) and the FastAPI-style bearer checks of SPEC §2."""

import hashlib
from datetime import datetime

import jwt
from django.conf import settings

from sandbox import faults
from sandbox.http import detail
from sandbox.layout import client_number
from sandbox.models import FaultConfig

TOKEN_TTL_SECONDS = 86400
AUDIENCE = "openbanking"


class Denied(Exception):
    """An auth or consent failure; carries the bank's exact response."""

    def __init__(self, response):
        super().__init__(response.status_code)
        self.response = response


def signing_key(bank: str) -> str:
    """Each bank signs with its own key, so one bank's token is foreign at another."""
    material = f"{settings.SECRET_KEY}:{settings.SANDBOX_SEED}:sandbox-bank-key:{bank}"
    return hashlib.sha256(material.encode()).hexdigest()


def team_credentials(bank: str, conf=settings) -> tuple[str, str]:
    """(team id, secret) the bank accepts: its `<BANK>_TEAM_ID` / `<BANK>_TEAM_SECRET`, each
    falling back to the shared BANK_TEAM_ID / BANK_TEAM_SECRET — the very settings FinTrack's
    client reads, so the embedded default needs no configuration. `conf`: the settings to read.

    Live, a team registered through a bank gets a different secret at each bank (SPEC §17).
    """
    prefix = bank.upper()
    team = getattr(conf, f"{prefix}_TEAM_ID", "") or conf.BANK_TEAM_ID
    secret = getattr(conf, f"{prefix}_TEAM_SECRET", "") or conf.BANK_TEAM_SECRET
    return team, secret


def client_password_ok(bank: str, client_id: str, password, conf=settings) -> bool:
    """The `/auth/login` check (SPEC §2.2): a known client whose password is the team's secret
    at this bank. The bank's own app (sandbox/views/app.py) asks for the same password."""
    return client_number(client_id) is not None and password == team_credentials(bank, conf)[1]


def issue_team_token(bank: str, now: datetime, team: str | None = None) -> str:
    team = team or team_credentials(bank)[0]
    claims = {
        "sub": team,
        "client_id": team,
        "type": "team",
        "iss": bank,
        "aud": AUDIENCE,
        "exp": int(now.timestamp()) + TOKEN_TTL_SECONDS,
    }
    return jwt.encode(claims, signing_key(bank), algorithm="HS256")


def issue_client_token(bank: str, client_id: str, now: datetime) -> str:
    claims = {
        "sub": client_id,
        "type": "client",
        "bank": "self",
        "exp": int(now.timestamp()) + TOKEN_TTL_SECONDS,
    }
    return jwt.encode(claims, signing_key(bank), algorithm="HS256")


def _invalid() -> Denied:
    return Denied(
        detail(401, "Could not validate credentials", headers={"WWW-Authenticate": "Bearer"})
    )


def bearer_claims(request, bank: str, now: datetime, config: FaultConfig | None) -> dict:
    """Claims of the request's bearer token, or Denied with the bank's 403/401 answer."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise Denied(detail(403, "Not authenticated"))
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Denied(detail(403, "Invalid authentication credentials"))
    try:
        claims = jwt.decode(
            token.strip(),
            signing_key(bank),
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_aud": False, "verify_iss": False},
        )
    except jwt.PyJWTError:
        raise _invalid() from None
    expires = claims.get("exp")
    if not isinstance(expires, int) or expires <= now.timestamp():
        raise _invalid()
    kind = claims.get("type")
    if kind == "team" and (claims.get("iss") != bank or claims.get("aud") != AUDIENCE):
        raise _invalid()
    if kind not in ("team", "client") or not claims.get("sub"):
        raise _invalid()
    if faults.token_revoked(config, expires - TOKEN_TTL_SECONDS, now):
        raise _invalid()
    return claims


def require_client_token(claims: dict) -> str:
    """The bank client's id from a client token; team tokens get 401 Insufficient permissions."""
    if claims.get("type") != "client":
        raise Denied(detail(401, "Insufficient permissions"))
    return claims["sub"]
