"""``GcState`` (the runner's ``--gc-freeze``): the post-sync step freezes without a
collection, which would traverse the whole cache with the event loop blocked
(bench/RESULTS.md, "Scaling curve")."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from informer._manager.startup import GC_THRESHOLDS, GcState

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generation of every collection that starts while the test runs."""
    seen: list[int] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(int(info["generation"]))

    enabled, thresholds = gc.isenabled(), gc.get_threshold()
    gc.callbacks.append(record)
    try:
        yield seen
    finally:
        gc.callbacks.remove(record)
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        (gc.enable if enabled else gc.disable)()


def test_freeze_after_the_sync_does_not_collect(collections: list[int]) -> None:
    state = GcState()
    state.disable()
    assert collections == [2]  # one full collection before the sync, while the heap is small
    assert not gc.isenabled()
    cache = {f"ns/cm-{i:06d}": {"metadata": {"name": str(i)}, "data": {}} for i in range(50_000)}
    frozen_before = gc.get_freeze_count()
    state.freeze()
    assert collections == [2]  # none at the freeze: it would traverse the whole cache
    assert gc.get_freeze_count() >= frozen_before + len(cache)  # the cache is frozen
    assert gc.isenabled()
    assert gc.get_threshold() == GC_THRESHOLDS
    state.restore()
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("enabled", [True, False], ids=["gc-on", "gc-off"])
def test_restore_puts_back_what_it_found(collections: list[int], enabled: bool) -> None:
    (gc.enable if enabled else gc.disable)()
    gc.set_threshold(700, 10, 10)
    state = GcState()
    state.disable()
    state.freeze()
    state.restore()
    assert gc.isenabled() is enabled
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
