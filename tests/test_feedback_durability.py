"""Nothing acknowledged is lost: concurrent writers to `mnist-edge serve --workers 2`, a SIGKILL of the whole process
group right after the half-way 201, a restart on the same database; every acknowledged id is there afterwards."""

from __future__ import annotations

from mnist_edge.benchmarks.feedback_storage import durability


def test_every_acknowledged_correction_survives_a_sigkill_of_the_whole_server(shipped_models, tmp_path):
    result = durability(tmp_path / "feedback.sqlite3", tmp_path, total=120, clients=6, workers=2,
                        models_dir=shipped_models)
    assert result["acknowledged"] == 120, result  # each client resent what got no answer until it got a 201
    assert 60 <= result["acknowledged_before_kill"] < 120, result  # the kill landed in the middle of the writing
    assert result["unanswered_requests"] > 0, result  # requests really were cut off by it
    assert result["lost"] == 0 and result["server_errors"] == 0, result
    assert result["extra_rows"] >= 0, result  # a row stored whose 201 the kill swallowed is kept, never half-written
