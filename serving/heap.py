"""Garbage collection in a long-lived serving process (an API worker, the stream worker) and
in a batch run."""

import contextlib
import gc
from collections.abc import Iterator

THRESHOLDS = (70_000, 50, 100)  # Python's defaults: 700, 10, 10


def settle() -> None:
    """Freeze what exists once the process is set up out of collection, and collect ~100x
    rarer. torch, Feast and pandas leave ~a million long-lived objects, and serving holds many
    more for seconds (log rows waiting for their commit, velocity windows): full collections of
    them paused an API worker 15 ms every half second under load, the stream worker ~0.5 s."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


@contextlib.contextmanager
def settled() -> Iterator[None]:
    """`settle` for a block (a batch run: its lookups hold ~a million objects, and full
    collections of them took a third of a chunk's scoring), then as before."""
    before = gc.get_threshold()
    settle()
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
