"""Fault switches per bank: latency, 5xx, 429, hangs, early token expiry, revocations, bad bodies.

Never on by default. The dice come from a seedable RNG per bank (`FaultConfig.rng_seed`), and every
request rolls the same number of dice, so a chaos run replays exactly for the same request sequence.
"""

import random
import threading
import time
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.utils import timezone

from sandbox.models import AccountConsent, FaultConfig, ProductConsent

FIELDS = (
    "latency_ms",
    "error_rate",
    "error_statuses",
    "rate_limit_rate",
    "retry_after_seconds",
    "hang_rate",
    "hang_seconds",
    "malformed_rate",
    "token_max_age_seconds",
    "tokens_issued_before",
    "rng_seed",
)
_lock = threading.Lock()
_dice: dict[tuple, random.Random] = {}

_HTML = "<html>\r\n<head><title>{s} {t}</title></head>\r\n<body>\r\n<center><h1>{s} {t}</h1></center>\r\n<hr><center>nginx/1.29.2</center>\r\n</body>\r\n</html>\r\n"  # noqa: E501
_REASONS = {429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Temporarily Unavailable",
            504: "Gateway Time-out"}  # fmt: skip


def _from_settings(bank: str) -> dict:
    """Start-up switches from SANDBOX_FAULTS, e.g. `vbank:error_rate=0.1,latency_ms=50`."""
    for part in settings.SANDBOX_FAULTS.split(";"):
        name, _, options = part.strip().partition(":")
        if name == bank and options:
            return dict(option.split("=", 1) for option in options.split(",") if "=" in option)
    return {}


def config_for(bank: str) -> FaultConfig | None:
    """The bank's fault switches (one query), or None when no fault is configured."""
    row = FaultConfig.objects.filter(bank=bank).first()
    if row is None:
        options = _from_settings(bank)
        if not options:
            return None
        typed = {
            name: FaultConfig._meta.get_field(name).to_python(value)
            for name, value in options.items()
            if name in FIELDS
        }
        row = FaultConfig(bank=bank, **typed)
        row.updated_at = timezone.make_aware(datetime(2000, 1, 1))
    return row


def set_faults(bank: str, **switches) -> FaultConfig:
    """Turn faults on at a bank; unspecified switches keep their value (off by default)."""
    unknown = set(switches) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown fault switches: {sorted(unknown)}")
    row, _ = FaultConfig.objects.get_or_create(bank=bank)
    for name, value in switches.items():
        setattr(row, name, value)
    row.full_clean()
    row.save()
    return row


def clear_faults(bank: str | None = None) -> None:
    """Switch every fault off (at one bank or all)."""
    rows = FaultConfig.objects.all()
    (rows.filter(bank=bank) if bank else rows).delete()


def describe(bank: str) -> dict:
    row = config_for(bank) or FaultConfig(bank=bank)
    data = {name: getattr(row, name) for name in FIELDS}
    if data["tokens_issued_before"]:
        data["tokens_issued_before"] = data["tokens_issued_before"].isoformat()
    return {"bank": bank, **data}


@transaction.atomic
def revoke_consents(
    bank: str, *, consent_id: str | None = None, client_id: str | None = None
) -> int:
    """Revoke at the bank one consent or all of a client's (account and product); returns count."""
    now = _sandbox_now()
    accounts = AccountConsent.objects.filter(bank=bank, status=AccountConsent.Status.ACTIVE)
    products = ProductConsent.objects.filter(bank=bank, status=ProductConsent.Status.ACTIVE)
    if consent_id:
        accounts, products = (
            accounts.filter(consent_id=consent_id),
            products.filter(consent_id=consent_id),
        )
    if client_id:
        accounts, products = (
            accounts.filter(client_id=client_id),
            products.filter(client_id=client_id),
        )
    count = accounts.update(status=AccountConsent.Status.REVOKED, status_updated_at=now)
    return count + products.update(status=ProductConsent.Status.REVOKED)


def _sandbox_now() -> datetime:
    from sandbox import clock

    return clock.now()


class Dice:
    """The rolls one request gets, drawn together in a fixed order."""

    def __init__(self, config: FaultConfig):
        key = (config.bank, config.rng_seed, config.updated_at)
        with _lock:
            rng = _dice.get(key)
            if rng is None:
                for stale in [k for k in _dice if k[0] == config.bank]:
                    del _dice[stale]
                rng = _dice[key] = random.Random(f"faults:{config.bank}:{config.rng_seed}")
            self.hang, self.limit, self.error, self.malformed = (rng.random() for _ in range(4))
            self.status_pick = rng.random()


def before(config: FaultConfig) -> tuple[HttpResponse | None, Dice]:
    """Latency, hangs, 429 and 5xx decided before the view runs."""
    dice = Dice(config)
    if config.latency_ms:
        time.sleep(config.latency_ms / 1000)
    if dice.hang < config.hang_rate:
        time.sleep(config.hang_seconds)
    if dice.limit < config.rate_limit_rate:
        response = HttpResponse(_HTML.format(s=429, t=_REASONS[429]), status=429)
        response["Content-Type"] = "text/html"
        response["Retry-After"] = str(config.retry_after_seconds)
        return response, dice
    if dice.error < config.error_rate:
        statuses = [int(s) for s in config.error_statuses.split(",") if s.strip()] or [500]
        status = statuses[int(dice.status_pick * len(statuses))]
        if status == 500:
            return HttpResponse(
                "Internal Server Error", status=500, content_type="text/plain; charset=utf-8"
            ), dice
        body = _HTML.format(s=status, t=_REASONS.get(status, "Error"))
        return HttpResponse(body, status=status, content_type="text/html"), dice
    return None, dice


def after(config: FaultConfig, dice: Dice, response: HttpResponse) -> HttpResponse:
    """Truncate a successful JSON body at random when the malformed-body fault is on."""
    if response.status_code == 200 and dice.malformed < config.malformed_rate:
        content = response.content
        response.content = content[: max(1, len(content) // 2)]
    return response


def token_revoked(config: FaultConfig | None, issued_at: float, now: datetime) -> bool:
    """Whether a token issued at `issued_at` (unix seconds) dies early under the switches."""
    if config is None:
        return False
    max_age = config.token_max_age_seconds
    if max_age is not None and now.timestamp() - issued_at >= max_age:
        return True
    cutoff = config.tokens_issued_before
    return cutoff is not None and issued_at < cutoff.timestamp()
