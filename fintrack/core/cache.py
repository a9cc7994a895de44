"""A cache in one SQLite file, shared by every process of the embedded default (web and worker).

The embedded default runs without Redis. With Django's in-memory cache each process had its own:
the web process set "a recomputation is scheduled" and the worker, which clears it, never saw it,
so `recomputing: true` stuck for ten minutes; throttles counted per process. Django's
DatabaseCache would share the data, but its `incr` is a read then a write (two processes bumping
one counter both read 3 and write 4), and it needs a table in the main database.

Here `add` and `incr` are atomic across processes: each runs in one `BEGIN IMMEDIATE`
transaction (SQLite's write lock), and integers are stored as SQLite integers so `incr` is one
`UPDATE … SET value = value + ?`. Other values are pickled. Expired rows are ignored on read and
culled when the table grows past MAX_ENTRIES. Each thread keeps its own SQLite connection (WAL
journal, so readers do not wait for a writer).

    CACHES = {"default": {"BACKEND": "fintrack.core.cache.SQLiteFileCache",
                          "LOCATION": "/path/to/cache.sqlite3"}}
"""

import pickle
import sqlite3
import threading
import time
from pathlib import Path

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cache ("
    " key TEXT PRIMARY KEY, value BLOB, is_int INTEGER NOT NULL, expires REAL)"
)
_BUSY_TIMEOUT_SECONDS = 5.0
_CULL_EVERY = 100


class SQLiteFileCache(BaseCache):
    def __init__(self, location: str, params: dict):
        super().__init__(params)
        self.path = Path(location)
        self._local = threading.local()
        self._sets = 0  # culled every _CULL_EVERY sets of this process

    # --- connection ---------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: autocommit; transactions are opened explicitly below.
            db = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            self._local.db = db
        return db

    def _write(self, operation):
        """Run `operation(db, now)` in one immediate (write-locked) transaction."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = operation(db, time.time())
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    # --- values -------------------------------------------------------------------------------

    @staticmethod
    def _encode(value) -> tuple[object, int]:
        if type(value) is int:
            return value, 1
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL), 0

    @staticmethod
    def _decode(value, is_int: int):
        # Only FinTrack's own processes write this file (in FINTRACK_VAR_DIR), as with Django's
        # own file and database caches, which pickle too.
        return value if is_int else pickle.loads(value)  # noqa: S301

    def _expiry(self, timeout) -> float | None:
        expiry = self.get_backend_timeout(timeout)
        return None if expiry is None else float(expiry)

    def _cull(self, db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM cache WHERE expires IS NOT NULL AND expires <= ?", (now,))
        (count,) = db.execute("SELECT COUNT(*) FROM cache").fetchone()
        if count > self._max_entries:
            surplus = count - self._max_entries + count // max(self._cull_frequency, 1)
            db.execute(
                "DELETE FROM cache WHERE key IN"
                " (SELECT key FROM cache ORDER BY expires IS NULL, expires LIMIT ?)",
                (surplus,),
            )

    # --- the cache API ------------------------------------------------------------------------

    def get(self, key, default=None, version=None):
        key = self.make_and_validate_key(key, version=version)
        row = (
            self._db()
            .execute(
                "SELECT value, is_int FROM cache"
                " WHERE key = ? AND (expires IS NULL OR expires > ?)",
                (key, time.time()),
            )
            .fetchone()
        )
        return default if row is None else self._decode(*row)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        stored, is_int = self._encode(value)
        expires = self._expiry(timeout)

        def operation(db, now):
            db.execute(
                "INSERT OR REPLACE INTO cache (key, value, is_int, expires) VALUES (?, ?, ?, ?)",
                (key, stored, is_int, expires),
            )
            self._sets += 1
            if self._sets % _CULL_EVERY == 0:
                self._cull(db, now)

        self._write(operation)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        stored, is_int = self._encode(value)
        expires = self._expiry(timeout)

        def operation(db, now):
            db.execute(
                "DELETE FROM cache WHERE key = ? AND expires IS NOT NULL AND expires <= ?",
                (key, now),
            )
            cursor = db.execute(
                "INSERT OR IGNORE INTO cache (key, value, is_int, expires) VALUES (?, ?, ?, ?)",
                (key, stored, is_int, expires),
            )
            return cursor.rowcount == 1

        return self._write(operation)

    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)

        def operation(db, now):
            row = db.execute(
                "SELECT is_int FROM cache WHERE key = ? AND (expires IS NULL OR expires > ?)",
                (key, now),
            ).fetchone()
            if row is None:
                raise ValueError(f"Key '{key}' not found")
            if not row[0]:
                raise TypeError(f"Key '{key}' does not hold an integer")
            db.execute("UPDATE cache SET value = value + ? WHERE key = ?", (delta, key))
            return db.execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()[0]

        return self._write(operation)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        expires = self._expiry(timeout)

        def operation(db, now):
            cursor = db.execute(
                "UPDATE cache SET expires = ? WHERE key = ? AND (expires IS NULL OR expires > ?)",
                (expires, key, now),
            )
            return cursor.rowcount == 1

        return self._write(operation)

    def delete(self, key, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._write(
            lambda db, now: db.execute("DELETE FROM cache WHERE key = ?", (key,)).rowcount == 1
        )

    def has_key(self, key, version=None) -> bool:
        return self.get(key, _MISSING, version=version) is not _MISSING

    def clear(self) -> None:
        self._write(lambda db, now: db.execute("DELETE FROM cache"))

    def close(self, **kwargs) -> None:
        # Kept open across requests (one per thread); closed with the thread or the process.
        pass


_MISSING = object()
