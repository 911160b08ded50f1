"""Pre/post-processing the inference server shares with training.

Only numpy and tokenizers are imported here (no onnx, scikit-learn, safetensors),
so ``services/inference`` can use it with the runtime dependencies alone:

- :class:`models.runtime.text.TextTokenizer` turns texts into ``input_ids`` and
  ``attention_mask`` for ``text-encoder``, ``intent-classifier`` and ``item-search``.
- :class:`models.runtime.items.ItemIndex` maps catalogue item ids to the row
  indexes the ``recommender`` and ``item-search`` graphs use, and back.
- :func:`models.runtime.intent.decide_intent` applies the out-of-scope threshold.
"""

from models.runtime.intent import IntentDecision, decide_intent
from models.runtime.items import ItemIndex
from models.runtime.text import TextTokenizer

__all__ = ["IntentDecision", "ItemIndex", "TextTokenizer", "decide_intent"]
