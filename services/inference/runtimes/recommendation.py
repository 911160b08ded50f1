"""Next-item recommendation: histories of item rows and an exclusion mask in, the top items
out (``items``, ``scores``, and ``reasons`` when the graph names the history position
behind each); ``items.json`` names the item axis."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from services.inference.errors import ModelRefused
from services.inference.runtimes import files
from services.inference.runtimes.base import Ranked, Runtime, Tensors, ranked
from services.inference.runtimes.files import Extras
from shared.model_registry import ModelConfig

MAX_K = 100


def item_count(config: ModelConfig) -> int:
    """The item axis of the version's ``exclude_mask`` input (0 when it is not declared)."""
    for spec in config.inputs:
        if spec.name == "exclude_mask" and isinstance(spec.shape[-1], int):
            return spec.shape[-1]
    return 0


class NextItemRecommendation(Runtime):
    task = "next-item-recommendation"
    required_roles = ("items", "scores")
    optional_roles = ("reasons",)
    # About 0.2-0.3 ms per execution on callers' request paths: holding a request back for a
    # fuller batch costs more than batching saves, so it batches only what queues up while an
    # execution runs (Triton's default delay, 0), and executions of up to 8 rows (1.3 ms at
    # most) run on the event loop: handing them to a thread cost more CPU than the run and,
    # at 200 Recommend/s, doubled the p99.
    batching: ClassVar[dict[str, Any]] = {"max_queue_delay_us": 0, "inline_max_rows": 8}
    # Above this many items an execution takes a millisecond or more (every full-width step
    # of the graph is a pass over the catalogue): on the loop it would hold every other
    # request back, so it goes to an executor thread (onnxruntime releases the GIL there).
    INLINE_MAX_ITEMS: ClassVar[int] = 20_000

    def batching_for(self, config: ModelConfig) -> dict[str, Any]:
        knobs = super().batching_for(config)
        if item_count(config) > self.INLINE_MAX_ITEMS:
            knobs["inline_max_rows"] = 0
        return knobs

    def load_extras(self, path: Path, config: ModelConfig) -> Extras:
        extras = Extras()
        files.item_index(path, config, extras)
        return extras

    def check(self, config: ModelConfig, roles: dict[str, str], extras: Extras) -> None:
        super().check(config, roles, extras)
        for spec in config.inputs:
            if spec.name == "exclude_mask" and extras.items is not None:
                size = spec.shape[-1]
                if isinstance(size, int) and size != len(extras.items):
                    raise ModelRefused(
                        f"exclude_mask has {size} items, items.json {len(extras.items)}"
                    )

    def encode(
        self, extras: Extras, histories: list[list[str]], exclude: np.ndarray, length: int
    ) -> Tensors:
        """One row per history (newest last, cut to ``length``); ``exclude`` is one mask row
        shared by all of them."""
        index = extras.items
        assert index is not None
        return {
            "recent_items": index.recent_items(histories, length),
            "exclude_mask": np.repeat(exclude, len(histories), axis=0),
            # The same k for every request, so that every request shares one batch key.
            "k": np.array([min(MAX_K, len(index))], dtype=np.int64),
        }

    def decode(self, roles: dict[str, str], outputs: Tensors) -> Ranked:
        return ranked(roles, outputs)
