"""The benchmark suite's smoke run: every benchmark must be able to run.

``python -m bench --quick`` against the shared test stack. Figures are never checked (the
machine is shared and the run is seconds long); only that each part ran, produced its
results and that the report and its plots were written. Peers are skipped without --peers
and say so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run_all import PARTS
from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory, stack: Stack
) -> tuple[subprocess.CompletedProcess[str], Path]:
    # The run uses the session's stack (started by the fixture, so the session stops it).
    out = tmp_path_factory.mktemp("bench-report")
    # Figures go to the temporary folder too: a smoke run must not replace a real run's.
    env = {**os.environ, "LUMEN_TEST_KEEP_PLATFORM": "1", "LUMEN_BENCH_RESULTS_DIR": str(out)}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return done, out


def test_every_benchmark_runs(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, out = quick_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    suite = json.loads((out / "suite.json").read_text())
    assert suite["quick"] is True
    assert list(suite["parts"]) == list(PARTS)
    statuses = {name: part["status"] for name, part in suite["parts"].items()}
    assert statuses == {**{name: "ok" for name in PARTS}, "peers": "skipped"}, suite["parts"]
    assert "--peers" in suite["parts"]["peers"]["reason"]
    for name in ("raw_limits", "ingest", "profiles", "serving", "e2e"):
        saved = json.loads((out / f"{name}.json").read_text())
        assert saved["status"] == "ok" and saved["machine"]["cpus"]
    # The profile updater's rate is read against Faust's own with a no-op agent.
    throughput = suite["parts"]["profiles"]["throughput"]
    assert throughput["faust_read_only"]["events"] > 0, throughput
    # Storage at scale replays the same events once per copy, each under its own user ids.
    at_scale = suite["parts"]["profiles"]["storage_at_scale"]
    assert at_scale["profiles"] == at_scale["copies"] * throughput["profiles"] > 0, at_scale
    # ClassifyIntent's baseline: raw onnxruntime measured before and after the server's phases.
    raw = suite["parts"]["inference"]["raw_with_tokeniser"]
    assert raw["best_after_server_texts_per_second"] > 0, raw
    assert raw["baseline_texts_per_second"] == pytest.approx(
        (raw["best_texts_per_second"] + raw["best_after_server_texts_per_second"]) / 2
    )


def test_report_lists_targets_and_plots(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = quick_run
    report = (out / "report.md").read_text()
    for section in (
        "## Load conditions",
        "## Targets",
        "## Raw limits",
        "## Ingest",
        "## Profile updater",
        "## Inference server",
        "## End to end",
        "## Peak RSS per service",
    ):
        assert section in report, section
    plots = sorted(p.name for p in out.glob("*.png"))
    assert {
        "throughput_vs_concurrency.png",
        "latency_percentiles.png",
        "batch_sizes.png",
        "raw_onnxruntime.png",
    } <= set(plots), plots
    for plot in plots:
        assert f"]({plot})" in report
