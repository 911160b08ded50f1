"""Tokenisation for the BERT/MPNet text graphs (``tokenizers`` only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2


class TextTokenizer:
    """Wraps ``tokenizer.json``: truncates to ``max_tokens`` and pads to the longest text.

    The shipped ``tokenizer.json`` files pad every text to 128 and truncate at 128; we
    replace both so that results match sentence-transformers (256 tokens) and
    short batches stay short, keeping each file's own pad token.
    """

    def __init__(self, path: str | Path, max_tokens: int = MAX_TOKENS) -> None:
        self.max_tokens = max_tokens
        self._tok = Tokenizer.from_file(str(path))
        self._tok.enable_truncation(max_length=max_tokens)
        shipped = self._tok.padding or {"pad_id": 0, "pad_token": "[PAD]"}
        self.pad_id = int(shipped["pad_id"])
        # Pad to the longest text of the batch.
        self._tok.enable_padding(pad_id=self.pad_id, pad_token=shipped["pad_token"])

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Return ``{"input_ids", "attention_mask"}`` as int64 arrays of shape [B, T]."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not a single string")
        encodings = self._tok.encode_batch(list(texts))
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        if ids.ndim != 2:  # empty batch
            ids = mask = np.zeros((0, 1), dtype=np.int64)
        return {"input_ids": ids, "attention_mask": mask}
