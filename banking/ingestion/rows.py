"""A bank transaction as a `transactions` row: the rules that turn one into the other, once.

`BankValues` is what the bank says of a transaction, normalised exactly as the table stores it
(amount in cents, texts clipped to their column): what decides "unchanged" against a stored row
and what categorisation reads. `TransactionRow` is the whole stored row. Both are named tuples:
fields by name everywhere, and a tuple is what COPY takes, at no cost per row.

Read from the model, never written down here a second time:
- the columns a COPY writes (`COPY_COLUMNS`): every concrete column but the id; a column the
  model gains and `TransactionRow` lacks (or the reverse) fails this module's import;
- each text's clip length (`clip_lengths`): the column's `max_length`, so widening a column
  widens what is kept, and the currency's default.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, NamedTuple

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from banking.clients.types import BankTransaction
from banking.models import Transaction

CENT = Decimal("0.01")


class BankValues(NamedTuple):
    """A bank transaction's own fields, normalised exactly as the database stores them."""

    amount: Decimal
    currency: str
    booking_date: datetime
    value_date: datetime | None
    status: str
    description: str
    merchant_name: str
    merchant_category: str
    mcc: str
    counterparty: str
    bank_transaction_code: str


class TransactionRow(NamedTuple):
    """One `transactions` row as the sync writes it: every column but the id (attribute names).

    `raw_json` is the bank's item: its JSON bytes for a COPY, the dict for the ORM.
    """

    user_id: int
    account_id: int
    bank_code: str
    bank_transaction_id: str
    amount: Decimal
    currency: str
    booking_date: datetime
    value_date: datetime | None
    status: str
    description: str
    merchant_name: str
    merchant_category: str
    mcc: str
    counterparty: str
    bank_transaction_code: str
    category_id: int | None
    category_source: str
    note: str
    is_own_transfer: bool
    transfer_pair_id: int | None
    raw_json: bytes | dict[str, Any]
    created_at: datetime
    updated_at: datetime


# The bank's data compared to decide "unchanged" vs "updated"; raw_json follows whatever changed.
COMPARED_FIELDS: tuple[str, ...] = BankValues._fields
# Not `note`: the user's, never the bank's. A row the user categorised keeps its category.
UPDATE_FIELDS: tuple[str, ...] = (
    *COMPARED_FIELDS,
    "category",
    "category_source",
    "raw_json",
    "updated_at",
)
compared_values: Callable[[Any], tuple] = attrgetter(*COMPARED_FIELDS)
"""The compared fields of any row with them as attributes (a stored row read `named=True`)."""


def copy_columns(fields: Sequence[models.Field] | None = None) -> tuple[str, ...]:
    """The table's columns in `TransactionRow`'s order: every concrete column of the model but
    the id. ImproperlyConfigured if the row and the model do not have the same ones."""
    if fields is None:
        fields = Transaction._meta.concrete_fields
    columns = {
        field.attname: field.column for field in fields if field.column and not field.primary_key
    }
    missing = sorted(set(columns) - set(TransactionRow._fields))
    unknown = sorted(set(TransactionRow._fields) - set(columns))
    if missing or unknown:
        raise ImproperlyConfigured(
            f"banking.ingestion.rows.TransactionRow must hold every column of {Transaction._meta}"
            f" but the id: missing {missing}, not in the model {unknown}"
        )
    return tuple(columns[name] for name in TransactionRow._fields)


COPY_COLUMNS = copy_columns()


def _max_length(model: type[models.Model], field_name: str) -> int | None:
    return getattr(model._meta.get_field(field_name), "max_length", None)


def clip_lengths(model: type[models.Model] = Transaction) -> dict[str, int]:
    """The `max_length` of each of the bank's text fields that has one, as the model says now."""
    lengths = {}
    for name in COMPARED_FIELDS:
        max_length = _max_length(model, name)
        if max_length:
            lengths[name] = max_length
    return lengths


# The texts `bank_values` clips: each to its column's max_length, read from the model.
_CLIPPED = (
    "currency",
    "status",
    "merchant_name",
    "merchant_category",
    "mcc",
    "counterparty",
    "bank_transaction_code",
)


def bank_values_normaliser(
    lengths: dict[str, int] | None = None,
) -> Callable[[BankTransaction], BankValues]:
    """A function normalising bank transactions with these clip lengths (the model's if None).

    ImproperlyConfigured if the lengths name other texts than the ones it clips (a text column
    that gains a max_length needs its clip here before a row can be stored)."""
    if lengths is None:
        lengths = clip_lengths()
    if set(lengths) != set(_CLIPPED):
        raise ImproperlyConfigured(
            f"bank_values clips {sorted(_CLIPPED)}; the model limits {sorted(lengths)}"
        )
    currency_length = lengths["currency"]
    status_length = lengths["status"]
    merchant_name_length = lengths["merchant_name"]
    merchant_category_length = lengths["merchant_category"]
    mcc_length = lengths["mcc"]
    counterparty_length = lengths["counterparty"]
    code_length = lengths["bank_transaction_code"]
    default_currency = Transaction._meta.get_field("currency").default
    new = tuple.__new__

    def bank_values(bank_tx: BankTransaction) -> BankValues:
        """The bank's fields of `bank_tx` as the table stores them (runs per row: inlined)."""
        return new(
            BankValues,
            (  # BankValues' order; a test pins each field to its source by name
                bank_tx.amount.quantize(CENT),
                (bank_tx.currency or "")[:currency_length] or default_currency,
                bank_tx.booking_date,
                bank_tx.value_date,
                (bank_tx.status or "")[:status_length],
                bank_tx.description or "",
                (bank_tx.merchant_name or "")[:merchant_name_length],
                (bank_tx.merchant_category or "")[:merchant_category_length],
                (bank_tx.mcc or "")[:mcc_length],
                (bank_tx.counterparty or "")[:counterparty_length],
                (bank_tx.bank_transaction_code or "")[:code_length],
            ),
        )

    return bank_values


bank_values = bank_values_normaliser()

# A row's category: (category id, CategorySource value).
Category = tuple[int | None, str]
RowBuilder = Callable[[BankTransaction, BankValues, Category, Any], TransactionRow]


def row_builder(*, user_id: int, account_id: int, bank_code: str, now: datetime) -> RowBuilder:
    """A function making one account's stored rows, stamped `now`, from (bank transaction, its
    values, its category, its raw_json)."""
    new = tuple.__new__

    def transaction_row(
        bank_tx: BankTransaction, values: BankValues, category: Category, raw_json: Any
    ) -> TransactionRow:
        category_id, category_source = category
        return new(
            TransactionRow,
            (  # TransactionRow's order; a test pins each field to its source by name
                user_id,
                account_id,
                bank_code,
                bank_tx.transaction_id,
                *values,
                category_id,
                category_source,
                "",  # note: the user's own, never the bank's
                False,  # is_own_transfer: paired after the sync
                None,  # transfer_pair_id
                raw_json,
                now,
                now,
            ),
        )

    return transaction_row


def same_values(stored: tuple, values: BankValues) -> bool:
    """Whether stored compared fields (COMPARED_FIELDS order) equal a bank row's."""
    return all(
        (a.quantize(CENT) == b if isinstance(a, Decimal) else a == b)
        for a, b in zip(stored, values, strict=True)
    )


def clipped(model: type[models.Model], field_name: str, value: str | None) -> str:
    """`value` ("" for None) cut to the model field's max_length, as the model says now: for
    the few rows of accounts, balances, products and agreements (not per transaction)."""
    text = value or ""
    max_length = _max_length(model, field_name)
    return text[:max_length] if max_length else text
