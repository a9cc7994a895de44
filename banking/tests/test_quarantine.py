"""Quarantined bank items (banking.ingestion.quarantine): a transaction item the bank sent
malformed is kept raw once per account, counted each time a sync reads it again, resolved when a
read stores it well-formed or a complete read no longer lists it; the connection keeps the count
of open ones, and the admin shows them read-only."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from banking.ingestion import quarantine
from banking.ingestion.quarantine import QuarantineKeeper, QuarantineState, quarantine_key
from banking.models import BankConnection, QuarantinedBankItem
from banking.tests import factories

T0 = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)


def _item(tx_id, when=T0, amount="12,50") -> dict:
    return {
        "transactionId": tx_id,
        "amount": {"amount": amount, "currency": "RUB"},
        "creditDebitIndicator": "Debit",
        "bookingDateTime": when.isoformat().replace("+00:00", "Z") if when else None,
    }


def _skipped(*items) -> list[dict]:
    return [{"reason": f"{i.get('transactionId')}: bad amount", "item": i} for i in items]


def _read(account, items, *, stored=(), complete=True, window_start=None) -> QuarantineState:
    keeper = QuarantineKeeper(account=account)
    keeper.add(_skipped(*items))
    return keeper.settle(stored_ids=set(stored), complete=complete, window_start=window_start)


@pytest.fixture
def account(db, user):
    return factories.make_account(user=user)


def test_a_malformed_item_is_kept_raw_with_its_reason_and_counted_on_the_connection(account):
    bad = _item("tx-1", T0 - timedelta(days=4))

    state = _read(account, [bad, _item("tx-2")])

    assert state == QuarantineState(open_items=2, oldest_booked=T0 - timedelta(days=4))
    kept = QuarantinedBankItem.objects.get(bank_transaction_id="tx-1")
    assert (kept.item_key, kept.raw_json, kept.reason) == ("tx-1", bad, "tx-1: bad amount")
    assert (kept.connection_id, kept.times_seen, kept.resolved_at) == (
        account.connection_id,
        1,
        None,
    )
    assert kept.first_seen_at == kept.last_seen_at
    assert BankConnection.objects.get(pk=account.connection_id).quarantined_items_open == 2


def test_an_item_read_again_is_one_row_seen_twice(account):
    _read(account, [_item("tx-1")])
    first = QuarantinedBankItem.objects.get()

    _read(account, [_item("tx-1", amount="NaN")])

    again = QuarantinedBankItem.objects.get()
    assert again.pk == first.pk
    assert again.times_seen == 2
    assert again.first_seen_at == first.first_seen_at
    assert again.last_seen_at > first.last_seen_at
    assert again.raw_json["amount"]["amount"] == "NaN"  # the latest of what the bank sent


def test_an_item_listed_twice_in_one_read_is_kept_once(account):
    keeper = QuarantineKeeper(account=account)
    assert len(keeper.add(_skipped(_item("tx-1"), _item("tx-2")))) == 2
    assert len(keeper.add(_skipped(_item("tx-1")))) == 0  # a repeated page: not new

    keeper.settle(stored_ids=set(), complete=True, window_start=None)

    assert QuarantinedBankItem.objects.filter(times_seen=1).count() == 2


def test_an_item_the_bank_sends_well_formed_is_resolved_as_stored(account):
    _read(account, [_item("tx-1"), _item("tx-2")])

    state = _read(account, [_item("tx-2")], stored={"tx-1"})

    resolved = QuarantinedBankItem.objects.get(bank_transaction_id="tx-1")
    assert (resolved.resolution, resolved.resolved_at is not None) == ("stored", True)
    assert state.open_items == 1
    assert BankConnection.objects.get(pk=account.connection_id).quarantined_items_open == 1


def test_an_item_read_malformed_and_well_formed_in_one_read_is_not_kept(account):
    state = _read(account, [_item("tx-1")], stored={"tx-1"})

    assert state == QuarantineState()
    assert not QuarantinedBankItem.objects.exists()


def test_an_item_without_an_id_is_keyed_by_its_json(account):
    nameless = {**_item(None), "bookingDateTime": "soon"}

    state = _read(account, [nameless])

    kept = QuarantinedBankItem.objects.get()
    assert kept.item_key == quarantine_key(nameless)
    assert kept.item_key.startswith("sha256:") and len(kept.item_key) == 7 + 64
    assert (kept.bank_transaction_id, kept.booking_date) == ("", None)
    assert state == QuarantineState(open_items=1, oldest_booked=None, booked_unknown=True)
    assert quarantine_key("not an object") != quarantine_key("another")
    assert quarantine_key({"transactionId": "x" * 129}).startswith("sha256:")


def test_an_item_no_longer_listed_is_resolved_only_by_a_complete_read_that_covered_it(account):
    old = _item("tx-old", T0 - timedelta(days=30))
    _read(account, [old])

    # Not seen again, but the read was short of the bank's count: it may still be there.
    assert _read(account, [], complete=False).open_items == 1
    # Complete, but only a window newer than the item: not covered.
    assert _read(account, [], window_start=T0 - timedelta(days=3)).open_items == 1
    # Complete and covering it: the bank no longer lists it.
    state = _read(account, [], window_start=T0 - timedelta(days=40))

    assert state == QuarantineState()
    assert QuarantinedBankItem.objects.get().resolution == "no longer listed"
    assert BankConnection.objects.get(pk=account.connection_id).quarantined_items_open == 0


def test_a_resolved_item_sent_malformed_again_is_reopened(account):
    _read(account, [_item("tx-1")])
    _read(account, [], stored={"tx-1"})

    state = _read(account, [_item("tx-1")])

    item = QuarantinedBankItem.objects.get()
    assert (item.resolved_at, item.resolution, item.times_seen) == (None, "", 2)
    assert state.open_items == 1


def test_more_items_than_are_kept_in_one_read_are_counted_not_kept(account, monkeypatch):
    monkeypatch.setattr(quarantine, "MAX_ITEMS_PER_READ", 3)
    keeper = QuarantineKeeper(account=account)

    keeper.add(_skipped(*(_item(f"tx-{n}") for n in range(5))))
    keeper.settle(stored_ids=set(), complete=True, window_start=None)

    assert (keeper.read_count, keeper.overflow) == (5, 2)
    assert QuarantinedBankItem.objects.count() == 3


def test_a_read_with_nothing_quarantined_costs_one_query(account, django_assert_num_queries):
    with django_assert_num_queries(1):  # the account's open items
        keeper = QuarantineKeeper(account=account)
        state = keeper.settle(stored_ids={"tx-1"}, complete=True, window_start=None)

    assert state == QuarantineState()


# --- Admin --------------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, django_user_model):
    staff = django_user_model.objects.create_superuser(
        email="ops@example.com", password="Ops-pass-2026"
    )
    client.force_login(staff)
    return client


def test_the_admin_lists_quarantined_items_read_only_with_the_raw_json(staff_client, account):
    _read(account, [{**_item("tx-1"), "transactionInformation": "<script>x</script>"}])
    _read(account, [_item("tx-2")], complete=False)  # tx-1 not seen, the read short: open
    item = QuarantinedBankItem.objects.get(bank_transaction_id="tx-1")

    changelist = staff_client.get(
        reverse("admin:banking_quarantinedbankitem_changelist"), {"state": "open"}
    )
    change = staff_client.get(reverse("admin:banking_quarantinedbankitem_change", args=[item.pk]))
    add = staff_client.get(reverse("admin:banking_quarantinedbankitem_add"))

    assert changelist.status_code == 200
    assert "tx-1: bad amount" in changelist.content.decode()
    assert change.status_code == 200
    page = change.content.decode()
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x</script>" not in page
    assert 'name="_save"' not in page  # read-only
    assert add.status_code == 403


def test_a_stored_row_the_bank_now_sends_malformed_is_not_held_and_its_open_item_resolves(account):
    # Kept, it would never clear: the watermark is already past it, so no read reaches it again.
    factories.make_transaction(
        account=account, amount="-12.50", booking_date=T0, bank_transaction_id="tx-1"
    )
    other = factories.make_account(user=account.user, bank_code="abank", bank_account_id="acc-2")
    _read(other, [_item("tx-1")])  # the same id at another account is held there

    state = _read(account, [_item("tx-1"), _item("tx-2")])

    assert state.open_items == 1
    assert list(
        QuarantinedBankItem.objects.filter(account=account).values_list(
            "bank_transaction_id", flat=True
        )
    ) == ["tx-2"]
    assert QuarantinedBankItem.objects.filter(account=other, resolved_at__isnull=True).count() == 1
