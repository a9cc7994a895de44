from datetime import date
from decimal import Decimal

import pytest

from banking.models import Transaction, TransactionAggregate
from banking.services.money import money_refresh_after_sync
from banking.tests.factories import make_account, make_transaction
from banking.transfers import own_transfers_pair

pytestmark = pytest.mark.django_db
OWN = "Перевод между своими счетами"


def flags(*transactions):
    rows = Transaction.objects.in_bulk([t.id for t in transactions])
    return [(rows[t.id].is_own_transfer, rows[t.id].transfer_pair_id) for t in transactions]


def test_a_debit_and_its_credit_at_another_bank_are_paired(user):
    vbank = make_account(user=user, bank_code="vbank")
    abank = make_account(user=user, bank_code="abank")
    debit = make_transaction(
        account=vbank, amount="-5000.00", booking_date="2025-11-10", description=OWN
    )
    credit = make_transaction(
        account=abank, amount="5000.00", booking_date="2025-11-11", description=OWN
    )

    assert own_transfers_pair(user=user, since_date=None) == 1

    assert flags(debit, credit) == [(True, credit.id), (True, debit.id)]
    # The category stays what it was.
    assert Transaction.objects.get(id=debit.id).category.code == "transfers"


def test_look_alikes_are_left_alone(user, make_user):
    vbank = make_account(user=user, bank_code="vbank")
    abank = make_account(user=user, bank_code="abank")
    debit = make_transaction(
        account=vbank, amount="-5000.00", booking_date="2025-11-10", description=OWN
    )
    lookalikes = [
        # a different amount
        make_transaction(
            account=abank, amount="5000.01", booking_date="2025-11-10", description=OWN
        ),
        # the same account
        make_transaction(
            account=vbank, amount="5000.00", booking_date="2025-11-10", description=OWN
        ),
        # outside the ±3 day window
        make_transaction(
            account=abank, amount="5000.00", booking_date="2025-11-14", description=OWN
        ),
        make_transaction(
            account=abank, amount="5000.00", booking_date="2025-11-06", description=OWN
        ),
        # a salary credit of the same amount
        make_transaction(
            account=abank, amount="5000.00", booking_date="2025-11-10", description="💼 Зарплата"
        ),
        # another currency
        make_transaction(
            account=abank,
            amount="5000.00",
            booking_date="2025-11-10",
            description=OWN,
            currency="USD",
        ),
        # declined
        make_transaction(
            account=abank,
            amount="5000.00",
            booking_date="2025-11-10",
            description=OWN,
            status="declined",
        ),
    ]
    # another user's matching credit
    stranger_account = make_account(user=make_user(), bank_code="abank")
    foreign = make_transaction(
        account=stranger_account, amount="5000.00", booking_date="2025-11-10", description=OWN
    )

    assert own_transfers_pair(user=user, since_date=None) == 0

    assert flags(debit, *lookalikes, foreign) == [(False, None)] * 9


def test_a_purchase_matching_a_credit_is_not_an_own_transfer(user):
    vbank = make_account(user=user, bank_code="vbank")
    abank = make_account(user=user, bank_code="abank")
    purchase = make_transaction(
        account=vbank,
        amount="-2731.40",
        booking_date="2025-11-10",
        description="🏪 Продукты",
        mcc="5411",
    )
    credit = make_transaction(
        account=abank, amount="2731.40", booking_date="2025-11-10", description=OWN
    )

    assert own_transfers_pair(user=user, since_date=None) == 0
    assert flags(purchase, credit) == [(False, None), (False, None)]


def test_the_closest_credit_wins_then_the_lowest_id(user):
    vbank = make_account(user=user, bank_code="vbank")
    abank = make_account(user=user, bank_code="abank")
    sbank = make_account(user=user, bank_code="sbank")
    debit = make_transaction(
        account=vbank, amount="-100.00", booking_date="2025-11-10", description=OWN
    )
    far = make_transaction(
        account=abank, amount="100.00", booking_date="2025-11-12", description=OWN
    )
    near = make_transaction(
        account=sbank, amount="100.00", booking_date="2025-11-11", description=OWN
    )
    second_debit = make_transaction(
        account=vbank, amount="-100.00", booking_date="2025-11-20", description=OWN
    )
    tie_low = make_transaction(
        account=abank, amount="100.00", booking_date="2025-11-21", description=OWN
    )
    tie_high = make_transaction(
        account=sbank, amount="100.00", booking_date="2025-11-21", description=OWN
    )

    assert own_transfers_pair(user=user, since_date=None) == 2

    assert flags(debit, near, far) == [(True, near.id), (True, debit.id), (False, None)]
    assert flags(second_debit, tie_low, tie_high) == [
        (True, tie_low.id),
        (True, second_debit.id),
        (False, None),
    ]


def test_each_transaction_is_paired_at_most_once(user):
    vbank = make_account(user=user, bank_code="vbank")
    abank = make_account(user=user, bank_code="abank")
    first = make_transaction(
        account=vbank, amount="-300.00", booking_date="2025-11-10", description=OWN
    )
    second = make_transaction(
        account=vbank, amount="-300.00", booking_date="2025-11-10", description=OWN
    )
    credit = make_transaction(
        account=abank, amount="300.00", booking_date="2025-11-10", description=OWN
    )

    assert own_transfers_pair(user=user, since_date=None) == 1
    assert own_transfers_pair(user=user, since_date=None) == 0

    assert flags(first, second, credit) == [(True, credit.id), (False, None), (True, first.id)]


def test_pairing_reaches_back_only_the_window_before_since_date(user):
    vbank = make_account(user=user, bank_code="vbank")
    abank = make_account(user=user, bank_code="abank")
    old_debit = make_transaction(
        account=vbank, amount="-10.00", booking_date="2025-10-01", description=OWN
    )
    old_credit = make_transaction(
        account=abank, amount="10.00", booking_date="2025-10-01", description=OWN
    )
    edge_debit = make_transaction(
        account=vbank, amount="-20.00", booking_date="2025-11-07", description=OWN
    )
    new_credit = make_transaction(
        account=abank, amount="20.00", booking_date="2025-11-10", description=OWN
    )

    assert own_transfers_pair(user=user, since_date=date(2025, 11, 10)) == 1

    assert flags(old_debit, old_credit) == [(False, None), (False, None)]
    assert flags(edge_debit, new_credit) == [(True, new_credit.id), (True, edge_debit.id)]


def test_the_window_comes_from_settings(user, settings):
    settings.OWN_TRANSFER_WINDOW_DAYS = 5
    vbank = make_account(user=user, bank_code="vbank")
    abank = make_account(user=user, bank_code="abank")
    debit = make_transaction(
        account=vbank, amount="-5000.00", booking_date="2025-11-10", description=OWN
    )
    credit = make_transaction(
        account=abank, amount="5000.00", booking_date="2025-11-15", description=OWN
    )

    assert own_transfers_pair(user=user, since_date=None) == 1
    assert flags(debit, credit) == [(True, credit.id), (True, debit.id)]


def test_own_transfers_count_as_neither_income_nor_spending(user):
    vbank = make_account(user=user, bank_code="vbank")
    abank = make_account(user=user, bank_code="abank")
    make_transaction(
        account=vbank, amount="100000.00", booking_date="2025-11-01", description="💼 Зарплата"
    )
    make_transaction(account=vbank, amount="-40000.00", booking_date="2025-11-02", description=OWN)
    make_transaction(account=abank, amount="40000.00", booking_date="2025-11-03", description=OWN)
    make_transaction(
        account=abank, amount="-1200.00", booking_date="2025-11-03", description="🏪 Продукты"
    )

    money_refresh_after_sync(user=user, since_date=None)

    rows = TransactionAggregate.objects.filter(user=user).order_by("date")
    assert [(r.date, r.category.code, r.income, r.spending, r.transaction_count) for r in rows] == [
        (date(2025, 11, 1), "salary", Decimal("100000.00"), Decimal("0.00"), 1),
        (date(2025, 11, 3), "groceries", Decimal("0.00"), Decimal("1200.00"), 1),
    ]


def test_a_repeat_run_changes_nothing(user):
    vbank = make_account(user=user, bank_code="vbank")
    abank = make_account(user=user, bank_code="abank")
    debit = make_transaction(
        account=vbank, amount="-70.00", booking_date="2025-11-10", description=OWN
    )
    credit = make_transaction(
        account=abank, amount="70.00", booking_date="2025-11-10", description=OWN
    )
    make_transaction(
        account=abank, amount="-15.50", booking_date="2025-11-10", description="Аптека"
    )
    money_refresh_after_sync(user=user, since_date=None)
    before = list(
        TransactionAggregate.objects.values_list("date", "category_id", "income", "spending")
    )

    money_refresh_after_sync(user=user, since_date=date(2025, 11, 10))

    assert flags(debit, credit) == [(True, credit.id), (True, debit.id)]
    after = list(
        TransactionAggregate.objects.values_list("date", "category_id", "income", "spending")
    )
    assert after == before
    assert [(row[2], row[3]) for row in after] == [(Decimal("0.00"), Decimal("15.50"))]


def test_pairs_past_one_update_batch_each_point_at_their_own_twin(user, monkeypatch):
    """More pairs than one UPDATE writes (a batch of 3 here): every leg of every batch is
    flagged and points at its own twin; rows not paired are untouched."""
    from banking import transfers

    monkeypatch.setattr(transfers, "_PAIRS_PER_UPDATE", 3)
    vbank = make_account(user=user, bank_code="vbank")
    abank = make_account(user=user, bank_code="abank")
    legs = []
    for number in range(8):  # distinct amounts: each debit has exactly one possible credit
        amount = Decimal("1000.00") + number
        debit = make_transaction(
            account=vbank, amount=-amount, booking_date="2025-11-10", description=OWN
        )
        credit = make_transaction(
            account=abank, amount=amount, booking_date="2025-11-11", description=OWN
        )
        legs.append((debit, credit))
    alone = make_transaction(
        account=abank, amount="77.00", booking_date="2025-11-11", description=OWN
    )

    assert own_transfers_pair(user=user, since_date=None) == 8

    for debit, credit in legs:
        assert flags(debit, credit) == [(True, credit.id), (True, debit.id)]
    assert flags(alone) == [(False, None)]


def _pairs_by_brute_force(user) -> set[tuple[int, int]]:
    """The pairing rule read plainly: debits in booking order, each taking the closest unused
    credit of the opposite amount at another account within ±window UTC days (then lowest id)."""
    rows = list(
        Transaction.objects.filter(user=user)
        .order_by("booking_date", "id")
        .values_list("id", "account_id", "amount", "booking_date")
    )
    used, pairs = set(), set()
    for debit_id, debit_account, amount, booked in rows:
        if amount >= 0:
            continue
        options = [
            (abs((at - booked).total_seconds()), credit_id)
            for credit_id, account, credit_amount, at in rows
            if credit_amount == -amount
            and account != debit_account
            and credit_id not in used
            and abs((at.date() - booked.date()).days) <= 3
        ]
        if options:
            credit_id = min(options)[1]
            used.add(credit_id)
            pairs.add((debit_id, credit_id))
    return pairs


def test_pairing_matches_the_rule_on_many_repeated_amounts(user):
    """A few amounts repeated over weeks, booked at all hours (window edges at UTC midnight
    included): the pairs found are those of the rule applied plainly, pair by pair."""
    import random
    from datetime import UTC, datetime, timedelta

    chance = random.Random(7)
    accounts = [make_account(user=user, bank_code=code) for code in ("vbank", "abank", "sbank")]
    start = datetime(2025, 9, 1, tzinfo=UTC)
    for _ in range(160):
        amount = Decimal(chance.choice(["500.00", "1500.00", "20000.00"]))
        booked = start + timedelta(minutes=chance.randrange(0, 60 * 24 * 40))
        if chance.random() < 0.2:  # right at a day's edge
            booked = booked.replace(hour=chance.choice([0, 23]), minute=chance.choice([0, 59]))
        make_transaction(
            account=chance.choice(accounts),
            amount=amount if chance.random() < 0.5 else -amount,
            booking_date=booked,
            description=OWN,
        )
    expected = _pairs_by_brute_force(user)
    assert len(expected) > 20  # the data really pairs, at repeated amounts

    assert own_transfers_pair(user=user, since_date=None) == len(expected)

    stored = set(
        Transaction.objects.filter(
            user=user, amount__lt=0, transfer_pair__isnull=False
        ).values_list("id", "transfer_pair_id")
    )
    assert stored == expected
