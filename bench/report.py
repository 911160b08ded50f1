"""Markdown report with PNG plots from ``bench/results/suite.json``.

.venv/bin/python -m bench.report [--suite bench/results/suite.json] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR

MIB = 2**20


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _get(tree: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


# ---------------------------------------------------------------- plots


def plot_throughput(suite: dict[str, Any], out: Path) -> str | None:
    series: dict[str, dict[str, Any]] = {}
    lumen = _get(suite, "parts", "inference", "modes") or {}
    for mode, figures in lumen.items():
        for api in ("oip_model_infer", "classify_intent"):
            levels = figures.get(api) or {}
            if len(levels) > 0:
                series[f"Lumen {api} ({mode.replace('_', ' ')})"] = levels
    peer = _get(suite, "parts", "peers", "mlserver", "modes") or {}
    for mode, figures in peer.items():
        series[f"MLServer oip_model_infer ({mode.replace('_', ' ')})"] = figures["oip_model_infer"]
    kserve = _get(suite, "parts", "peers", "kserve", "modes", "batching_off", "oip_model_infer")
    if kserve:
        series["KServe oip_model_infer (no batching)"] = kserve
    if not series:
        return None
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, levels in series.items():
        xs = sorted(levels, key=int)
        style = "-" if label.startswith("Lumen") else "--"
        left.plot(
            [int(x) for x in xs],
            [levels[x]["throughput_rps"] for x in xs],
            style,
            marker="o",
            label=label,
        )
        right.plot(
            [int(x) for x in xs], [levels[x]["p99_ms"] for x in xs], style, marker="o", label=label
        )
    left.set(
        xlabel="concurrent streams (closed loop)",
        ylabel="requests/s",
        title="Throughput vs concurrency",
    )
    right.set(
        xlabel="concurrent streams (closed loop)",
        ylabel="p99 latency (ms)",
        title="p99 vs concurrency",
    )
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.grid(alpha=0.3)
    left.legend(fontsize=7)
    fig.tight_layout()
    name = "throughput_vs_concurrency.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def plot_latency(suite: dict[str, Any], out: Path) -> str | None:
    runs: dict[str, dict[str, Any]] = {}
    on = _get(suite, "parts", "inference", "modes", "batching_on") or {}
    for api, label in (
        ("classify_intent", "ClassifyIntent x32"),
        ("oip_model_infer", "ModelInfer x32"),
    ):
        run = _get(on, api, "32")
        if run:
            runs[f"Lumen {label}"] = run
    if on.get("recommend_open_loop"):
        runs["Lumen Recommend (open loop)"] = on["recommend_open_loop"]
    if on.get("search_items"):
        runs["Lumen SearchItems x8"] = on["search_items"]
    peers = _get(suite, "parts", "peers", "mlserver") or {}
    best = peers.get("best_batching_mode")
    if best and _get(peers, "modes", best, "oip_model_infer", "32"):
        runs["MLServer ModelInfer x32"] = peers["modes"][best]["oip_model_infer"]["32"]
    if not runs:
        return None
    plt = _plt()
    fig, axis = plt.subplots(figsize=(10, 4.5))
    names = ("p50_ms", "p90_ms", "p99_ms", "p999_ms")
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        axis.bar(
            [x + i * width for x in range(len(runs))],
            [r[name] for r in runs.values()],
            width,
            label=name.removesuffix("_ms"),
        )
    axis.set_xticks([x + 0.4 - width / 2 for x in range(len(runs))], list(runs), fontsize=8)
    axis.set(ylabel="latency (ms)", title="Latency percentiles", yscale="log")
    axis.legend()
    axis.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    name = "latency_percentiles.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def plot_batches(suite: dict[str, Any], out: Path) -> str | None:
    on = _get(suite, "parts", "inference", "modes", "batching_on") or {}
    hists = {}
    for api in ("classify_intent", "oip_model_infer"):
        run = _get(on, api, "32", "server_batching", "executions_by_batch_size")
        if run:
            hists[f"{api} x32"] = run
    rec = _get(on, "recommend_open_loop", "server_batching", "executions_by_batch_size")
    if rec:
        hists["recommend (open loop)"] = rec
    if not hists:
        return None
    plt = _plt()
    fig, axis = plt.subplots(figsize=(9, 4))
    edges = sorted({le for h in hists.values() for le in h}, key=float)
    width = 0.8 / len(hists)
    for i, (label, hist) in enumerate(hists.items()):
        total = sum(hist.values()) or 1
        axis.bar(
            [x + i * width for x in range(len(edges))],
            [100 * hist.get(le, 0) / total for le in edges],
            width,
            label=label,
        )
    axis.set_xticks(
        [x + 0.4 - width / 2 for x in range(len(edges))],
        [f"<= {float(le):g}" if le != "+Inf" else "> 256" for le in edges],
    )
    axis.set(
        xlabel="rows per execution",
        ylabel="% of executions",
        title="Dynamic batch sizes (server metrics)",
    )
    axis.legend()
    fig.tight_layout()
    name = "batch_sizes.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def plot_freshness(suite: dict[str, Any], out: Path) -> str | None:
    delays = _get(suite, "parts", "e2e", "freshness_ms")
    if not delays:
        return None
    plt = _plt()
    fig, axis = plt.subplots(figsize=(8, 4))
    axis.hist(delays, bins=min(40, max(5, len(delays) // 3)))
    e2e = suite["parts"]["e2e"]
    for key, style in (("freshness_p50_ms", "-"), ("freshness_p99_ms", "--")):
        axis.axvline(
            e2e[key], color="black", linestyle=style, label=f"{key.split('_')[1]} {e2e[key]:.0f} ms"
        )
    axis.set(
        xlabel="event sent -> recommendations changed (ms)",
        ylabel="events",
        title=f"End-to-end freshness at {e2e['offered_events_per_s']} events/s",
    )
    axis.legend()
    fig.tight_layout()
    name = "e2e_freshness.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def plot_raw_onnx(suite: dict[str, Any], out: Path) -> str | None:
    models = _get(suite, "parts", "raw_limits", "onnxruntime", "models")
    if not models:
        return None
    plt = _plt()
    fig, axis = plt.subplots(figsize=(8, 4))
    for name, figures in models.items():
        xs = sorted(figures["by_batch"], key=int)
        axis.plot(
            [int(x) for x in xs],
            [figures["by_batch"][x]["rows_per_s"] for x in xs],
            marker="o",
            label=name,
        )
    axis.set(
        xscale="log",
        yscale="log",
        xlabel="batch size",
        ylabel="rows/s",
        title="Raw onnxruntime per model",
    )
    axis.set_xscale("log", base=2)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    fig.tight_layout()
    name = "raw_onnxruntime.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


# ---------------------------------------------------------------- markdown


def _mark(met: bool | None) -> str:
    return {True: "met", False: "**MISSED**", None: "n/a"}[met]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _load_table(run: dict[str, Any], label: str) -> str:
    return (
        f"| {label} | {_fmt(run['throughput_rps'])} | {_fmt(run['p50_ms'])} | "
        f"{_fmt(run['p99_ms'])} | {_fmt(run['p999_ms'])} | {sum(run['errors'].values())} | "
        f"{_fmt(run['client_cpu_percent'])} | {_fmt(run.get('max_send_lag_ms', 0.0))} |"
    )


# Client CPU and (open loop) the generator's own lateness show whether the client kept up.
LOAD_HEADER = (
    "| run | req/s | p50 ms | p99 ms | p99.9 ms | errors | client CPU % | send lag ms |\n"
    "|---|---|---|---|---|---|---|---|"
)


def markdown(suite: dict[str, Any], plots: list[str]) -> str:
    parts = suite["parts"]
    lines = [f"# Lumen benchmark report{' (quick smoke run)' if suite['quick'] else ''}", ""]
    m = suite.get("machine", {})
    lines += [
        f"Commit `{m.get('commit', '?')}`, {m.get('cpus')} CPUs, Python {m.get('python')}, "
        f"{m.get('platform', '')}. Wall time {suite.get('wall_seconds', '?')} s. "
        f"Command: `{suite.get('command', '')}`.",
        "",
        f"Kafka {suite['platform']['kafka']}, MongoDB {suite['platform']['mongo']} "
        f"({'private to this run' if suite['platform']['private'] else 'shared test stack'}); "
        f"models from `{suite.get('registry')}`.",
        "",
    ]
    before, after = suite.get("load_before", {}), suite.get("load_after", {})
    lines += [
        "## Load conditions",
        "",
        f"Load average before {before.get('load_average')}, after {after.get('load_average')} "
        f"on {before.get('cpus')} CPUs. Busiest other processes at the start:",
        "",
    ]
    for proc in before.get("busy_processes", [])[:8]:
        lines.append(f"- {proc['cpu_percent']} % CPU, {proc['rss_mib']} MiB: `{proc['command']}`")
    lines += [
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in suite.get("versions", {}).items()),
        "",
    ]

    lines += [
        "## Targets",
        "",
        "| figure | target | measured | ratio | status |",
        "|---|---|---|---|---|",
    ]
    for row in suite.get("targets", []):
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(
            f"| {row['name']} | {row['target']} | {row['measured']} | {ratio} | "
            f"{_mark(row['met'])} |"
        )
    lines += [
        "",
        "Status of each part: "
        + ", ".join(
            f"{n} **{p['status']}**"
            + (f" ({p.get('error') or p.get('reason')})" if p["status"] != "ok" else "")
            for n, p in parts.items()
        ),
        "",
    ]

    for plot in plots:
        lines += [f"![{plot.removesuffix('.png')}]({plot})", ""]

    raw = parts.get("raw_limits", {})
    if raw.get("status") == "ok":
        k = raw["kafka"]
        lines += [
            "## Raw limits",
            "",
            f"- bare kafka-python producer: **{_fmt(k['produce']['events_per_s'])} events/s** "
            f"({k['produce']['events']} ingest-enriched events to `{k['topic']}`)",
            f"- bare kafka-python consumer: **{_fmt(k['consume']['events_per_s'])} events/s**, "
            f"{k['consume']['mib_per_s']} MiB/s (the same records read back)",
            f"- MongoDB unordered bulk upserts: **{_fmt(raw['mongodb']['upserts_per_s'])} /s** "
            f"(batches of {raw['mongodb']['batch']})",
            "",
            "| model | best batch | best rows/s | rows/s at 1 | rows/s at 32 |",
            "|---|---|---|---|---|",
        ]
        for name, f in raw["onnxruntime"]["models"].items():
            lines.append(
                f"| {name} | {f['best_batch']} | {_fmt(f['best_rows_per_s'])} | "
                f"{_fmt(_get(f, 'by_batch', '1', 'rows_per_s'))} | "
                f"{_fmt(_get(f, 'by_batch', '32', 'rows_per_s'))} |"
            )
        lines.append("")

    ingest = parts.get("ingest", {})
    if ingest.get("status") == "ok":
        b = ingest["batch"]
        lines += [
            "## Ingest",
            "",
            f"- `/v1/batch` x{ingest['batch_size']}: {_fmt(b['events_per_s'])} events/s, "
            f"p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms",
            *(
                f"- `/v1/track` {label}: {_fmt(r['requests_per_s'])} req/s, p50 {r['p50_ms']} ms, "
                f"p99 {r['p99_ms']} ms, failures {r['failures']}"
                for label, r in (
                    ("closed loop, 50 clients", ingest["track_closed_loop_50_clients"]),
                    ("paced at 1,000 req/s", ingest["track_paced_1000_rps"]),
                )
            ),
            "",
        ]

    prof = parts.get("profiles", {})
    if prof.get("status") == "ok":
        t, f = prof["throughput"], prof["freshness"]
        lines += [
            "## Profile updater",
            "",
            f"- {t['events']} MovieLens events: {_fmt(t['throughput_events_per_s'])} events/s "
            f"(bare aiokafka read {_fmt(t['bare_read_events_per_s'])} events/s, ratio "
            f"{t['ratio_to_bare_read']}; the same Faust app with a no-op agent "
            f"{_fmt(t.get('faust_read_only', {}).get('events_per_s'))} events/s)",
            f"- storage: {t['storage']['bytes_per_profile']} bytes/profile = "
            f"{t['storage']['gib_per_million_users']} GiB per million users on disk, "
            f"{t['storage'].get('live_gib_per_million_users', 'n/a')} without free "
            "blocks kept for reuse",
            *(
                f"- storage at {a['profiles']:,} profiles (MovieLens users x{a['copies']}): "
                f"{a['bytes_per_profile']} bytes/profile = {a['gib_per_million_users']} GiB "
                f"per million users on disk, {a['live_gib_per_million_users']} without free "
                "blocks"
                for a in [prof.get("storage_at_scale")]
                if a
            ),
            f"- freshness at {f['offered_rate_per_s']} events/s: p50 {f['p50_seconds']} s, "
            f"p99 {f['p99_seconds']} s, max {f['max_seconds']} s",
            "",
        ]

    inf = parts.get("inference", {})
    if inf.get("status") == "ok":
        lines += ["## Inference server", "", LOAD_HEADER]
        for mode, figures in inf["modes"].items():
            for api in ("classify_intent", "oip_model_infer"):
                for level, run in sorted(figures.get(api, {}).items(), key=lambda x: int(x[0])):
                    batch = run.get("server_batching", {})
                    lines.append(
                        _load_table(
                            run,
                            f"{api} x{level}, {mode.replace('_', ' ')} "
                            f"(avg batch {batch.get('average_batch_size', 0):.1f}, "
                            f"queue {batch.get('average_queue_ms', 0):.2f} ms)",
                        )
                    )
            for key in ("recommend_open_loop", "search_items"):
                if key in figures:
                    lines.append(_load_table(figures[key], key.replace("_", " ")))
        lines.append("")

    peers = parts.get("peers", {})
    if peers.get("status") == "ok":
        lines += [
            "## Peers (same model file, same ModelInfer bytes, same load generator)",
            "",
            LOAD_HEADER,
        ]
        for mode, figures in peers["mlserver"]["modes"].items():
            for level, run in sorted(figures["oip_model_infer"].items(), key=lambda x: int(x[0])):
                lines.append(_load_table(run, f"MLServer x{level}, {mode.replace('_', ' ')}"))
        kserve = peers.get("kserve", {})
        for level, run in sorted(
            (_get(kserve, "modes", "batching_off", "oip_model_infer") or {}).items(),
            key=lambda x: int(x[0]),
        ):
            lines.append(_load_table(run, f"KServe x{level}, no batching"))
        if kserve.get("status") == "skipped":
            lines.append(f"\nKServe not run: {kserve['reason']}.")
        lines.append("")
    elif peers:
        lines += [
            "## Peer: MLServer",
            "",
            f"Not run: {peers.get('reason') or peers.get('error')}",
            "",
        ]

    e2e = parts.get("e2e", {})
    if e2e.get("status") == "ok":
        lines += [
            "## End to end",
            "",
            f"MovieLens 100k replayed at {e2e['offered_events_per_s']} events/s (achieved "
            f"{e2e['achieved_background_events_per_s']}), {e2e['probe_users']} probe users: "
            f"event -> changed recommendations p50 **{e2e['freshness_p50_ms']} ms**, p99 "
            f"**{e2e['freshness_p99_ms']} ms** over {e2e['changed']} events; "
            f"{e2e['unchanged_within_timeout']} did not change the list within "
            f"{e2e['probe_timeout_seconds']} s. Recommend during the replay: p50 "
            f"{e2e['recommend_p50_ms']} ms, p99 {e2e['recommend_p99_ms']} ms.",
            "",
        ]

    lines += ["## Peak RSS per service", "", "| part | process | peak RSS MiB |", "|---|---|---|"]
    for name, part in parts.items():
        for proc, rss in (part.get("peak_rss_bytes") or {}).items():
            lines.append(f"| {name} | {proc} | {rss / MIB:.0f} |")
        for peer in ("mlserver", "kserve"):
            for mode, figures in (_get(part, peer, "modes") or {}).items():
                lines.append(
                    f"| {name} | {peer} ({mode}) | {figures['peak_rss_bytes'] / MIB:.0f} |"
                )
    lines.append("")
    return "\n".join(lines)


def write(suite: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    plots = [
        p
        for p in (
            plot_throughput(suite, out),
            plot_latency(suite, out),
            plot_batches(suite, out),
            plot_freshness(suite, out),
            plot_raw_onnx(suite, out),
        )
        if p
    ]
    path = out / "report.md"
    path.write_text(markdown(suite, plots))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default=str(RESULTS_DIR / "suite.json"))
    parser.add_argument("--out", default=str(RESULTS_DIR))
    args = parser.parse_args()
    print(write(json.loads(Path(args.suite).read_text()), Path(args.out)))


if __name__ == "__main__":
    main()
