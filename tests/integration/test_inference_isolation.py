"""One caller's bad tensors fail only that caller: ModelInfer inputs are checked against the
model's own limits before batching, request size is bounded, and ModelReady reads only
the registry's own folders. Real server on tiny registry models, real mongod."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import grpc
import inference.grpc_service_pb2 as v2
import inference.grpc_service_pb2_grpc as v2_grpc
import pytest
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc

from models.runtime.text import MAX_TOKENS
from tests.integration.inference_helpers import start_inference, tiny_registry
from tests.support.stack import ServiceProcess, Stack
from tests.unit.inference import tiny_models as tiny

MAX_REQUEST_BYTES = 1 << 20
Tensor = v2.ModelInferRequest.InferInputTensor


@pytest.fixture(scope="module")
def registry() -> Path:
    return tiny_registry()


@pytest.fixture(scope="module")
def server(stack: Stack, registry: Path) -> Iterator[ServiceProcess]:
    service = start_inference(
        stack,
        registry,
        LUMEN_INFERENCE_SUPPORT_CONSUMER_ENABLED="false",
        LUMEN_INFERENCE_MAX_REQUEST_BYTES=str(MAX_REQUEST_BYTES),
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def channel(server: ServiceProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as ch:
        yield ch


def tokens(ids: list[int], mask: list[int] | None = None) -> v2.ModelInferRequest:
    mask = [1] * len(ids) if mask is None else mask
    return v2.ModelInferRequest(
        model_name="intent-classifier",
        inputs=[
            Tensor(
                name="input_ids",
                datatype="INT64",
                shape=[1, len(ids)],
                contents=v2.InferTensorContents(int64_contents=ids),
            ),
            Tensor(
                name="attention_mask",
                datatype="INT64",
                shape=[1, len(mask)],
                contents=v2.InferTensorContents(int64_contents=mask),
            ),
        ],
    )


def refusal(channel: grpc.Channel, request: v2.ModelInferRequest) -> tuple[str, str]:
    try:
        v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    except grpc.RpcError as exc:
        return exc.code().name, exc.details() or ""
    raise AssertionError("the call succeeded")


def test_values_past_the_models_own_limits_are_refused_by_name(channel: grpc.Channel) -> None:
    vocabulary = len(tiny.vocabulary())  # the tokenizer.json of the served version
    known = tiny.vocabulary()["refund"]
    cases = {
        "input_ids": [tokens([known, 999_999_999]), tokens([known, vocabulary]), tokens([-3])],
        "attention_mask": [
            tokens([known, known], mask=[1, 7]),
            tokens([known, known], mask=[1]),
        ],
        "tokens": [tokens([known] * (MAX_TOKENS + 1))],
    }
    for name, requests in cases.items():
        for request in requests:
            code, details = refusal(channel, request)
            assert code == "INVALID_ARGUMENT", (name, details)
            assert name in details
    assert "vocabulary" in refusal(channel, tokens([vocabulary]))[1]
    # The largest id of the vocabulary and the longest sequence still run.
    answer = v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
        tokens([vocabulary - 1] * MAX_TOKENS), timeout=10
    )
    assert answer.outputs[0].name == "probabilities"


def test_recommender_history_rows_below_the_padding_are_refused(channel: grpc.Channel) -> None:
    request = v2.ModelInferRequest(
        model_name="recommender",
        inputs=[
            Tensor(
                name="recent_items",
                datatype="INT64",
                shape=[1, 2],
                contents=v2.InferTensorContents(int64_contents=[0, -9]),
            ),
            Tensor(
                name="exclude_mask",
                datatype="BOOL",
                shape=[1, 8],
                contents=v2.InferTensorContents(bool_contents=[False] * 8),
            ),
            Tensor(
                name="k",
                datatype="INT64",
                shape=[1],
                contents=v2.InferTensorContents(int64_contents=[3]),
            ),
        ],
    )
    code, details = refusal(channel, request)
    assert code == "INVALID_ARGUMENT" and "recent_items" in details


def test_bad_model_infer_calls_fail_alone_beside_classify_intent(channel: grpc.Channel) -> None:
    """The reproduction of issue 24 scaled down: out-of-vocabulary ids sent at the same time
    as ordinary ClassifyIntent calls, which share the intent model's batches."""
    infer = v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer
    classify = pb_grpc.IntentServiceStub(channel).ClassifyIntent
    bad_request = tokens([tiny.vocabulary()["refund"], 999_999_999])
    bad: list[Future[v2.ModelInferResponse]] = []
    good: list[Future[pb.ClassifyIntentResponse]] = []
    for i in range(300):
        if i % 3 == 2:
            good.append(classify.future(pb.ClassifyIntentRequest(text="refund please"), timeout=30))
        else:
            bad.append(infer.future(bad_request, timeout=30))
    good_codes = [f.exception().code().name if f.exception() else "OK" for f in good]  # type: ignore[union-attr]
    bad_codes = [f.exception().code().name if f.exception() else "OK" for f in bad]  # type: ignore[union-attr]
    assert good_codes == ["OK"] * 100
    assert bad_codes == ["INVALID_ARGUMENT"] * 200
    assert {f.result().prediction.intent for f in good} == {"refund"}


def test_requests_over_the_size_bound_are_refused(channel: grpc.Channel) -> None:
    huge = v2.ModelInferRequest(
        model_name="intent-classifier",
        inputs=[Tensor(name="input_ids", datatype="INT64", shape=[1, MAX_REQUEST_BYTES // 8 + 1])],
        raw_input_contents=[b"\0" * (MAX_REQUEST_BYTES + 8)],
    )
    code, _ = refusal(channel, huge)
    assert code == "RESOURCE_EXHAUSTED"
    answer = pb_grpc.IntentServiceStub(channel).ClassifyIntent(
        pb.ClassifyIntentRequest(text="refund please"), timeout=10
    )
    assert answer.prediction.intent == "refund"  # the server keeps serving


def test_model_ready_reads_only_the_registrys_own_folders(
    channel: grpc.Channel, registry: Path
) -> None:
    """A name is looked up among the registry's model folders, never joined onto its path:
    '../elsewhere' would otherwise tell a caller which folders exist outside it."""
    outside = registry.parent / f"outside-{uuid.uuid4().hex[:6]}"
    (outside / "1").mkdir(parents=True)
    (outside / "1" / "config.json").write_text("{}")
    stub = v2_grpc.GRPCInferenceServiceStub(channel)
    for name in (
        f"../{outside.name}",
        str(outside),
        f"../{registry.name}/intent-classifier",
        "intent-classifier/../recommender",
        "/etc",
        "..",
    ):
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelReady(v2.ModelReadyRequest(name=name), timeout=5)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND, name
    assert stub.ModelReady(v2.ModelReadyRequest(name="intent-classifier"), timeout=5).ready
