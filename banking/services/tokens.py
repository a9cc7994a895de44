"""The team's bank token per bank (SPEC §2.1): process cache → database row → fetch.

A restart costs no bank call (the encrypted row survives it) and normal requests never
re-authenticate; a token is refreshed when less than BANK_TOKEN_REFRESH_MARGIN_SECONDS is left,
or once after a 401. Tokens are never logged.
"""

import logging
import threading
from datetime import timedelta
from typing import TypeGuard

from django.conf import settings
from django.utils import timezone

from banking.clients.types import BankTokenInfo
from banking.models import BankToken

logger = logging.getLogger(__name__)

_cache: dict[str, BankTokenInfo] = {}
_lock = threading.Lock()


def _fresh(info: BankTokenInfo | None) -> TypeGuard[BankTokenInfo]:
    if info is None or not info.access_token:
        return False
    margin = timedelta(seconds=settings.BANK_TOKEN_REFRESH_MARGIN_SECONDS)
    return info.expires_at - timezone.now() > margin


def bank_token_get(*, bank_code: str, client) -> str:
    """A valid bank token for `bank_code`, fetched with `client` only when none is fresh."""
    cached = _cache.get(bank_code)
    if _fresh(cached):
        return cached.access_token
    with _lock:
        cached = _cache.get(bank_code)
        if _fresh(cached):
            return cached.access_token
        row = BankToken.objects.filter(bank_code=bank_code).first()
        if row is not None:
            stored = BankTokenInfo(access_token=row.access_token, expires_at=row.expires_at)
            if _fresh(stored):
                _cache[bank_code] = stored
                return stored.access_token
        info = client.fetch_bank_token()
        BankToken.objects.update_or_create(
            bank_code=bank_code,
            defaults={
                "access_token": info.access_token,
                "expires_at": info.expires_at,
                "last_refreshed_at": timezone.now(),
            },
        )
        _cache[bank_code] = info
        logger.info("%s: new bank token, expires %s", bank_code, info.expires_at.isoformat())
        return info.access_token


def bank_token_invalidate(*, bank_code: str) -> None:
    """Forget the token (after a 401), in this process and in the database."""
    with _lock:
        _cache.pop(bank_code, None)
        BankToken.objects.filter(bank_code=bank_code).delete()


def bank_token_cache_clear() -> None:
    """Empty the process-local cache (what a restart does); the database rows stay."""
    with _lock:
        _cache.clear()
