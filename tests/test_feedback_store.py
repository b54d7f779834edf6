"""The corrections store: durable settings, migrations, caps, a full and a read-only disk, writers in many processes."""

from __future__ import annotations

import csv
import multiprocessing
import sqlite3
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from api_fixtures import canvas_png, png
from test_metrics_disk import fill, tmpfs

from mnist_edge.runtime.errors import (
    ImageDecodeError, MalformedRequestError, PayloadTooLargeError, StorageFullError, StorageUnavailableError,
)
from mnist_edge.runtime.feedback import (
    MAX_PNG_BYTES, MIGRATIONS, SCHEMA_VERSION, FeedbackStore, default_path, read_corrections,
)

DRAWING = canvas_png(np.pad(np.full((20, 4), 255, np.uint8), 4))  # a "1" on a 280 x 280 canvas
ANSWER = {"digit": 7, "is_digit": True, "backend": "onnx-int8", "model_sha256": "ab" * 32}


def noise_png(side: int, seed: int = 0) -> bytes:
    """A PNG of random grey pixels: it hardly compresses, so its size is about side * side bytes."""
    return png(np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8))


@contextmanager
def read_only_copy(folder: Path, rows: int) -> Iterator[Path]:
    """A feedback database with `rows` corrections on a file system then remounted read-only (root only)."""
    with tmpfs(folder, size="1m") as mounted:
        store = FeedbackStore(mounted / "feedback.sqlite3")
        for _ in range(rows):
            store.add(DRAWING, 1, ANSWER)
        store.close()  # the last connection checkpoints and removes -wal and -shm
        subprocess.run(["mount", "-o", "remount,ro", str(mounted)], check=True)
        yield mounted / "feedback.sqlite3"


def test_add_stats_and_read_back(tmp_path):
    store = FeedbackStore(tmp_path / "deep" / "folder" / "feedback.sqlite3")  # folders are made
    assert store.add(DRAWING, 1, ANSWER) == (1, 1)  # the model said 7: a correction
    assert store.add(DRAWING, None, ANSWER) == (2, 2)  # it said a digit: not a digit is a correction too
    assert store.add(DRAWING, 7, ANSWER) == (3, 3)  # "Right"
    assert store.add(DRAWING, 4, {}) == (4, 4)  # no answer known: counted, never as corrected
    stats = store.stats()
    assert stats == {"count": 4, "by_label": {"1": 1, "4": 1, "7": 1, "none": 1}, "corrected": 2,
                     "db_bytes": stats["db_bytes"]} and stats["db_bytes"] > 0
    rows = read_corrections(store.path)
    assert [(r.id, r.label, r.answer_digit, r.answer_is_digit) for r in rows] == [
        (1, 1, 7, True), (2, None, 7, True), (3, 7, 7, True), (4, 4, None, None)]
    assert rows[0].png == DRAWING and rows[0].backend == "onnx-int8" and rows[0].model_sha256 == "ab" * 32


def test_the_connection_is_wal_with_full_sync(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    store.add(DRAWING, 3, ANSWER)
    conn = store._connect()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: the WAL is fsynced at every commit
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_export_writes_pngs_and_a_csv_that_reads_back_the_same(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    store.add(DRAWING, 5, ANSWER)
    store.add(noise_png(40), None, {"digit": 3, "is_digit": False})
    assert store.export(tmp_path / "out") == 2
    with open(tmp_path / "out" / "corrections.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == ["id", "label", "file", "answer_digit", "answer_is_digit", "backend", "model_sha256",
                              "created"]
    assert [(r["label"], r["file"], r["answer_is_digit"]) for r in table] == [("5", "1.png", "1"), ("", "2.png", "0")]
    assert read_corrections(tmp_path / "out") == read_corrections(store.path)
    assert not list((tmp_path / "out").glob("*.partial"))


def test_a_broken_export_is_one_error_naming_the_line(tmp_path):
    header = "id,label,file,answer_digit,answer_is_digit,backend,model_sha256,created\n"
    (tmp_path / "corrections.csv").write_text(header + "1,12,1.png,,,,,0\n")
    with pytest.raises(Exception, match=r"corrections.csv, line 2: .*0-9"):
        read_corrections(tmp_path)
    with pytest.raises(Exception, match="no feedback database"):
        read_corrections(tmp_path / "missing.sqlite3")


def test_bad_drawings_and_labels_are_refused_and_nothing_is_stored(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    big = noise_png(600)
    assert len(big) > MAX_PNG_BYTES
    with pytest.raises(PayloadTooLargeError):
        store.add(big, 1, {})
    with pytest.raises(ImageDecodeError):
        store.add(b"GIF89a not a png", 1, {})
    for label in (10, -1, True, "3", 2.5, 1e300, float("nan")):
        with pytest.raises(MalformedRequestError):
            store.add(DRAWING, label, {})
    assert store.stats()["count"] == 0
    assert store.add(DRAWING, 2.0, {}) == (1, 1) and store.corrections()[0].label == 2  # JSON's 2.0 is an integer


@pytest.mark.parametrize("applied", range(SCHEMA_VERSION + 1))
def test_an_older_database_is_migrated_and_keeps_its_rows(tmp_path, applied):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE unrelated(x)")  # a version-0 file is not always empty; what it holds stays
    for statements in MIGRATIONS[:applied]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {applied}")
    if applied:
        conn.execute("INSERT INTO corrections(created, png, label) VALUES (1.0, ?, 2)", (DRAWING,))
    conn.commit()
    conn.close()
    store = FeedbackStore(path)
    assert store.add(DRAWING, 3, ANSWER)[1] == (2 if applied else 1)
    store.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert check.execute("SELECT count(*) FROM unrelated").fetchone()[0] == 0
    plan = check.execute("EXPLAIN QUERY PLAN SELECT count(*) FROM corrections").fetchall()
    assert "COVERING INDEX corrections_answers" in str(plan)  # counting reads the small index, not every drawing
    labels = [label for (label,) in check.execute("SELECT label FROM corrections ORDER BY id")]
    assert labels == ([2, 3] if applied else [3])
    check.close()


def test_a_database_from_a_newer_version_is_refused_untouched(tmp_path):
    path = tmp_path / "new.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StorageUnavailableError, match="newer than this mnist-edge's"):
        FeedbackStore(path).add(DRAWING, 1, {})
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert not conn.execute("SELECT name FROM sqlite_master").fetchall()
    conn.close()


def test_past_the_size_cap_is_507_and_nothing_is_deleted(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3", max_bytes=64 * 1024)
    stored = 0
    with pytest.raises(StorageFullError, match="cap") as refused:
        for seed in range(100):
            store.add(noise_png(60, seed), 1, {})  # ~3.7 KB each
            stored += 1
    assert refused.value.status == 507 and 5 < stored < 20
    with pytest.raises(StorageFullError):
        store.add(noise_png(60, 1), 1, {})  # still full: nothing was deleted to make room
    assert read_corrections(store.path)[0].png == noise_png(60, 0)
    assert store.stats()["count"] == stored and store.stats()["db_bytes"] <= 64 * 1024 + 8 * 1024  # a row's pages


def test_a_full_disk_is_507_nothing_half_written_and_storing_resumes_once_there_is_room(tmp_path):
    with tmpfs(tmp_path / "disk", size="256k") as disk:
        store = FeedbackStore(disk / "feedback.sqlite3")
        try:
            store.add(DRAWING, 1, ANSWER)
            filler = fill(disk)
            with pytest.raises(StorageFullError, match="disk .* is full") as refused:
                store.add(noise_png(200), 2, ANSWER)  # 40 KB: more than any room SQLite kept
            assert refused.value.status == 507
            assert store.stats()["count"] == 1
            filler.unlink()
            assert store.add(noise_png(200), 2, ANSWER)[1] == 2
            assert [row.label for row in store.corrections()] == [1, 2]
        finally:
            store.close()  # the file system cannot be unmounted while the database is open


def test_a_read_only_database_is_503_and_says_so(tmp_path):
    with read_only_copy(tmp_path / "ro", rows=2) as path:
        with pytest.raises(StorageUnavailableError, match="read-only") as refused:
            FeedbackStore(path).add(DRAWING, 1, {})  # it never opens, so there is nothing to close
        assert refused.value.status == 503


def test_purge_deletes_everything_and_gives_the_space_back(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    for seed in range(20):
        store.add(noise_png(60, seed), seed % 10, {})
    before = store.stats()["db_bytes"]
    assert store.purge() == 20
    after = store.stats()
    assert after["count"] == 0 and after["db_bytes"] < before / 4
    assert store.add(DRAWING, 1, {})[1] == 1


def _write_many(store: FeedbackStore, worker: int, count: int, results) -> None:
    """In a forked child: `count` corrections from two threads sharing the store the parent had opened."""
    with ThreadPoolExecutor(2) as pool:
        results.put(list(pool.map(lambda i: store.add(DRAWING, (worker + i) % 10, {})[0], range(count))))


def test_writers_in_many_processes_and_threads_all_land(tmp_path):
    path = tmp_path / "f.sqlite3"
    store = FeedbackStore(path)
    store.add(DRAWING, 0, {})  # a connection in the parent that each forked child must not use
    results = multiprocessing.get_context("fork").Queue()
    workers = [multiprocessing.get_context("fork").Process(target=_write_many, args=(store, w, 40, results))
               for w in range(4)]
    for worker in workers:
        worker.start()
    ids = [i for _ in workers for i in results.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert len(set(ids)) == 160
    assert store.stats()["count"] == 161


def test_the_default_place_follows_systemd_then_xdg_then_home(tmp_path):
    assert default_path({"STATE_DIRECTORY": "/var/lib/mnist-edge:/var/lib/other"}) == Path(
        "/var/lib/mnist-edge/feedback.sqlite3")
    assert default_path({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "mnist-edge" / "feedback.sqlite3"
    assert default_path({}) == Path.home() / ".local" / "share" / "mnist-edge" / "feedback.sqlite3"
