"""The peer part of the report: mnist-edge against MLServer on the same ONNX file, as a table, ratios and a chart."""

from __future__ import annotations

from pathlib import Path


def _targets(peer: dict) -> list[tuple[tuple[str, str, str], dict[int, dict]]]:
    """Rows grouped by (server, setting, request), each with its cells keyed by connection count, in run order."""
    grouped: dict[tuple[str, str, str], dict[int, dict]] = {}
    for row in peer["rows"]:
        grouped.setdefault((row["server"], row["setting"], row["request"]), {})[row["connections"]] = row
    return list(grouped.items())


def _figure(row: dict | None, key: str, fmt: str) -> str:
    return "-" if row is None or row.get(key) is None else format(row[key], fmt)


def _per_round(row: dict | None, key: str, fmt: str) -> str:
    return "-" if row is None or not row["rounds"] else ", ".join(format(r[key], fmt) for r in row["rounds"])


def _result(cells: dict[int, dict]) -> str:
    failed = [f"c={c}: {r['reason']}" for c, r in sorted(cells.items()) if r["status"] != "ok"]
    return ("failed: " + "; ".join(failed)).replace("|", "/").replace("\n", " ") if failed else "ok"


def _processes(count: int) -> str:
    return "1 process" if count == 1 else f"{count} processes"


def _ratio_lines(peer: dict) -> list[str]:
    lines = ["", "| figure | mnist-edge model | ratio | MLServer's best setting for it | value | target | met |",
             "| --- | --- | --- | --- | ---: | --- | --- |"]
    for r in peer["ratios"]:
        value = "n/a" if r["value"] is None else f"{r['value']:.2f}x"
        met = {True: "yes", False: "no", None: "-"}[r["met"]]
        lines.append(f"| {r['figure']} | {r['model']} | {r['ratio']} | {r['peer_setting'] or '-'} | {value} | "
                     f"{r['target']} | {met} |")
    return lines


def peer_table(results: dict) -> list[str]:
    """The peer section of results.md: nothing when no peer ran, the reason when it could not."""
    peer = results.get("peer")
    if not peer:
        return []
    title = f"## Against a peer: Seldon {peer['server']} {peer['version']}"
    if peer.get("error"):
        return ["", title, "", f"Not measured: {peer['error']}"]
    lines = ["", title, "",
             f"The same ONNX file ({peer['model_file']}) served by {peer['server']} {peer['version']} (onnxruntime "
             f"{peer['onnxruntime']}) through `{peer['runtime']}`, the runtime a user writes (MLServer ships none for "
             "ONNX): one ONNX Runtime session with one intra-op thread and spinning off, the session options "
             "mnist-edge's ONNX backend uses, so both servers run the model the same way. MLServer keeps its other "
             "defaults (access log included) at two settings: the model in the HTTP process (`parallel_workers` 0) "
             "and its default pool of one inference worker. mnist-edge is the server above, with the default model "
             "and the peer's own file. The same wrk and request bodies for all: one MNIST test digit, answers "
             f"checked; {peer['rounds']} rounds of {peer['seconds_per_cell']} s per cell, every server in each "
             "round, the order reversed every other round; a figure is the median of its rounds.", "",
             "| server | setting | request | c=1 p50 ms | c=1 p99 ms | c=8 req/s | c=8 p50 ms | "
             "per round: c=1 p50 ms / c=8 req/s | result |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for (server, setting, request), cells in _targets(peer):
        one, eight = cells.get(1), cells.get(8)
        lines.append(f"| {server} | {setting} | {request} | {_figure(one, 'p50_ms', '.2f')} | "
                     f"{_figure(one, 'p99_ms', '.2f')} | {_figure(eight, 'requests_per_s', ',.0f')} | "
                     f"{_figure(eight, 'p50_ms', '.2f')} | {_per_round(one, 'p50_ms', '.2f')} / "
                     f"{_per_round(eight, 'requests_per_s', '.0f')} | {_result(cells)} |")
    lines += _ratio_lines(peer)
    lines += ["", "MLServer's start to its model answering ready, and its memory then: " + "; ".join(
        f"{setting} {s['cold_start_s']:.2f} s, RSS {s['memory_ready']['rss_mb']} MB in "
        f"{_processes(s['memory_ready']['processes'])}" for setting, s in peer["settings"].items()) + "."]
    return lines


def chart_peer(results: dict, path: Path) -> bool:
    """c=1 p50 and c=8 req/s of mnist-edge and the peer side by side, each round as a dot on its median's bar."""
    peer = results.get("peer")
    if not peer or peer.get("error"):
        return False
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    targets = _targets(peer)
    labels = [f"{server}\n{setting}\n{request}" for (server, setting, request), _ in targets]
    colors = ["C0" if server == "mnist-edge" else "C1" for (server, _, _), _ in targets]
    fig = Figure(figsize=(11, 1.0 * len(targets) + 1.5), layout="constrained")
    panels = fig.subplots(1, 2, sharey=True)
    figures = [(1, "p50_ms", "c=1 p50 latency (ms), lower is better"),
               (8, "requests_per_s", "c=8 requests per second, higher is better")]
    for ax, (connections, key, xlabel) in zip(panels, figures):
        for y, ((_, cells), color) in enumerate(zip(targets, colors)):
            row = cells.get(connections)
            if row is None or row.get(key) is None:
                continue
            ax.barh(y, row[key], color=color)
            # The median at the bar's foot, where no round's dot lands.
            ax.text(0, y, f" {row[key]:,.2f}" if key == "p50_ms" else f" {row[key]:,.0f}", va="center",
                    fontsize="small", bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0})
            ax.scatter([r[key] for r in row["rounds"]], [y] * len(row["rounds"]), color="black", s=8, zorder=3)
        ax.set_xlabel(xlabel)
    panels[0].set_yticks(range(len(targets)), labels, fontsize="x-small")
    panels[0].invert_yaxis()
    fig.suptitle(f"mnist-edge (blue) and {peer['server']} {peer['version']} (orange) on {peer['model_file']}: "
                 f"medians of {peer['rounds']} alternating rounds (dots)")
    fig.savefig(path, dpi=110)
    return True
