"""The corrections store: drawings people marked right or wrong, with their labels, in one SQLite file.

Nothing acknowledged is lost: a row is committed in WAL mode with synchronous=FULL (the WAL is fsynced before
`add` returns), so a SIGKILL or a power cut after `add` keeps it. Several pre-forked workers write at once; SQLite
serializes them and the busy timeout makes a writer wait rather than fail. The size cap refuses, it never deletes.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mnist_edge.runtime.errors import (
    ImageDecodeError, MalformedRequestError, MnistEdgeError, PayloadTooLargeError, StorageFullError,
    StorageUnavailableError,
)

DEFAULT_MAX_BYTES = 512 * 1024 * 1024  # ~100,000 canvas drawings at ~5 KB: years of one household's corrections
MAX_PNG_BYTES = 256 * 1024  # a 280 x 280 canvas PNG is ~5 KB; a photo belongs in /v1/predict, not in training data
BUSY_TIMEOUT_S = 15.0  # a writer waits this long for another worker's commit before answering 503
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CSV_FIELDS = ("id", "label", "file", "answer_digit", "answer_is_digit", "backend", "model_sha256", "created")

# Applied in order; PRAGMA user_version counts how many a file has had. Append, never edit one that shipped.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    ("""CREATE TABLE corrections(
            id INTEGER PRIMARY KEY,
            created REAL NOT NULL,
            png BLOB NOT NULL,
            label INTEGER NULL CHECK (label BETWEEN 0 AND 9),  -- NULL: not a digit
            answer_digit INTEGER NULL,
            answer_is_digit INTEGER NULL,
            backend TEXT,
            model_sha256 TEXT,
            answer_json TEXT)""",),
    # Counting rows walked the whole table (30,000 rows of 3 KB: 57 ms per correction); this covers every count.
    ("CREATE INDEX corrections_answers ON corrections(label, answer_is_digit, answer_digit)",),
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class Correction:
    """One stored correction: the drawing as sent, its label (None: not a digit) and what the model had answered."""

    id: int
    png: bytes
    label: int | None
    answer_digit: int | None
    answer_is_digit: bool | None
    backend: str | None = None
    model_sha256: str | None = None
    created: float = 0.0


def default_path(environ: dict[str, str] | None = None) -> Path:
    """Where the database lives unless told: systemd's StateDirectory, else $XDG_DATA_HOME or ~/.local/share."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get("STATE_DIRECTORY"):  # systemd sets it from StateDirectory=; several are ':'-separated
        return Path(environ["STATE_DIRECTORY"].split(":")[0]) / "feedback.sqlite3"
    base = Path(environ["XDG_DATA_HOME"]) if environ.get("XDG_DATA_HOME") else Path.home() / ".local" / "share"
    return base / "mnist-edge" / "feedback.sqlite3"


def _storage_error(exc: sqlite3.Error, path: Path) -> MnistEdgeError:
    """SQLite's failure as the API's: a full disk is 507, anything else that stops a write is 503."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if code is not None else None  # the extended code's low byte is the primary one
    if primary == sqlite3.SQLITE_FULL:
        return StorageFullError(f"the disk holding the feedback database {path} is full; nothing was stored")
    # SQLite opens a WAL database on read-only media as "cannot open": its -wal and -shm files cannot be made there.
    if primary == sqlite3.SQLITE_READONLY or (primary == sqlite3.SQLITE_CANTOPEN and path.parent.is_dir() and
                                              not os.access(path.parent, os.W_OK)):
        return StorageUnavailableError(f"the feedback database {path} is read-only (it and its folder must be "
                                       "writable); nothing was stored")
    if primary == sqlite3.SQLITE_BUSY:
        return StorageUnavailableError(f"the feedback database {path} stayed busy for {BUSY_TIMEOUT_S:g} s; "
                                       "nothing was stored, try again")
    return StorageUnavailableError(f"the feedback database {path} cannot be written ({exc}); nothing was stored")


def check_png(png: bytes) -> None:
    """Refuse what is not a PNG or is over MAX_PNG_BYTES: the store keeps drawings exactly as sent, so only drawings."""
    if len(png) > MAX_PNG_BYTES:
        raise PayloadTooLargeError(f"the drawing is {len(png):,} bytes; corrections take PNGs up to {MAX_PNG_BYTES:,}",
                                   limit=MAX_PNG_BYTES)
    if not png.startswith(PNG_MAGIC):
        raise ImageDecodeError("a correction's image must be a PNG (the canvas sends one)")


def check_label(label: object) -> int | None:
    """0-9 (3.0 too: JSON's integers), or None for "not a digit"; anything else is refused."""
    if isinstance(label, float) and label.is_integer():
        label = int(label)
    if label is None or (isinstance(label, int) and not isinstance(label, bool) and 0 <= label <= 9):
        return label
    raise MalformedRequestError("`label` must be a digit 0-9, or null for \"not a digit\"")


class FeedbackStore:
    """The corrections database at `path`, opened lazily in each process (a connection must not cross a fork)."""

    def __init__(self, path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # one connection per process; SQLite serializes writers across processes
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StorageUnavailableError(f"cannot open the feedback database {self.path}: {exc}") from None
        try:
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
                raise StorageUnavailableError(f"the feedback database {self.path} cannot use WAL mode")
            conn.execute("PRAGMA synchronous=FULL")  # fsync the WAL on every commit: a 201 survives a power cut
            _migrate(conn, self.path)
        except sqlite3.Error as exc:
            conn.close()
            raise _storage_error(exc, self.path) from None
        except MnistEdgeError:
            conn.close()
            raise
        self._conn, self._pid = conn, os.getpid()
        return conn

    def add(self, png: bytes, label: int | None, answer: dict | None = None) -> tuple[int, int]:
        """Store one correction durably; its id and the number of corrections now stored."""
        check_png(png)
        label = check_label(label)
        answer = answer or {}
        digit, is_digit = answer.get("digit"), answer.get("is_digit")
        row = (time.time(), png, label, digit if isinstance(digit, int) and not isinstance(digit, bool) else None,
               int(is_digit) if isinstance(is_digit, bool) else None, _text(answer.get("backend")),
               _text(answer.get("model_sha256")), json.dumps(answer, separators=(",", ":")) if answer else None)
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")  # take the write lock first: the size check and insert see one state
                try:
                    used = _db_bytes(conn)
                    if used + len(png) > self.max_bytes:
                        raise StorageFullError(
                            f"the feedback database holds {used:,} bytes and its cap is {self.max_bytes:,}; nothing "
                            "was stored (export and purge it: `mnist-edge feedback export DIR`, then `purge`, or "
                            "raise --feedback-max-mb)", limit=self.max_bytes)
                    cursor = conn.execute(
                        "INSERT INTO corrections(created, png, label, answer_digit, answer_is_digit, backend, "
                        "model_sha256, answer_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
                    count = conn.execute("SELECT count(*) FROM corrections").fetchone()[0]
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None
        return int(cursor.lastrowid), int(count)

    def stats(self) -> dict:
        """How many corrections, per label ("none": not a digit), how many the model got wrong, and the file's size."""
        with self._lock:
            conn = self._connect()
            try:
                labels = conn.execute("SELECT label, count(*) FROM corrections GROUP BY label "
                                      "ORDER BY label IS NULL, label").fetchall()  # 0-9, then not a digit
                # Corrected: the model's answer differs from the label (a digit for "not a digit", or another digit).
                corrected = conn.execute(
                    "SELECT count(*) FROM corrections WHERE answer_is_digit IS NOT NULL AND ("
                    "(label IS NULL AND answer_is_digit = 1) OR (label IS NOT NULL AND "
                    "(answer_is_digit = 0 OR answer_digit IS NOT label)))").fetchone()[0]
                size = _db_bytes(conn)
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None
        by_label = {("none" if label is None else str(label)): n for label, n in labels}
        return {"count": sum(by_label.values()), "by_label": by_label, "corrected": corrected, "db_bytes": size}

    def corrections(self) -> list[Correction]:
        """Every stored correction, oldest first."""
        with self._lock:
            conn = self._connect()
            try:
                rows = conn.execute("SELECT id, png, label, answer_digit, answer_is_digit, backend, model_sha256, "
                                    "created FROM corrections ORDER BY id").fetchall()
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None
        return [Correction(row[0], bytes(row[1]), row[2], row[3], None if row[4] is None else bool(row[4]), row[5],
                           row[6], row[7]) for row in rows]

    def export(self, folder: str | Path) -> int:
        """Write every correction as `<id>.png` plus `corrections.csv` into `folder`; how many were written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rows = self.corrections()
        for row in rows:
            (folder / f"{row.id}.png").write_bytes(row.png)
        partial = folder / "corrections.csv.partial"  # renamed into place whole: a reader never sees half a CSV
        with open(partial, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_FIELDS)
            for row in rows:
                writer.writerow([row.id, "" if row.label is None else row.label, f"{row.id}.png",
                                 "" if row.answer_digit is None else row.answer_digit,
                                 "" if row.answer_is_digit is None else int(row.answer_is_digit),
                                 row.backend or "", row.model_sha256 or "", repr(row.created)])
        partial.replace(folder / "corrections.csv")
        return len(rows)

    def purge(self) -> int:
        """Delete every correction and give the space back to the disk; how many were deleted."""
        with self._lock:
            conn = self._connect()
            try:
                deleted = conn.execute("DELETE FROM corrections").rowcount
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None
        return deleted

    def close(self) -> None:
        """Close this process's connection (a later call opens a new one)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _db_bytes(conn: sqlite3.Connection) -> int:
    """The database's size as SQLite counts it (pages in use, committed WAL frames included)."""
    return conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file's schema up to SCHEMA_VERSION in one transaction (another worker may be doing the same)."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageUnavailableError(f"the feedback database {path} has schema version {version}, newer than "
                                          f"this mnist-edge's {SCHEMA_VERSION}; upgrade mnist-edge")
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def read_corrections(path: str | Path) -> list[Correction]:
    """The corrections in a feedback database, or in a folder `feedback export` wrote (corrections.csv + PNGs)."""
    path = Path(path)
    if path.is_dir():
        return _read_export(path)
    if not path.is_file():
        raise MnistEdgeError(f"no feedback database or export folder at {path}")
    store = FeedbackStore(path)
    try:
        return store.corrections()
    finally:
        store.close()


def _optional_int(text: str) -> int | None:
    return int(text) if text.strip() else None


def _read_export(folder: Path) -> list[Correction]:
    table = folder / "corrections.csv"
    if not table.is_file():
        raise MnistEdgeError(f"{folder} has no corrections.csv (write one with `mnist-edge feedback export {folder}`)")
    rows = []
    with open(table, newline="", encoding="utf-8") as fh:
        for line, record in enumerate(csv.DictReader(fh), start=2):
            try:
                label = check_label(_optional_int(record["label"]))
                is_digit = _optional_int(record["answer_is_digit"])
                png = (folder / record["file"]).read_bytes()
                rows.append(Correction(int(record["id"]), png, label, _optional_int(record["answer_digit"]),
                                       None if is_digit is None else bool(is_digit), record["backend"] or None,
                                       record["model_sha256"] or None, float(record["created"] or 0)))
            except (KeyError, ValueError, TypeError, AttributeError, OSError, MnistEdgeError) as exc:
                raise MnistEdgeError(f"{table}, line {line}: {exc}") from None
    return rows
