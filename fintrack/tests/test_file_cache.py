"""The embedded default's cache (fintrack.core.cache.SQLiteFileCache) shared across processes."""

import multiprocessing
import time

import pytest

from fintrack.core.cache import SQLiteFileCache


def _cache(path) -> SQLiteFileCache:
    return SQLiteFileCache(str(path), {"OPTIONS": {"MAX_ENTRIES": 1000}})


def test_values_round_trip_and_expire(tmp_path):
    cache = _cache(tmp_path / "c.sqlite3")
    cache.set("number", 41)
    cache.set("object", {"a": [1, 2]})
    assert cache.get("number") == 41
    assert cache.get("object") == {"a": [1, 2]}
    assert cache.incr("number") == 42
    cache.set("short", "x", timeout=0.2)
    assert cache.get("short") == "x"
    time.sleep(0.3)
    assert cache.get("short") is None
    assert cache.get("missing", "default") == "default"


def test_add_only_when_absent_or_expired(tmp_path):
    cache = _cache(tmp_path / "c.sqlite3")
    assert cache.add("k", 1, timeout=0.2) is True
    assert cache.add("k", 2) is False
    assert cache.get("k") == 1
    time.sleep(0.3)
    assert cache.add("k", 3) is True
    assert cache.get("k") == 3


def test_incr_of_a_missing_or_expired_key_raises(tmp_path):
    cache = _cache(tmp_path / "c.sqlite3")
    with pytest.raises(ValueError):
        cache.incr("absent")
    cache.set("text", "abc")
    with pytest.raises(TypeError):
        cache.incr("text")


def test_a_second_cache_object_on_the_same_file_sees_the_data(tmp_path):
    path = tmp_path / "c.sqlite3"
    _cache(path).set("marker", 1)
    other = _cache(path)  # as another process would open it
    assert other.get("marker") == 1
    assert other.delete("marker") is True
    assert _cache(path).get("marker") is None


def _bump(path: str, times: int, added) -> None:
    cache = _cache(path)
    for _ in range(times):
        if cache.add("winner", 1):
            with added.get_lock():
                added.value += 1
        cache.add("counter", 0)
        cache.incr("counter")


def test_add_and_incr_are_atomic_across_processes(tmp_path):
    path = str(tmp_path / "c.sqlite3")
    _cache(path).get("warm-up")  # creates the file and table before the race
    spawn = multiprocessing.get_context("spawn")
    added = spawn.Value("i", 0)
    processes = [spawn.Process(target=_bump, args=(path, 200, added)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    cache = _cache(path)
    # Read-then-write would lose increments; 4 × 200 bumps must all count, and one add won.
    assert cache.get("counter") == 800
    assert added.value == 1


def test_culling_keeps_the_table_bounded(tmp_path):
    cache = SQLiteFileCache(str(tmp_path / "c.sqlite3"), {"OPTIONS": {"MAX_ENTRIES": 50}})
    for number in range(400):
        cache.set(f"k{number}", number)
    db = cache._db()
    (count,) = db.execute("SELECT COUNT(*) FROM cache").fetchone()
    assert count < 400
