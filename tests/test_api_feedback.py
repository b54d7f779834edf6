"""POST/GET /v1/feedback on the app, its settings, and `mnist-edge feedback` from the shell."""

from __future__ import annotations

import base64
import sqlite3

import numpy as np
import pytest
from api_fixtures import b64, canvas_png
from test_feedback_store import DRAWING, noise_png, read_only_copy
from test_metrics_disk import fill, tmpfs

from mnist_edge.cli import build_parser, main
from mnist_edge.runtime.api.app import create_app
from mnist_edge.runtime.config import ServeConfig, config_from
from mnist_edge.runtime.errors import ConfigError


@pytest.fixture
def make_app(app, tmp_path):
    """An app on the shipped models (loaded once per module) with its own corrections database and settings."""
    def make(**settings):
        settings.setdefault("feedback_db", tmp_path / "feedback.sqlite3")
        config = ServeConfig(models_dir=app.extensions["mnist_edge"].config.models_dir, **settings)
        return create_app(config, registry=app.extensions["mnist_edge"].registry)
    return make


def correct(client, image: bytes = DRAWING, label: int | None = 1, answer: dict | None = None, **kwargs):
    """POST one correction."""
    body = {"image": b64(image), "label": label, **({"answer": answer} if answer is not None else {})}
    return client.post("/v1/feedback", json=body, **kwargs)


def test_a_correction_of_what_predict_said_is_stored_with_the_model_that_said_it(make_app):
    app = make_app()
    client = app.test_client()
    said = client.post("/v1/predict", data=DRAWING, content_type="image/png").json
    answer = {key: said[key] for key in ("digit", "confidence", "is_digit", "backend")}
    response = correct(client, label=(said["digit"] + 1) % 10, answer=answer)
    assert response.status_code == 201 and response.json == {"id": 1, "count": 1}
    assert correct(client, label=said["digit"], answer=answer).json == {"id": 2, "count": 2}  # "Right"
    data_url = "data:image/png;base64," + b64(DRAWING)
    assert client.post("/v1/feedback", json={"image": data_url, "label": None}).json["count"] == 3
    # Corrected: the other digit always; "Right" too when the model had called the drawing no digit.
    assert client.get("/v1/feedback").json == {
        "count": 3, "by_label": {str(said["digit"]): 1, str((said["digit"] + 1) % 10): 1, "none": 1},
        "corrected": 1 + (not said["is_digit"]), "db_bytes": client.get("/v1/feedback").json["db_bytes"]}
    conn = sqlite3.connect(app.extensions["mnist_edge"].config.feedback_db)
    png, backend, sha = conn.execute("SELECT png, backend, model_sha256 FROM corrections WHERE id = 1").fetchone()
    slot = app.extensions["mnist_edge"].registry.slots[said["backend"]]
    assert bytes(png) == DRAWING and backend == said["backend"] and sha == slot.entry["sha256"]
    conn.close()
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'endpoint="/v1/feedback",method="POST",status="201"' in metrics


def test_the_token_guards_both_routes(make_app):
    client = make_app(token="secret").test_client()
    assert correct(client).status_code == 401 and client.get("/v1/feedback").status_code == 401
    auth = {"Authorization": "Bearer secret"}
    assert correct(client, headers=auth).status_code == 201
    assert client.get("/v1/feedback", headers=auth).json["count"] == 1


def test_with_feedback_off_both_routes_are_404_in_the_error_shape_and_nothing_is_written(make_app, tmp_path):
    client = make_app(feedback=False).test_client()
    for response in (correct(client), client.get("/v1/feedback")):
        assert response.status_code == 404
        assert response.json["error"]["code"] == "not_found" and "--no-feedback" in response.json["error"]["message"]
    assert client.post("/v1/predict", data=DRAWING, content_type="image/png").status_code == 200
    assert not (tmp_path / "feedback.sqlite3").exists()


def test_past_the_cap_is_507_with_what_to_do(make_app):
    client = make_app(feedback_max_bytes=48 * 1024).test_client()
    statuses = [correct(client, noise_png(60, seed)).status_code for seed in range(30)]
    assert statuses[0] == 201 and statuses[-1] == 507 and set(statuses) == {201, 507}
    refused = correct(client).json["error"]
    assert refused["code"] == "storage_full" and "feedback export" in refused["message"]
    assert client.get("/v1/feedback").json["count"] == statuses.count(201)


def _predicts(client) -> bool:
    response = client.post("/v1/predict", json={"image": b64(canvas_png(np.pad(np.full((20, 4), 255, np.uint8), 4)))})
    return response.status_code == 200 and client.get("/readyz").status_code == 200


def test_a_full_disk_is_507_and_prediction_goes_on(make_app, tmp_path):
    with tmpfs(tmp_path / "disk", size="256k") as disk:
        app = make_app(feedback_db=disk / "feedback.sqlite3")
        client = app.test_client()
        try:
            assert correct(client).status_code == 201
            fill(disk)
            response = correct(client, noise_png(200))
            assert response.status_code == 507
            assert response.json["error"] == {"code": "storage_full", "message": response.json["error"]["message"]}
            assert "is full; nothing was stored" in response.json["error"]["message"]
            assert _predicts(client)
        finally:
            app.extensions["mnist_edge"].feedback.close()


def test_a_read_only_database_is_503_and_prediction_goes_on(make_app, tmp_path):
    with read_only_copy(tmp_path / "ro", rows=1) as path:
        client = make_app(feedback_db=path).test_client()
        response = correct(client)
        assert response.status_code == 503 and response.json["error"]["code"] == "storage_unavailable"
        assert "read-only" in response.json["error"]["message"]
        assert _predicts(client)


def test_a_folder_that_cannot_be_made_is_503(make_app, tmp_path):
    (tmp_path / "file").write_text("")
    client = make_app(feedback_db=tmp_path / "file" / "feedback.sqlite3").test_client()
    assert correct(client).status_code == 503 and client.get("/v1/feedback").status_code == 503
    assert _predicts(client)


def _serve_args(*flags: str):
    return build_parser().parse_args(["serve", *flags])


def test_the_settings_come_from_flags_then_variables_then_the_default(tmp_path):
    defaults = config_from(_serve_args(), environ={"XDG_DATA_HOME": str(tmp_path)})
    assert defaults.feedback and defaults.feedback_max_bytes == 512 * 1024 * 1024
    chosen = config_from(_serve_args("--no-feedback", "--feedback-db", "/x/f.sqlite3", "--feedback-max-mb", "2"),
                         environ={})
    assert (chosen.feedback, str(chosen.feedback_db), chosen.feedback_max_bytes) == (False, "/x/f.sqlite3", 2 << 20)
    env = {"MNIST_EDGE_NO_FEEDBACK": "1", "MNIST_EDGE_FEEDBACK_DB": "/y/f.sqlite3"}
    from_env = config_from(_serve_args(), environ=env)
    assert not from_env.feedback and str(from_env.feedback_db) == "/y/f.sqlite3"
    with pytest.raises(ConfigError, match="MNIST_EDGE_NO_FEEDBACK='maybe'"):
        config_from(_serve_args(), environ={"MNIST_EDGE_NO_FEEDBACK": "maybe"})


def test_the_feedback_command_counts_exports_and_purges_only_when_told(make_app, tmp_path, capsys):
    client = make_app().test_client()
    for label in (3, 3, None):
        assert correct(client, label=label, answer={"digit": 3, "is_digit": True}).status_code == 201
    db = str(tmp_path / "feedback.sqlite3")
    assert main(["feedback", "stats", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "3 corrections in" in out and "1 of them answered wrong" in out and "3: 2  not a digit: 1" in out
    assert main(["feedback", "export", str(tmp_path / "out"), "--db", db]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1.png", "2.png", "3.png", "corrections.csv"]
    assert main(["feedback", "purge", "--db", db]) == 1
    assert "add --yes" in capsys.readouterr().err and client.get("/v1/feedback").json["count"] == 3
    assert main(["feedback", "purge", "--yes", "--db", db]) == 0
    assert client.get("/v1/feedback").json["count"] == 0
    assert main(["feedback", "stats", "--db", str(tmp_path / "none.sqlite3")]) == 1
    assert main(["feedback", "export", "--db", db]) == 1
    assert "export needs a folder" in capsys.readouterr().err
    assert base64.b64decode(b64(DRAWING)) == (tmp_path / "out" / "1.png").read_bytes()
