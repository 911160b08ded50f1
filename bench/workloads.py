"""Pre-serialised requests for the load generator: the same bytes for Lumen and its peers."""

from __future__ import annotations

from pathlib import Path

import inference.grpc_service_pb2 as oip
import numpy as np
from lumen.v1 import inference_pb2 as pb

from bench.inference_bench import TEXTS
from shared.model_registry import get_version

OIP_INFER = "/inference.GRPCInferenceService/ModelInfer"
CLASSIFY = "/lumen.v1.IntentService/ClassifyIntent"
RECOMMEND = "/lumen.v1.RecommendationService/Recommend"
SEARCH = "/lumen.v1.SearchService/SearchItems"
INTENT_MODEL = "intent-classifier"
QUERIES = [
    "space adventure with robots",
    "romantic comedy in paris",
    "animated toys",
    "crime thriller",
    "western with cowboys",
    "sad drama about family",
]


def intent_token_batches(
    registry: Path, tokens: int = 24, model_name: str = INTENT_MODEL
) -> list[dict[str, np.ndarray]]:
    """Each text tokenised by ``model_name``'s tokenizer and padded to ``tokens`` so every
    request has the same shape (adaptive batchers that concatenate without padding can merge
    them)."""
    from models.runtime import TextTokenizer

    tokenizer = TextTokenizer(get_version(model_name, root=registry).path / "tokenizer.json")
    out = []
    for text in TEXTS:
        encoded = tokenizer.encode([text])
        ids = np.zeros((1, tokens), dtype=np.int64)
        mask = np.zeros((1, tokens), dtype=np.int64)
        n = min(tokens, encoded["input_ids"].shape[1])
        ids[0, :n] = encoded["input_ids"][0, :n]
        mask[0, :n] = encoded["attention_mask"][0, :n]
        out.append({"input_ids": ids, "attention_mask": mask})
    return out


def oip_intent_requests(registry: Path, model_name: str = INTENT_MODEL) -> tuple[bytes, ...]:
    """Open Inference Protocol ModelInfer requests (raw contents, as Triton clients send)."""
    requests = []
    for tensors in intent_token_batches(registry, model_name=model_name):
        request = oip.ModelInferRequest(model_name=model_name)
        for name, array in tensors.items():
            request.inputs.add(name=name, datatype="INT64", shape=list(array.shape))
            request.raw_input_contents.append(array.astype("<i8").tobytes())
        request.outputs.add(name="probabilities")
        requests.append(request.SerializeToString())
    return tuple(requests)


def classify_requests() -> tuple[bytes, ...]:
    return tuple(pb.ClassifyIntentRequest(text=t).SerializeToString() for t in TEXTS)


def recommend_requests(users: list[str], k: int = 10) -> tuple[bytes, ...]:
    return tuple(pb.RecommendRequest(user_id=u, k=k).SerializeToString() for u in users)


def search_requests(k: int = 10) -> tuple[bytes, ...]:
    return tuple(pb.SearchItemsRequest(query=q, k=k).SerializeToString() for q in QUERIES)
