"""Garbage-collector settings for request-serving processes.

CPython's cyclic collector stops the whole process while it runs, and a full (generation 2)
collection walks every tracked object, most of which are the modules, classes and functions
loaded at start-up and never freed. A serving process freezes what exists once it is up
(``gc.freeze``: those objects are left out of every later collection) and lets more
allocations pass between young-generation collections, so full collections come rarely and
walk only what the traffic created.
"""

from __future__ import annotations

import gc


def tune_for_serving(gen0_threshold: int) -> None:
    """Freeze the start-up objects and set the young-generation threshold (0: leave both)."""
    if gen0_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
