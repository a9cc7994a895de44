"""The configured banks and the client that talks to each, wired to tokens and raw logs."""

from django.conf import settings

from audit.capture import RawLogBuffer, raw_log_hook
from banking.clients import CLIENT_CLASSES, BankClient
from banking.exceptions import UnknownBank
from banking.services.circuits import bank_circuit_state_record
from banking.services.tokens import bank_token_get, bank_token_invalidate


def bank_codes() -> list[str]:
    """Codes of every configured bank, in settings order."""
    return list(settings.BANKS)


def _bank_config(bank_code: str) -> dict:
    config = settings.BANKS.get(bank_code) if isinstance(bank_code, str) else None
    if config is None:
        raise UnknownBank(f"Unknown bank {bank_code!r}.", extra={"bank_code": str(bank_code)})
    return config


def bank_display_name(code: str) -> str:
    """The bank's display name (SPEC §1)."""
    return _bank_config(code).get("name") or code


def team_credentials(bank_code: str) -> tuple[str, str]:
    """(team id, team secret) at `bank_code`: its `<CODE>_TEAM_ID` / `<CODE>_TEAM_SECRET`
    settings, each falling back to the shared BANK_TEAM_ID / BANK_TEAM_SECRET.

    A team registered through a bank gets a different secret at each bank (SPEC §17). The team
    id is what the bank token is asked for, what `X-Requesting-Bank` and `requesting_bank` carry
    (SPEC §1, §3.1) and the secret doubles as the demo clients' password (SPEC §2.2).
    """
    _bank_config(bank_code)
    return _credentials(bank_code)


def _credentials(bank_code: str) -> tuple[str, str]:
    prefix = bank_code.upper()
    team_id = getattr(settings, f"{prefix}_TEAM_ID", "") or settings.BANK_TEAM_ID
    secret = getattr(settings, f"{prefix}_TEAM_SECRET", "") or settings.BANK_TEAM_SECRET
    return team_id, secret


def team_secrets() -> list[str]:
    """Every team secret in use (the shared one and each bank's), for redacting raw logs."""
    codes = dict.fromkeys([*settings.BANK_CODES, *bank_codes()])
    known = [settings.BANK_TEAM_SECRET, *(_credentials(code)[1] for code in codes)]
    return [secret for secret in dict.fromkeys(known) if secret]


def bank_client_for(
    bank_code: str,
    *,
    user=None,
    raw_logs: RawLogBuffer | None = None,
    deadline_seconds: float | None = None,
) -> BankClient:
    """A client for `bank_code` using the shared token and recording raw logs as `user`.

    Each exchange is written as it happens, or noted in `raw_logs` for its owner to flush. Its
    calls end within `deadline_seconds` from now when given; inside a web request they also end
    by the request's deadline (banking.middleware: BANK_WEB_REQUEST_DEADLINE_SECONDS).
    """
    config = _bank_config(bank_code)
    team_id, team_secret = team_credentials(bank_code)
    client_class = CLIENT_CLASSES.get(bank_code, BankClient)
    client = client_class(
        bank_code=bank_code,
        base_url=config["base_url"],
        team_id=team_id,
        team_secret=team_secret,
        timeout_seconds=settings.BANK_TIMEOUT_SECONDS,
        max_retries=settings.BANK_MAX_RETRIES,
        backoff_seconds=settings.BANK_RETRY_BACKOFF_SECONDS,
        max_sleep_seconds=settings.BANK_RETRY_MAX_SLEEP_SECONDS,
        retry_after_max_seconds=settings.BANK_RETRY_AFTER_MAX_SECONDS,
        verify_tls=settings.BANK_VERIFY_TLS,
        pool_size=max(settings.BANK_HTTP_CONNECTIONS, settings.SYNC_PARALLEL_ACCOUNTS),
        deadline_seconds=deadline_seconds,
        max_response_bytes=settings.BANK_MAX_RESPONSE_BYTES,
    )
    client.display_name = config.get("name") or client.display_name
    client.token_provider = lambda: bank_token_get(bank_code=bank_code, client=client)
    client.token_invalidator = lambda: bank_token_invalidate(bank_code=bank_code)
    client.circuit_listener = bank_circuit_state_record  # the admin's record of the breaker
    if raw_logs is not None:
        client.exchange_hook = raw_logs.hook
    else:
        client.exchange_hook = raw_log_hook(user=user, secrets=team_secrets())
    return client
