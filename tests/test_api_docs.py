"""GET / and GET /docs: links, Swagger UI served from the installed package (offline), the token rule, a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mnist_edge.benchmarks.background import start_background
from mnist_edge.runtime.api import docs
from mnist_edge.runtime.api.app import create_app
from mnist_edge.runtime.config import ServeConfig

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def test_the_page_loads_only_local_files_and_they_are_the_packages(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert referenced and not [url for url in referenced if "//" in url], referenced  # nothing from a CDN
    assert 'url: "openapi.json"' in html
    for url in referenced:
        with client.get("/" + url) as asset:
            assert asset.status_code == 200, url
            assert asset.get_data() == (docs.viewer_dir() / url.removeprefix("docs/")).read_bytes()


def test_only_the_pages_files_are_served(client):
    for name in ("LICENSE", "oauth2-redirect.html", "..%2Fflask_swagger_ui.py", "index.css"):
        response = client.get(f"/docs/{name}")
        assert response.status_code == 404 and response.json["error"]["code"] == "not_found", name


def test_a_missing_viewer_package_is_a_clear_503(client, monkeypatch):
    monkeypatch.setattr(docs, "VIEWER_PACKAGE", "no_such_viewer_package")
    for path in ("/docs", "/docs/swagger-ui.css"):
        error = client.get(path).json["error"]
        assert error["code"] == "docs_unavailable" and "flask-swagger-ui" in error["message"], path
    assert client.get("/openapi.json").status_code == 200  # the document itself needs no viewer


def test_docs_and_the_index_follow_the_token_rule(shipped_models):
    guarded = create_app(ServeConfig(models_dir=shipped_models, models=["onnx-int8"], token="s3cret")).test_client()
    good = {"Authorization": "Bearer s3cret"}
    for path in ("/", "/docs", "/docs/swagger-ui.css", "/openapi.json"):
        assert guarded.get(path).status_code == 401, path
        with guarded.get(path, headers=good) as response:
            assert response.status_code == 200, path


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_a_browser_renders_the_reference_offline(app):
    sync_api = pytest.importorskip("playwright.sync_api")
    server = start_background(app, threads=2)
    outside: list[str] = []
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()

            def only_ours(route) -> None:
                if route.request.url.startswith(server.url):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_ours)
            page.goto(f"{server.url}/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
            title = page.inner_text(".swagger-ui .info .title")
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            browser.close()
    finally:
        server.close()
    assert title.startswith("mnist-edge")
    assert {"/v1/predict", "/v2/models/{name}/infer", "/docs"} <= {path.replace("\u200b", "") for path in paths}
    assert not outside, outside
