"""Fault switches per bank: latency, 5xx, 429, hangs, early token expiry, revocations, bad bodies,
and on transaction pages: rows missing, a listing ending early, a page repeating forever, rows with
a malformed amount, a page far over the limit.

Never on by default. The dice come from a seedable RNG per bank (`FaultConfig.rng_seed`), and every
request rolls the same number of dice, so a chaos run replays exactly for the same request sequence.
Transaction pages roll their own dice (a second stream: switching page faults on does not change
what the others do). Two page faults are decided by the switches alone, not by the dice, so they
last as long as the switches do: which rows have a malformed amount (`row_malformed`, by row id)
and which listings are stuck (by account and page size). Every page a fault changed says which in
the `X-Sandbox-Fault` response header (FinTrack's raw log keeps it: the chaos bench counts them).
"""

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone

from sandbox.models import AccountConsent, FaultConfig, ProductConsent

# Switches of transaction pages only (`transaction_page`).
PAGE_FIELDS = (
    "short_page_rate",
    "early_end_rate",
    "repeat_page_rate",
    "malformed_row_rate",
    "oversized_page_rate",
    "oversized_page_items",
)
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
    *PAGE_FIELDS,
)
FAULT_HEADER = "X-Sandbox-Fault"
OVERSIZED_MAX_ITEMS = 1_000_000  # the sandbox streams them, but a bound keeps it sane
# A stuck listing repeats this many pages, then ends (an empty page without `links.next`): "for
# ever" to a reader, yet a client with no bound of its own still finishes, and says by its calls
# how many it read (the chaos bench counts them).
REPEATED_PAGES_MAX = 500
# What a malformed amount looks like (`amount.amount`); none of them is a finite number.
MALFORMED_AMOUNTS = ("12,50", "NaN", None, "", "сто рублей", "1.2.3")
_lock = threading.Lock()
_dice: dict[tuple, random.Random] = {}
_page_dice: dict[tuple, random.Random] = {}

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
    if response.streaming:
        return response
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


# --- Transaction pages --------------------------------------------------------------------------


def _fraction(*parts) -> float:
    """A number in [0, 1) decided by `parts` alone: the same in every process and every run."""
    key = ":".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64


def row_malformed(bank: str, rng_seed: int, rate: float, transaction_id: str) -> bool:
    """Whether switches of this seed and rate serve the row with a malformed amount."""
    return rate > 0 and _fraction("row", bank, rng_seed, transaction_id) < rate


def _with_malformed_amount(item: dict) -> dict:
    pick = _fraction("amount", item.get("transactionId"))
    bad = MALFORMED_AMOUNTS[int(pick * len(MALFORMED_AMOUNTS))]
    money = item.get("amount")
    return {**item, "amount": {**money, "amount": bad} if isinstance(money, dict) else bad}


def stuck_page(config: FaultConfig, account_id: str, limit: int, pages: int) -> int | None:
    """The page from which a listing (account, page size) repeats the page before it, or None.

    Decided by the switches alone, so a stuck listing stays stuck for as long as they stay:
    page P and every page after it serve page P − 1's rows again with `links.next` pointing at
    the page asked for (never advancing), up to REPEATED_PAGES_MAX of them. P is 2 … totalPages
    (a one-page listing says "next" once, then repeats).
    """
    seed = (config.bank, config.rng_seed, account_id, limit)
    if not config.repeat_page_rate or _fraction("repeat", *seed) >= config.repeat_page_rate:
        return None
    return 2 + int(_fraction("repeat-at", *seed) * max(pages - 1, 1))


@dataclass
class TransactionListing:
    """The transaction page being served, and how to cut other pages of the same listing."""

    account_id: str
    page: int
    limit: int
    total: int
    pages: int
    items: list[dict]
    links: dict
    meta: dict
    rows: Callable[[int, int], list[dict]]  # the listing's rendered rows [offset, offset + count)
    link: Callable[[int], str]  # the URL of page n at this limit


class PageDice:
    """The rolls one transaction page gets (a stream apart from `Dice`), in a fixed order."""

    def __init__(self, config: FaultConfig):
        key = (config.bank, config.rng_seed, config.updated_at)
        with _lock:
            rng = _page_dice.get(key)
            if rng is None:
                for stale in [k for k in _page_dice if k[0] == config.bank]:
                    del _page_dice[stale]
                rng = _page_dice[key] = random.Random(f"pages:{config.bank}:{config.rng_seed}")
            rolls = [rng.random() for _ in range(4)]
        self.short, self.short_pick, self.early, self.oversized = rolls


def page_faults_on(config: FaultConfig | None) -> bool:
    """Whether any transaction-page switch is on."""
    return config is not None and any(
        getattr(config, name) for name in PAGE_FIELDS if name != "oversized_page_items"
    )


def transaction_page(
    config: FaultConfig | None, listing: TransactionListing
) -> HttpResponse | None:
    """The page as the page switches change it, or None when none applies to it.

    A stuck listing repeats (`stuck_page`); else an oversized page (the listing's rows over and
    over, `oversized_page_items` of them, streamed); else `links.next` dropped before the last page
    (the listing ends early, `meta` still true) and/or a few rows left out (up to a quarter);
    rows whose id `row_malformed` picks get a malformed amount on every page they are on.
    """
    if not page_faults_on(config):
        return None
    dice = PageDice(config)
    applied: list[str] = []
    items, links = listing.items, dict(listing.links)
    stuck = stuck_page(config, listing.account_id, listing.limit, listing.pages)
    if stuck is not None and listing.page >= stuck + REPEATED_PAGES_MAX:
        items, links = [], {"self": listing.link(listing.page)}
        applied.append("repeat_end")
    elif stuck is not None and listing.page >= stuck:
        items = listing.rows((stuck - 2) * listing.limit, listing.limit)
        links = {"self": listing.link(listing.page), "next": listing.link(listing.page)}
        applied.append("repeat_page")
    elif stuck is not None and listing.page == stuck - 1:
        links["next"] = listing.link(stuck)
    elif dice.oversized < config.oversized_page_rate and listing.total:
        return _oversized_page(config, listing, links)
    else:
        if dice.early < config.early_end_rate and "next" in links:
            del links["next"]
            applied.append("early_end")
        if dice.short < config.short_page_rate and len(items) > 1:
            missing = 1 + int(dice.short_pick * (len(items) // 4))
            dropped = set(random.Random(dice.short_pick).sample(range(len(items)), missing))
            items = [item for index, item in enumerate(items) if index not in dropped]
            applied.append("short_page")
    items, malformed = _malform_rows(config, items)
    if malformed:
        applied.append("malformed_row")
    if not applied and links == listing.links:
        return None
    body = {"data": {"transaction": items}, "links": links, "meta": listing.meta}
    response = HttpResponse(_dumps(body), content_type="application/json")
    if applied:
        response[FAULT_HEADER] = ",".join(applied)
    return response


def _dumps(data) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _malform_rows(config: FaultConfig, items: list[dict]) -> tuple[list[dict], int]:
    if not config.malformed_row_rate:
        return items, 0
    rate, changed, out = config.malformed_row_rate, 0, []
    for item in items:
        if row_malformed(config.bank, config.rng_seed, rate, str(item.get("transactionId"))):
            item = _with_malformed_amount(item)
            changed += 1
        out.append(item)
    return out, changed


_OVERSIZED_CHUNK = 2000  # items per chunk written


def _oversized_page(
    config: FaultConfig, listing: TransactionListing, links: dict
) -> StreamingHttpResponse:
    """`oversized_page_items` items in one page: the listing's rows from this page's offset on,
    over and over. Each distinct row is encoded once and the body streamed, with its length."""
    count = min(config.oversized_page_items, OVERSIZED_MAX_ITEMS)
    distinct, malformed = _malform_rows(config, listing.rows(0, min(listing.total, count)))
    parts = [_dumps(item) for item in distinct]
    start = ((listing.page - 1) * listing.limit) % len(parts)
    head = b'{"data":{"transaction":['
    tail = b']},"links":' + _dumps(links) + b',"meta":' + _dumps(listing.meta) + b"}"
    lengths = [len(part) for part in parts]
    length = len(head) + len(tail) + max(count - 1, 0)
    length += sum(lengths[(start + index) % len(parts)] for index in range(count))

    def body() -> Iterator[bytes]:
        yield head
        for first in range(0, count, _OVERSIZED_CHUNK):
            last = min(first + _OVERSIZED_CHUNK, count)
            chunk = b",".join(parts[(start + index) % len(parts)] for index in range(first, last))
            yield (b"," + chunk) if first else chunk
        yield tail

    response = StreamingHttpResponse(body(), content_type="application/json")
    response["Content-Length"] = str(length)
    response[FAULT_HEADER] = "oversized_page" + (",malformed_row" if malformed else "")
    return response
