"""results.json -> results.md (tables) and PNG charts: latency per model and batch, speed-up, size vs accuracy, HTTP,
and the peer server when one ran."""

from __future__ import annotations

import math
from pathlib import Path

from mnist_edge.benchmarks.machine import one_line
from mnist_edge.benchmarks.peer_report import chart_peer, peer_table

LOCAL_FLAGS = ("--host", "--port", "--models-dir")  # where this run happened to bind and read, not what it measured
KEY_LIBRARIES = ("onnxruntime", "ai-edge-litert", "tensorflow", "numpy", "waitress", "gunicorn", "granian")


def baseline(results: dict) -> dict | None:
    """The seed network's Keras model.predict benchmark, when it was timed."""
    return next((b for b in results["suites"]["benchmarks"] if b["extra_info"].get("baseline")), None)


def inference(results: dict) -> list[dict]:
    """The in-process inference benchmarks (one per model and batch), in model then batch order."""
    rows = [b for b in results["suites"]["benchmarks"]
            if "batch" in b["extra_info"] and "format" in b["extra_info"]]
    return sorted(rows, key=lambda b: (b["extra_info"]["model"], b["extra_info"]["batch"]))


def _per_image_s(bench: dict) -> float:
    return bench["stats"]["median"] / bench["extra_info"].get("batch", 1)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}" if seconds < 0.01 else f"{seconds * 1000:.1f}"


def _ratio(value: float) -> str:
    return f"{value:,.0f}x" if value >= 10 else f"{value:.2f}x"


def _speedup(base: dict | None, bench: dict) -> str:
    return _ratio(_per_image_s(base) / _per_image_s(bench)) if base else "n/a"


def _header(results: dict) -> list[str]:
    machine, suites = results["machine"], results["suites"]
    libs = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items() if k in KEY_LIBRARIES and v)
    mode = "`mnist-edge bench`"
    if results["quick"]:
        mode = "`mnist-edge bench --quick` (suites run once as tests: no timings)"
    lines = ["# mnist-edge benchmarks", "",
             f"{mode}, {results['created']}, on {one_line(machine)}; {libs}.", "",
             *_load_note(results),
             f"Suites: {suites['tests']} tests, {suites['failures'] + suites['errors']} failed, "
             f"{suites['skipped']} skipped (every answer checked against MNIST test labels)."]
    lines += [f"- {p['outcome']}: `{p['test']}`: {' '.join(p['message'].split())}" for p in suites["problems"]]
    return lines


def _load_note(results: dict) -> list[str]:
    load, cores = results["load_average_at_start"], results["machine"]["usable_cores"]
    busy = f" (more than its {cores} cores: other work slowed these figures)" if load > cores else ""
    return [f"The machine's load average (1 min) before the run: {load:g}{busy}.", ""]


def _inference_table(results: dict) -> list[str]:
    base, rows = baseline(results), inference(results)
    if not rows:
        return []
    lines = ["", "## In-process inference", "",
             "Median per call on the first MNIST test digits; speed-up per image over the baseline, the seed "
             "tutorial's network run with Keras `model.predict` on one image"
             + (f" ({_ms(base['stats']['median'])} ms)." if base else " (not measured: no TensorFlow)."), "",
             "| model | format | precision | batch | median ms | per image us | speed-up |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for b in rows:
        info = b["extra_info"]
        lines.append(f"| {info['model']} | {info['format']} | {info['precision']} | {info['batch']} | "
                     f"{_ms(b['stats']['median'])} | {_per_image_s(b) * 1e6:,.1f} | {_speedup(base, b)} |")
    return lines


def _other_table(results: dict) -> list[str]:
    shown = {id(b) for b in inference(results)}
    rows = [b for b in results["suites"]["benchmarks"] if id(b) not in shown]
    if not rows:
        return []
    base = baseline(results)
    lines = ["", "## Preprocessing, one-connection HTTP, cold start, baseline", "",
             "vs baseline: the baseline's median over this one (above 1x: quicker than one Keras `model.predict` "
             "of the seed network).", "",
             "| group | benchmark | median ms | rounds | vs baseline |", "| --- | --- | ---: | ---: | ---: |"]
    for b in sorted(rows, key=lambda b: (b["group"], b["name"])):
        ratio = _ratio(base["stats"]["median"] / b["stats"]["median"]) if base else "n/a"
        stats = b["stats"]
        lines.append(f"| {b['group']} | `{b['name']}` | {_ms(stats['median'])} | {stats['rounds']} | {ratio} |")
    return lines


READ_TARGET = 3.0  # a number read at c=1 costs at most this many single-digit /v1/predict requests (p50)


def read_ratio_line(read: dict) -> str:
    """The number read by /v1/read against one digit's /v1/predict (RGBA canvases, one connection): median p50s of
    the alternating rounds and their ratio, or why there is none."""
    number, digit = read["read"], read["predict"]
    if read["ratio"] is None:
        return f"`/v1/read` against `/v1/predict`: not measured ({number['reason'] or digit['reason']})"
    rounds = "; ".join(f"{r['p50_ms']:.2f} / {d['p50_ms']:.2f}" for r, d in zip(number["rounds"], digit["rounds"]))
    return (f"`/v1/read` of a {number['request']} at 1 connection: p50 {number['p50_ms']:.2f} ms, {read['ratio']:.1f}x "
            f"one digit's `/v1/predict` ({digit['p50_ms']:.2f} ms; target at most {READ_TARGET:g}x): medians of "
            f"{read['rounds']} rounds of {read['seconds_per_cell']} s each, the order reversed every other round "
            f"(p50 ms per round, read / predict: {rounds}).")


def _http_table(results: dict) -> list[str]:
    http = results["http"]
    if http.get("error"):
        return ["", "## HTTP load (wrk)", "", f"Not measured: {http['error']}"]
    ready, after = http["memory_ready"], http["memory_after_load"]
    pairs = zip(http["flags"][::2], http["flags"][1::2])  # every serve flag we pass takes a value
    command = " ".join(["mnist-edge serve", *(f"{flag} {value}" for flag, value in pairs if flag not in LOCAL_FLAGS)])
    lines = ["", "## HTTP load (wrk)", "",
             f"`{command}`, model {http['model']}, {http['seconds_per_cell']} s per "
             "cell, keep-alive; one request per kind was checked for the right digit before its load. p50 vs baseline: "
             "the seed network's Keras `model.predict` median over the p50.", "",
             "| endpoint | request | connections | req/s | p50 ms | p90 ms | p99 ms | p50 vs baseline | result |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    base = baseline(results)
    for c in http["cells"]:
        if c.get("latency_ms"):
            lat = c["latency_ms"]
            ratio = _ratio(base["stats"]["median"] * 1000 / lat["p50"]) if base else "n/a"
            figures = f"{c['requests_per_s']:,.0f} | {lat['p50']:.2f} | {lat['p90']:.2f} | {lat['p99']:.2f} | {ratio}"
        else:
            figures = "- | - | - | - | -"
        result = "ok" if c["status"] == "ok" else f"failed: {c['reason']}".replace("|", "/").replace("\n", " ")
        lines.append(f"| `{c['endpoint']}` | {c['request']} | {c['connections']} | {figures} | {result} |")
    if http.get("read_vs_predict"):
        lines += ["", read_ratio_line(http["read_vs_predict"])]
    lines += ["", f"Cold start to ready (process start to `/readyz` 200): {http['cold_start_s']:.2f} s. "
              f"Memory of the server's process tree ({ready['processes']} processes): once ready RSS "
              f"{ready['rss_mb']} MB, PSS {ready['pss_mb']} MB; after the load RSS {after['rss_mb']} MB, "
              f"PSS {after['pss_mb']} MB."]
    return lines


def _figure(width: float = 8, height: float = 4.5):
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    return Figure(figsize=(width, height), layout="constrained")


def chart_latency(results: dict, path: Path) -> bool:
    """Per-image latency per model, one bar per batch size, log scale, the baseline as a line."""
    rows = inference(results)
    if not rows:
        return False
    models = sorted({b["extra_info"]["model"] for b in rows})
    batches = sorted({b["extra_info"]["batch"] for b in rows})
    fig = _figure()
    ax = fig.add_subplot()
    width = 0.8 / len(batches)
    for i, batch in enumerate(batches):
        per = {b["extra_info"]["model"]: _per_image_s(b) * 1e6 for b in rows if b["extra_info"]["batch"] == batch}
        xs = [m + (i - (len(batches) - 1) / 2) * width for m in range(len(models))]
        ax.bar(xs, [per.get(m, 0) for m in models], width, label=f"batch {batch}")
    base = baseline(results)
    if base:
        ax.axhline(base["stats"]["median"] * 1e6, color="black", linestyle="--",
                   label="seed, Keras model.predict, 1 image")
    ax.set_xticks(range(len(models)), models, rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("median latency per image (us, log)")
    ax.set_title("In-process inference per image")
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)
    return True


def chart_speedup(results: dict, path: Path) -> bool:
    """Speed-up per image over the seed baseline, per model and batch size."""
    base, rows = baseline(results), inference(results)
    if not (base and rows):
        return False
    labels = [f"{b['extra_info']['model']} x{b['extra_info']['batch']}" for b in rows]
    values = [_per_image_s(base) / _per_image_s(b) for b in rows]
    batches = sorted({b["extra_info"]["batch"] for b in rows})
    colors = {batch: f"C{i}" for i, batch in enumerate(batches)}  # the latency chart's colours
    fig = _figure(8, 0.25 * len(rows) + 1.5)
    ax = fig.add_subplot()
    bars = ax.barh(range(len(rows)), values, color=[colors[b["extra_info"]["batch"]] for b in rows])
    ax.bar_label(bars, [f"{v:,.0f}x" for v in values], padding=3, fontsize="x-small")
    ax.legend([bars[[b["extra_info"]["batch"] for b in rows].index(batch)] for batch in batches],
              [f"batch {batch}" for batch in batches], fontsize="small", loc="upper right")
    ax.set_yticks(range(len(rows)), labels, fontsize="small")
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(right=max(values) * 4)  # room for the labels and the legend
    ax.set_xlabel("speed-up per image over Keras model.predict on the seed network (log)")
    ax.set_title("Speed-up over the tutorial baseline (model x batch)")
    fig.savefig(path, dpi=110)
    return True


def chart_size_accuracy(results: dict, path: Path) -> bool:
    """Model file size against test accuracy, from the manifest."""
    artifacts = {n: a for n, a in results["models"]["artifacts"].items() if a.get("size_bytes") and a.get("accuracy")}
    if not artifacts:
        return False
    fig = _figure(7, 4.5)
    ax = fig.add_subplot()
    # fp32 ONNX and TFLite land on one spot (same accuracy, sizes within a few %): one point, one label.
    points: dict[tuple[int, float], list[tuple[str, float]]] = {}
    for name, a in sorted(artifacts.items()):
        size_kb, accuracy = a["size_bytes"] / 1024, round(a["accuracy"] * 100, 2)
        points.setdefault((round(math.log10(size_kb) * 20), accuracy), []).append((name, size_kb))
    for (_, accuracy), members in points.items():
        ax.scatter(members[0][1], accuracy)
        ax.annotate(", ".join(name for name, _ in members), (members[0][1], accuracy), textcoords="offset points",
                    xytext=(4, 4), fontsize="small")
    ax.set_xscale("log")
    ax.set_xlabel("file size (KB, log)")
    ax.set_ylabel("MNIST test accuracy (%)")
    ax.set_title("Size against accuracy (models/manifest.json)")
    fig.savefig(path, dpi=110)
    return True


def chart_http(results: dict, path: Path) -> bool:
    """Requests per second and p50/p99 latency per request kind and connection count."""
    cells = [c for c in results["http"]["cells"] if c.get("latency_ms")]
    if not cells:
        return False
    labels = [f"{c['request']}\nc={c['connections']}" for c in cells]
    fig = _figure(10, 4.5)
    rps, lat = fig.subplots(1, 2)
    colors = ["C0" if c["endpoint"].startswith("/v1") else "C1" for c in cells]
    rps.barh(range(len(cells)), [c["requests_per_s"] for c in cells], color=colors)
    rps.set_yticks(range(len(cells)), labels, fontsize="x-small")
    rps.invert_yaxis()
    rps.set_xlabel("requests per second")
    p50 = [c["latency_ms"]["p50"] for c in cells]
    p99 = [c["latency_ms"]["p99"] for c in cells]
    lat.barh(range(len(cells)), p99, color="lightgray", label="p99")
    lat.barh(range(len(cells)), p50, color=colors, label="p50")
    lat.set_yticks(range(len(cells)), [""] * len(cells))
    lat.invert_yaxis()
    lat.set_xlabel("latency (ms); blue /v1/predict, orange /v2 infer")
    lat.legend(fontsize="small")
    fig.suptitle(f"HTTP load with wrk, {results['http']['seconds_per_cell']} s per cell")
    fig.savefig(path, dpi=110)
    return True


CHARTS = {"latency.png": chart_latency, "speedup.png": chart_speedup,
          "size_accuracy.png": chart_size_accuracy, "http.png": chart_http, "peer.png": chart_peer}


def write_report(results: dict, out: Path) -> list[Path]:
    """Write results.md and every chart that has data; return the paths written."""
    written = []
    for name, draw in CHARTS.items():
        path = out / name
        path.unlink(missing_ok=True)  # a chart from an earlier run must not pass for this one's
        if draw(results, path):
            written.append(path)
    lines = _header(results) + _inference_table(results) + _other_table(results) + _http_table(results)
    lines += peer_table(results)
    lines += ["", "## Charts", ""] + [f"![{p.stem}]({p.name})" for p in written]
    md = out / "results.md"
    md.write_text("\n".join(lines) + "\n")
    return [md, *written]
