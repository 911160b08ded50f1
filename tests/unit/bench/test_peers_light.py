"""The light-model peer benchmark's pairing of modes, its ratios and its registry (the runs
themselves need the peers' virtual environments)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import inference.grpc_service_pb2 as oip
import pytest

from bench.peers_light import MODEL, best_mode, light_registry, medians, ratios
from bench.workloads import oip_intent_requests
from shared.model_registry import get_version


def level(texts: float, p99: float) -> dict[str, float]:
    return {
        "throughput_rps": texts,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "server_cpu_ms_per_request": 1000 / texts,
    }


def one_round(figures: dict[str, tuple[float, float]]) -> dict[str, Any]:
    return {label: {"1": level(*pair)} for label, pair in figures.items()}


ROUNDS = [
    one_round(
        {
            "lumen/batching_on": (200.0, 10.0),
            "lumen/batching_off": (150.0, 12.0),
            "mlserver/batching_off": (80.0, 20.0),
            "mlserver/batching_on_32x2ms": (100.0, 25.0),
            "mlserver/batching_on_32x5ms": (90.0, 30.0),
        }
    ),
    one_round(
        {
            "lumen/batching_on": (120.0, 10.0),
            "lumen/batching_off": (180.0, 8.0),
            "mlserver/batching_off": (60.0, 16.0),
            "mlserver/batching_on_32x2ms": (50.0, 20.0),
            "mlserver/batching_on_32x5ms": (90.0, 40.0),
        }
    ),
    one_round(
        {
            "lumen/batching_on": (100.0, 10.0),
            "lumen/batching_off": (90.0, 10.0),
            "mlserver/batching_off": (100.0, 10.0),
            "mlserver/batching_on_32x2ms": (100.0, 10.0),
            "mlserver/batching_on_32x5ms": (50.0, 10.0),
        }
    ),
]


def test_best_mode_is_the_fastest_of_that_prefix_in_that_round() -> None:
    assert best_mode(ROUNDS[0], "lumen/", "1") == "lumen/batching_on"
    assert best_mode(ROUNDS[1], "lumen/", "1") == "lumen/batching_off"
    assert best_mode(ROUNDS[1], "mlserver/batching_on", "1") == "mlserver/batching_on_32x5ms"


def test_ratios_pair_modes_within_each_round_and_report_the_median() -> None:
    out = ratios(ROUNDS, (1,), ["mlserver"])["1"]["mlserver"]
    best = out["best_vs_best"]
    # Round 1: 200/100, round 2: 180/90, round 3: 100/100 (ties keep the first mode).
    assert best["texts_per_second_ratio_by_round"] == [2.0, 2.0, 1.0]
    assert best["texts_per_second_ratio_median"] == 2.0
    assert best["modes_by_round"][1] == ["lumen/batching_off", "mlserver/batching_on_32x5ms"]
    assert best["p99_ratio_by_round"] == [0.4, 0.2, 1.0]
    assert best["p99_ratio_median"] == 0.4
    off = out["batching_off_vs_off"]
    assert off["texts_per_second_ratio_by_round"] == [1.875, 3.0, 0.9]
    on = out["batching_on_vs_best_on"]
    assert [pair[1] for pair in on["modes_by_round"]] == [
        "mlserver/batching_on_32x2ms",
        "mlserver/batching_on_32x5ms",
        "mlserver/batching_on_32x2ms",
    ]
    assert on["texts_per_second_ratio_by_round"] == [2.0, 1.333, 1.0]


def test_a_peer_without_batching_gets_no_batching_on_pairing() -> None:
    rounds = [{**r, "kserve/batching_off": {"1": level(50.0, 20.0)}} for r in ROUNDS]
    out = ratios(rounds, (1,), ["kserve"])["1"]["kserve"]
    assert set(out) == {"best_vs_best", "batching_off_vs_off"}
    assert out["best_vs_best"]["texts_per_second_ratio_by_round"] == [4.0, 3.6, 2.0]


def test_medians_are_per_configuration_and_level() -> None:
    out = medians(ROUNDS, (1,))
    assert out["lumen/batching_on"]["1"]["throughput_rps"] == 120.0
    assert out["mlserver/batching_on_32x5ms"]["1"]["p99_ms"] == 30.0


@pytest.mark.skipif(
    not os.environ.get("LUMEN_TEST_SMALL_REGISTRY"), reason="needs the small models' registry"
)
def test_the_light_registry_links_the_same_model_file_and_requests_fit_it() -> None:
    source = Path(os.environ["LUMEN_TEST_SMALL_REGISTRY"])
    if not (source / MODEL).is_dir():
        pytest.skip(f"{source} has no {MODEL}")
    root = light_registry(source)
    try:
        assert sorted(p.name for p in root.iterdir()) == [MODEL]
        linked = get_version(MODEL, root=root).model_path
        assert linked.resolve() == get_version(MODEL, root=source).model_path.resolve()
        requests = oip_intent_requests(root, MODEL)
        message = oip.ModelInferRequest.FromString(requests[0])
        assert message.model_name == MODEL
        assert [(t.name, list(t.shape)) for t in message.inputs] == [
            ("input_ids", [1, 24]),
            ("attention_mask", [1, 24]),
        ]
        assert [o.name for o in message.outputs] == ["probabilities"]
        # Token ids come from this model's own tokenizer: MiniLM's [CLS] (101) first, where the
        # MPNet tokenizer of intent-classifier would start with <s> (0).
        ids = int.from_bytes(message.raw_input_contents[0][:8], "little")
        assert ids == 101
    finally:
        for link in root.iterdir():
            link.unlink()
        root.rmdir()
    assert source.joinpath(MODEL).is_dir()  # the source is untouched
