"""Bank items that cannot be stored as sent: kept raw (quarantined), seen again, then resolved.

The items of a transactions page that fail to parse (banking.clients.parsing.transaction: a bad
amount, no id, no booking time…) come here from the reader (sync.reader), one `QuarantineKeeper`
per account read. Each is kept once per account, keyed by the bank's id when it has a usable one
(else a digest of its JSON), with the reason, the raw item and how often it was seen. While one is
open its account's watermark stays at or below its booking time, so every sync reads it again;
it is resolved when the bank sends it well-formed (stored as any other row) or a complete read no
longer lists it. The connection keeps the count of its open items (`quarantined_items_open`).
"""

import hashlib
import logging
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from banking.clients import parsing
from banking.models import Account, BankConnection, QuarantinedBankItem, Transaction

logger = logging.getLogger(__name__)

# Items kept per account and read: a bank sending every row malformed must not fill memory or
# the table; the rest are counted, and the account's watermark stays (its read is incomplete).
MAX_ITEMS_PER_READ = 1000
REASON_LENGTH = 300
RESOLVED_STORED = "stored"
RESOLVED_NOT_LISTED = "no longer listed"
_BATCH = 500


@dataclass(frozen=True, slots=True)
class QuarantineState:
    """An account's open quarantined items after a read: how many, and what holds its watermark."""

    open_items: int = 0
    oldest_booked: datetime | None = None  # the oldest readable booking time among them
    booked_unknown: bool = False  # one of them has no readable booking time


@dataclass(slots=True)
class _ReadItem:
    key: str
    bank_id: str  # "" when the item has no usable id
    booked: datetime | None
    reason: str
    raw: Any


def _bank_id(item: Any) -> str:
    """The item's transactionId when usable as one (what a well-formed row is stored under)."""
    if not isinstance(item, dict):
        return ""
    raw_id = item.get("transactionId")
    if not isinstance(raw_id, str | int) or isinstance(raw_id, bool):
        return ""
    transaction_id = str(raw_id).strip()
    if len(transaction_id) > parsing.MAX_TRANSACTION_ID_LENGTH:
        return ""
    return transaction_id


def quarantine_key(item: Any) -> str:
    """The identity of an unparseable item: its bank id, else a digest of its JSON."""
    bank_id = _bank_id(item)
    if bank_id:
        return bank_id
    text = orjson.dumps(item, option=orjson.OPT_SORT_KEYS, default=str)
    return "sha256:" + hashlib.sha256(text).hexdigest()


def _booked(item: Any) -> datetime | None:
    return parsing.to_datetime(item.get("bookingDateTime")) if isinstance(item, dict) else None


class QuarantineKeeper:
    """One account's unparseable items as a read goes; recorded and settled at its end.

    Costs one query per account read when nothing is quarantined (its open items, read first).
    """

    def __init__(self, *, account: Account):
        self.account = account
        self._open: list[Any] = list(
            QuarantinedBankItem.objects.filter(account=account, resolved_at__isnull=True)
            .order_by()
            .values_list("pk", "item_key", "bank_transaction_id", "booking_date", named=True)
        )
        self._read: dict[str, _ReadItem] = {}
        self.overflow = 0  # distinct items read past MAX_ITEMS_PER_READ, not kept

    def add(self, entries: Iterable[dict]) -> list[dict]:
        """Items of a page that failed to parse ({"reason", "item"}); those new to this read."""
        new: list[dict] = []
        for entry in entries:
            item = entry.get("item", entry) if isinstance(entry, dict) else entry
            key = quarantine_key(item)
            if key in self._read:
                continue
            new.append(entry)
            if len(self._read) >= MAX_ITEMS_PER_READ:
                self.overflow += 1
                continue
            reason = entry.get("reason") if isinstance(entry, dict) else None
            self._read[key] = _ReadItem(
                key=key,
                bank_id=_bank_id(item),
                booked=_booked(item),
                reason=str(reason or "unparseable item")[:REASON_LENGTH],
                raw=item,
            )
        return new

    @property
    def read_count(self) -> int:
        """Distinct unparseable items read so far (kept or not)."""
        return len(self._read) + self.overflow

    def unseen_count(self, seen_ids: Container[str]) -> int:
        """Distinct unparseable items read, less those also read well-formed (in `seen_ids`)."""
        also_seen = sum(1 for read in self._read.values() if read.bank_id in seen_ids)
        return self.read_count - also_seen

    def unstored_count(self) -> int:
        """Distinct unparseable items read whose bank id is not among the account's stored rows
        (a stored row the bank now sends malformed is counted once, as stored)."""
        ids = [read.bank_id for read in self._read.values() if read.bank_id]
        stored = 0
        for start in range(0, len(ids), _BATCH):
            stored += Transaction.objects.filter(
                account=self.account, bank_transaction_id__in=ids[start : start + _BATCH]
            ).count()
        return self.read_count - stored

    def settle(
        self,
        *,
        stored_ids: Container[str],
        complete: bool,
        window_start: datetime | None,
    ) -> QuarantineState:
        """Record this read's items, resolve the open ones it stored or no longer saw, and
        return what stays open.

        `stored_ids`: the rows this read stored. `complete`: its rows reached the bank's count.
        `window_start`: the oldest booking time it covered (None: the whole account). An open
        item this read did not see again is resolved only by a complete read that covered it.
        """
        if not self._open and not self._read:
            return QuarantineState()
        now = timezone.now()
        # A row already stored well-formed (by this read or an earlier one) that the bank now
        # sends malformed loses nothing: not kept, and an open item of it is resolved as stored.
        # (Kept, it would hold nothing back: the watermark is past it, no read reaches it again.)
        already = self._stored_ids(
            [read.bank_id for read in self._read.values() if read.bank_id]
            + [item.bank_transaction_id for item in self._open if item.bank_transaction_id]
        )

        def is_stored(bank_id: str) -> bool:
            return bool(bank_id) and (bank_id in stored_ids or bank_id in already)

        kept = {key: read for key, read in self._read.items() if not is_stored(read.bank_id)}
        stored, not_listed = [], []
        for item in self._open:
            if is_stored(item.bank_transaction_id):
                stored.append(item.pk)
            elif item.item_key not in self._read and complete and _covered(item, window_start):
                not_listed.append(item.pk)
        with transaction.atomic():
            # One account of a connection at a time settles, so its count below is exact.
            list(BankConnection.objects.select_for_update().filter(pk=self.account.connection_id))
            if kept:
                self._record(kept, now)
            items = QuarantinedBankItem.objects.filter(account=self.account)
            if stored:
                items.filter(pk__in=stored).update(resolved_at=now, resolution=RESOLVED_STORED)
            if not_listed:
                items.filter(pk__in=not_listed).update(
                    resolved_at=now, resolution=RESOLVED_NOT_LISTED
                )
            state = items.filter(resolved_at__isnull=True).aggregate(
                open_items=Count("pk"),
                oldest_booked=Min("booking_date"),
                booked_unknown=Count("pk", filter=Q(booking_date__isnull=True)),
            )
            connection_open = QuarantinedBankItem.objects.filter(
                connection_id=self.account.connection_id, resolved_at__isnull=True
            ).count()
            BankConnection.objects.filter(pk=self.account.connection_id).update(
                quarantined_items_open=connection_open
            )
        if kept or stored or not_listed:
            logger.info(
                "account %s: %d item(s) quarantined, %d resolved as stored, %d no longer listed;"
                " %d open",
                self.account.pk,
                len(kept),
                len(stored),
                len(not_listed),
                state["open_items"],
            )
        return QuarantineState(
            open_items=state["open_items"],
            oldest_booked=state["oldest_booked"],
            booked_unknown=state["booked_unknown"] > 0,
        )

    def _stored_ids(self, ids: list[str]) -> set[str]:
        """Those of `ids` stored as rows of the account."""
        found: set[str] = set()
        for start in range(0, len(ids), _BATCH):
            found.update(
                Transaction.objects.filter(
                    account=self.account, bank_transaction_id__in=ids[start : start + _BATCH]
                ).values_list("bank_transaction_id", flat=True)
            )
        return found

    def _record(self, kept: dict[str, _ReadItem], now: datetime) -> None:
        """Insert items seen for the first time; seen again (or again malformed after being
        resolved) for the others: counted, reopened, their raw JSON and reason the latest."""
        keys = list(kept)
        existing: dict[str, QuarantinedBankItem] = {}
        for start in range(0, len(keys), _BATCH):
            for row in QuarantinedBankItem.objects.filter(
                account=self.account, item_key__in=keys[start : start + _BATCH]
            ).only("pk", "item_key", "times_seen"):
                existing[row.item_key] = row
        fresh: list[QuarantinedBankItem] = []
        seen_again: list[QuarantinedBankItem] = []
        for key, read in kept.items():
            known = existing.get(key)
            if known is None:
                fresh.append(
                    QuarantinedBankItem(
                        connection_id=self.account.connection_id,
                        account=self.account,
                        item_key=key,
                        bank_transaction_id=read.bank_id,
                        booking_date=read.booked,
                        reason=read.reason,
                        raw_json=read.raw,
                        first_seen_at=now,
                        last_seen_at=now,
                    )
                )
                continue
            known.times_seen += 1
            known.last_seen_at = now
            known.reason = read.reason
            known.raw_json = read.raw
            known.booking_date = read.booked
            known.resolved_at = None
            known.resolution = ""
            seen_again.append(known)
        if fresh:
            QuarantinedBankItem.objects.bulk_create(fresh, batch_size=_BATCH)
        if seen_again:
            QuarantinedBankItem.objects.bulk_update(
                seen_again,
                ["times_seen", "last_seen_at", "reason", "raw_json", "booking_date",
                 "resolved_at", "resolution"],
                batch_size=_BATCH,
            )  # fmt: skip


def _covered(item, window_start: datetime | None) -> bool:
    """Whether a read of the window from `window_start` on (None: everything) covered `item`."""
    if window_start is None or item.booking_date is None:
        return True
    return item.booking_date >= window_start
