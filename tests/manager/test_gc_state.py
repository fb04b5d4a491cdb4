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


def test_overlapping_states_share_the_process_gc(collections: list[int]) -> None:
    """Two Managers in one process: the GC stays off while either syncs, the second
    sync collects nothing (it would walk the first one's cache), and the last to leave
    restores what the first found."""
    gc.enable()
    gc.set_threshold(700, 10, 10)
    first, second = GcState(), GcState()
    first.disable()
    second.disable()
    assert collections == [2]
    first.freeze()
    assert not gc.isenabled(), "the second is still syncing"
    second.freeze()
    assert gc.isenabled()
    assert collections == [2]
    first.restore()
    assert gc.get_threshold() == GC_THRESHOLDS, "the second still runs"
    assert gc.get_freeze_count() > 0
    second.restore()
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()


def test_restore_after_a_failed_startup_reenables_the_gc(collections: list[int]) -> None:
    gc.enable()
    running, failed = GcState(), GcState()
    running.disable()
    running.freeze()
    failed.disable()  # a second Manager's startup fails during its sync
    assert not gc.isenabled()
    failed.restore()
    assert gc.isenabled(), "the first is running with its frozen cache"
    assert gc.get_threshold() == GC_THRESHOLDS
    running.restore()
    assert gc.get_freeze_count() == 0


def test_the_manager_freezes_by_default() -> None:
    from informer import Manager

    assert Manager().gc_freeze is True
    assert Manager(gc_freeze=False).gc_freeze is False
