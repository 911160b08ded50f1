"""Safe MongoDB field names from user-supplied strings (event names, categories, trait keys).

A ``.`` would address a sub-document and a leading ``$`` an operator; both are replaced by
their full-width look-alikes, as MongoDB's documentation suggests, so any name can be stored
(a NUL, which BSON cannot hold in a key, becomes U+FFFD and does not round-trip).
"""

from __future__ import annotations

from functools import lru_cache

_ESCAPES = str.maketrans({".": "\uff0e", "$": "\uff04", "\x00": "\ufffd"})
_UNESCAPES = str.maketrans({"\uff0e": ".", "\uff04": "$"})


# The same few event names and categories come back on every event: escape each once.
@lru_cache(maxsize=65536)
def escape(name: str) -> str:
    return name.translate(_ESCAPES) or "\uff3f"  # an empty key is not allowed either


def unescape(name: str) -> str:
    return name.translate(_UNESCAPES)
