"""A transactions read's progress by work (sync/progress.py): pages once the first page says how
many, an account not begun yet counted as the mean of those known, counts as written."""

from datetime import UTC, datetime, timedelta

from sync.progress import ReadProgress
from sync.reader import TransactionCounts


def _read(accounts: int, base: TransactionCounts | None = None):
    per_account = [TransactionCounts() for _ in range(accounts)]
    return ReadProgress(base=base or TransactionCounts(), per_account=per_account), per_account


def test_accounts_weigh_their_pages_once_known_and_the_mean_before():
    read, _counts = _read(2)

    assert (read.fraction(), read.pages()) == (0.0, (0, None))
    read.page(0, 5, 10)  # half of a 10-page account; the other one counts as 10 too
    assert (read.fraction(), read.pages()) == (0.25, (5, 20))
    read.page(1, 1, 30)  # the other one has 30: its page 1 counts, the weights follow
    assert (read.fraction(), read.pages()) == (6 / 40, (6, 40))
    read.finished(0)
    assert (read.fraction(), read.pages()) == (11 / 40, (11, 40))
    read.finished(1)
    assert (read.fraction(), read.pages()) == (1.0, (40, 40))


def test_a_bank_that_says_no_page_count_moves_by_finished_accounts():
    read, _counts = _read(4)

    read.page(0, 7, None)
    assert (read.fraction(), read.pages()) == (0.0, (0, None))
    read.finished(0)
    assert read.fraction() == 0.25
    assert read.pages() == (7, 28)  # its 7 pages known now; the others count as that mean


def test_an_account_reading_past_its_count_is_done_not_more_than_done():
    read, _counts = _read(1)

    read.page(0, 12, 10)  # repair pages past the bank's count
    assert read.fraction() == 1.0
    assert read.pages() == (12, 12)


def test_counts_are_those_written_so_far_on_every_account_plus_the_earlier_ones():
    earlier = datetime(2025, 11, 18, 9, 0, tzinfo=UTC)
    base = TransactionCounts(added=100, updated=1, changed_since=earlier)
    read, per_account = _read(2, base)
    per_account[0].added += 50
    per_account[1].added += 25
    per_account[1].unchanged += 3

    assert read.counts() == {
        "transactions_added": 175,
        "transactions_updated": 1,
        "transactions_unchanged": 3,
        "transactions_removed": 0,
        "transactions_skipped": 0,
        "transactions_changed_since": earlier,
    }
    # The oldest booking time any write touched, this attempt's or an earlier one's.
    per_account[1].note_changed(earlier - timedelta(days=2))
    per_account[0].note_changed(earlier + timedelta(days=1))
    assert read.counts()["transactions_changed_since"] == earlier - timedelta(days=2)
