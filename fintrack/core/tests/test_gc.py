"""The GC threshold raised for bulk work, and put back."""

import gc
import threading

from fintrack.core.gc import fewer_collections


def test_threshold_is_raised_inside_and_restored_after():
    before = gc.get_threshold()

    with fewer_collections(threshold0=before[0] + 5_000):
        inside = gc.get_threshold()

    assert inside == (before[0] + 5_000, *before[1:])
    assert gc.get_threshold() == before


def test_never_lowers_a_threshold_already_higher():
    before = gc.get_threshold()
    gc.set_threshold(before[0] + 50_000, *before[1:])
    try:
        with fewer_collections(threshold0=before[0] + 1):
            assert gc.get_threshold()[0] == before[0] + 50_000
    finally:
        gc.set_threshold(*before)


def test_overlapping_blocks_on_two_threads_restore_only_when_the_last_one_ends():
    before = gc.get_threshold()
    entered, release = threading.Event(), threading.Event()

    def other_job():
        with fewer_collections(threshold0=before[0] + 7_000):
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=other_job)
    thread.start()
    entered.wait(5)
    with fewer_collections(threshold0=before[0] + 7_000):
        pass
    still_raised = gc.get_threshold()  # this block ended, the other thread's has not
    release.set()
    thread.join(5)

    assert still_raised[0] == before[0] + 7_000
    assert gc.get_threshold() == before


def test_restored_when_the_block_raises():
    before = gc.get_threshold()
    try:
        with fewer_collections(threshold0=before[0] + 3_000):
            raise ValueError("boom")
    except ValueError:
        pass

    assert gc.get_threshold() == before
