"""DeltaFIFO (informer._cache.delta_fifo): one test per rule of its module docstring
(see docs/architecture.md), plus the async parts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from informer._cache.delta_fifo import Delta, DeltaFIFO, DeltaType
from informer._cache.store import Indexer
from informer._exceptions import FIFOClosedError, ObjectKeyError
from informer._meta.objects import DeletedFinalStateUnknown, meta_namespace_key
from informer._meta.types import Obj

A = DeltaType.ADDED
U = DeltaType.UPDATED
D = DeltaType.DELETED
R = DeltaType.REPLACED
S = DeltaType.SYNC


def obj(name: str, rv: str = "1", namespace: str = "default") -> Obj:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": rv}}


def key(name: str) -> str:
    return f"default/{name}"


def kinds(deltas: list[Delta] | None) -> list[DeltaType]:
    assert deltas is not None
    return [d.type for d in deltas]


class Recorder:
    """A sync ``process`` that records what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Delta], bool]] = []

    def __call__(self, deltas: list[Delta], is_in_initial_list: bool) -> None:
        self.calls.append((meta_namespace_key(deltas[-1].object), deltas, is_in_initial_list))


def noop(deltas: list[Delta], is_in_initial_list: bool) -> None:
    pass


async def drain(fifo: DeltaFIFO) -> list[tuple[str, list[Delta], bool]]:
    """Pop everything queued (never waits)."""
    rec = Recorder()
    while len(fifo):
        await fifo.pop(rec)
    return rec.calls


def known(*objs: Obj) -> Indexer:
    idx = Indexer()
    for o in objs:
        idx.add(o)
    return idx


# -- types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "value"),
    [
        pytest.param(DeltaType.ADDED, "Added", id="added"),
        pytest.param(DeltaType.UPDATED, "Updated", id="updated"),
        pytest.param(DeltaType.DELETED, "Deleted", id="deleted"),
        pytest.param(DeltaType.REPLACED, "Replaced", id="replaced"),
        pytest.param(DeltaType.SYNC, "Sync", id="sync"),
    ],
)
def test_delta_type_values(member: DeltaType, value: str) -> None:
    assert member == value
    assert member.value == value
    assert DeltaType(value) is member
    assert isinstance(member, str)


def test_delta_is_frozen_with_slots_and_fast_path_equivalent() -> None:
    o = obj("a")
    d = Delta(DeltaType.ADDED, o)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.type = DeltaType.SYNC  # type: ignore[misc]
    assert not hasattr(d, "__dict__")
    fifo = DeltaFIFO()
    fifo.add(o)
    queued = fifo.get_by_key(key("a"))
    assert queued == [d]
    assert queued is not None
    assert queued[0].object is o
    assert repr(queued[0]) == repr(d)


# -- one entry per key, oldest to newest; position --------------------------------------


@pytest.mark.anyio
async def test_deltas_of_a_key_accumulate_oldest_first_in_one_entry() -> None:
    fifo = DeltaFIFO()
    v1, v2, v3 = obj("a", "1"), obj("a", "2"), obj("a", "3")
    fifo.add(v1)
    fifo.update(v2)
    fifo.update(v3)
    assert len(fifo) == 1
    rec = Recorder()
    deltas = await fifo.pop(rec)
    assert kinds(deltas) == [A, U, U]
    assert [d.object for d in deltas] == [v1, v2, v3]
    assert deltas[0].object is v1
    assert rec.calls[0][1] is deltas  # process got the very list pop returns
    assert len(fifo) == 0


@pytest.mark.anyio
async def test_key_keeps_position_of_first_enqueue_since_last_pop() -> None:
    fifo = DeltaFIFO()
    fifo.add(obj("a"))
    fifo.add(obj("b"))
    fifo.add(obj("c"))
    fifo.update(obj("a", "2"))  # a stays first
    assert fifo.list_keys() == [key("a"), key("b"), key("c")]
    first = await fifo.pop(noop)
    assert kinds(first) == [A, U]
    fifo.update(obj("a", "3"))  # popped: a goes to the back now
    assert fifo.list_keys() == [key("b"), key("c"), key("a")]
    assert [k for k, _, _ in await drain(fifo)] == [key("b"), key("c"), key("a")]


# -- de-duplication of consecutive deletions ----------------------------------------------

TOMB_OLD = DeletedFinalStateUnknown(key("a"), obj("a", "1"))
TOMB_NEW = DeletedFinalStateUnknown(key("a"), obj("a", "2"))
GONE_1 = obj("a", "5")
GONE_2 = obj("a", "6")


@pytest.mark.parametrize(
    ("first", "second", "kept"),
    [
        pytest.param(GONE_1, GONE_2, GONE_1, id="two-objects-keep-older"),
        pytest.param(GONE_1, TOMB_NEW, GONE_1, id="object-then-tombstone-keep-older-object"),
        pytest.param(TOMB_OLD, GONE_2, GONE_2, id="tombstone-then-object-keep-newer"),
        pytest.param(TOMB_OLD, TOMB_NEW, TOMB_NEW, id="two-tombstones-keep-newer"),
    ],
)
def test_consecutive_deletes_collapse(first: Any, second: Any, kept: Any) -> None:
    fifo = DeltaFIFO()
    fifo.add(obj("a"))
    fifo.delete(first)
    fifo.delete(second)
    deltas = fifo.get_by_key(key("a"))
    assert kinds(deltas) == [A, D]
    assert deltas is not None
    assert deltas[-1].object is kept


def test_non_consecutive_deletes_are_kept() -> None:
    fifo = DeltaFIFO(known_objects=known(obj("a")))
    fifo.delete(obj("a", "2"))
    fifo.add(obj("a", "3"))
    fifo.delete(obj("a", "4"))
    assert kinds(fifo.get_by_key(key("a"))) == [D, A, D]


def test_no_other_deduplication() -> None:
    fifo = DeltaFIFO()
    o = obj("a")
    fifo.add(o)
    fifo.add(o)
    fifo.update(o)
    fifo.update(o)
    assert kinds(fifo.get_by_key(key("a"))) == [A, A, U, U]


# -- delete of an unknown key ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("store", "queued", "expected"),
    [
        pytest.param(None, False, None, id="no-known-objects-not-queued-ignored"),
        pytest.param(None, True, [A, D], id="no-known-objects-queued"),
        pytest.param(known(obj("other")), False, None, id="not-known-not-queued-ignored"),
        pytest.param(known(obj("a")), False, [D], id="known-not-queued"),
        pytest.param(known(obj("other")), True, [A, D], id="queued-not-known"),
    ],
)
def test_delete_of_unknown_key_is_ignored(
    store: Indexer | None, queued: bool, expected: list[DeltaType] | None
) -> None:
    fifo = DeltaFIFO(known_objects=store)
    if queued:
        fifo.add(obj("a"))
    fifo.delete(obj("a", "2"))
    got = fifo.get_by_key(key("a"))
    assert (None if got is None else kinds(got)) == expected


def test_delete_of_a_tombstone_uses_its_key() -> None:
    fifo = DeltaFIFO(known_objects=known(obj("a")))
    t = DeletedFinalStateUnknown(key("a"), None)
    fifo.delete(t)
    deltas = fifo.get_by_key(key("a"))
    assert deltas == [Delta(D, t)]
    fifo.delete(DeletedFinalStateUnknown(key("ghost"), None))
    assert fifo.list_keys() == [key("a")]


# -- replace -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("emit", "kind"),
    [pytest.param(False, S, id="sync-by-default"), pytest.param(True, R, id="emit-replaced")],
)
def test_replace_queues_each_listed_object(emit: bool, kind: DeltaType) -> None:
    fifo = DeltaFIFO(emit_delta_type_replaced=emit)
    a, b = obj("a"), obj("b")
    fifo.replace([a, b], "10")
    assert fifo.list_keys() == [key("a"), key("b")]
    assert fifo.get_by_key(key("a")) == [Delta(kind, a)]
    assert fifo.get_by_key(key("b")) == [Delta(kind, b)]


@pytest.mark.parametrize(
    ("emit", "kind"),
    [pytest.param(False, S, id="sync"), pytest.param(True, R, id="replaced")],
)
def test_replace_appends_to_queued_keys(emit: bool, kind: DeltaType) -> None:
    fifo = DeltaFIFO(emit_delta_type_replaced=emit)
    fifo.add(obj("a", "1"))
    fifo.replace([obj("a", "2")], "2")
    assert kinds(fifo.get_by_key(key("a"))) == [A, kind]


def test_replace_tombstones_queued_keys_missing_from_the_list() -> None:
    fifo = DeltaFIFO()
    a1, a2 = obj("a", "1"), obj("a", "2")
    fifo.add(a1)
    fifo.update(a2)
    fifo.replace([obj("b")], "5")
    deltas = fifo.get_by_key(key("a"))
    assert kinds(deltas) == [A, U, D]
    assert deltas is not None
    tomb = deltas[-1].object
    assert tomb == DeletedFinalStateUnknown(key("a"), a2)
    assert isinstance(tomb, DeletedFinalStateUnknown)
    assert tomb.obj is a2  # the newest queued object, not a copy
    assert fifo.list_keys() == [key("a"), key("b")]


def test_replace_unwraps_a_queued_tombstone_for_the_new_tombstone() -> None:
    fifo = DeltaFIFO()
    a = obj("a")
    fifo.add(a)
    fifo.replace([], "1")
    fifo.replace([], "2")
    deltas = fifo.get_by_key(key("a"))
    assert kinds(deltas) == [A, D]  # two tombstones in a row collapse to the newer
    assert deltas is not None
    assert deltas[-1].object == DeletedFinalStateUnknown(key("a"), a)


def test_replace_keeps_a_real_queued_deletion_over_its_tombstone() -> None:
    fifo = DeltaFIFO()
    a, gone = obj("a", "1"), obj("a", "2")
    fifo.add(a)
    fifo.delete(gone)
    fifo.replace([], "3")
    deltas = fifo.get_by_key(key("a"))
    assert kinds(deltas) == [A, D]
    assert deltas is not None
    assert deltas[-1].object is gone


def test_replace_tombstones_known_keys_missing_from_the_list_with_nothing_queued() -> None:
    stale, kept, busy = obj("stale"), obj("kept"), obj("busy")
    fifo = DeltaFIFO(known_objects=known(stale, kept, busy))
    busy2 = obj("busy", "2")
    fifo.update(busy2)  # queued: gets the queued-key tombstone only, with the queued object
    fifo.replace([obj("kept", "2")], "9")
    assert fifo.get_by_key(key("stale")) == [
        Delta(D, DeletedFinalStateUnknown(key("stale"), stale))
    ]
    assert kinds(fifo.get_by_key(key("kept"))) == [S]
    assert fifo.get_by_key(key("busy")) == [
        Delta(U, busy2),
        Delta(D, DeletedFinalStateUnknown(key("busy"), busy2)),
    ]
    assert sorted(fifo.list_keys()) == sorted([key("busy"), key("kept"), key("stale")])


def test_replace_tombstone_of_a_key_known_but_gone_carries_none() -> None:
    class Flaky:
        """known_objects that lists a key it no longer has."""

        def list_keys(self) -> list[str]:
            return [key("ghost")]

        def get_by_key(self, k: str) -> Obj | None:
            return None

    fifo = DeltaFIFO(known_objects=Flaky())
    fifo.replace([], "1")
    assert fifo.get_by_key(key("ghost")) == [Delta(D, DeletedFinalStateUnknown(key("ghost"), None))]


# -- resync ----------------------------------------------------------------------------------


def test_resync_queues_sync_for_known_keys_with_nothing_queued() -> None:
    a, b, c = obj("a"), obj("b"), obj("c")
    fifo = DeltaFIFO(known_objects=known(a, b, c))
    b2 = obj("b", "2")
    fifo.update(b2)
    fifo.resync()
    assert fifo.get_by_key(key("a")) == [Delta(S, a)]
    assert fifo.get_by_key(key("b")) == [Delta(U, b2)]  # skipped: something queued
    assert fifo.get_by_key(key("c")) == [Delta(S, c)]
    assert fifo.get_by_key(key("a"))[0].object is a  # type: ignore[index]
    assert fifo.list_keys() == [key("b"), key("a"), key("c")]


def test_resync_twice_does_not_stack_syncs() -> None:
    fifo = DeltaFIFO(known_objects=known(obj("a")))
    fifo.resync()
    fifo.resync()
    assert kinds(fifo.get_by_key(key("a"))) == [S]


def test_resync_without_known_objects_is_a_noop() -> None:
    fifo = DeltaFIFO()
    fifo.resync()
    assert len(fifo) == 0


def test_resync_does_not_mark_populated() -> None:
    fifo = DeltaFIFO(known_objects=known(obj("a")))
    fifo.resync()
    assert not fifo.has_synced()


# -- has_synced / is_in_initial_list ----------------------------------------------------------


@pytest.mark.anyio
async def test_has_synced_after_initial_batch_popped() -> None:
    fifo = DeltaFIFO()
    assert not fifo.has_synced()
    fifo.replace([obj("a"), obj("b")], "1")
    assert not fifo.has_synced()
    await fifo.pop(noop)
    assert not fifo.has_synced()
    await fifo.pop(noop)
    assert fifo.has_synced()


@pytest.mark.anyio
async def test_has_synced_with_empty_initial_list() -> None:
    fifo = DeltaFIFO()
    fifo.replace([], "1")
    assert fifo.has_synced()


@pytest.mark.anyio
async def test_has_synced_counts_tombstones_of_the_initial_batch() -> None:
    fifo = DeltaFIFO(known_objects=known(obj("gone")))
    fifo.replace([obj("a")], "1")
    assert len(fifo) == 2
    calls = Recorder()
    await fifo.pop(calls)
    assert not fifo.has_synced()
    await fifo.pop(calls)
    assert fifo.has_synced()
    assert [(k, initial) for k, _, initial in calls.calls] == [
        (key("a"), True),
        (key("gone"), True),
    ]


@pytest.mark.anyio
async def test_has_synced_counts_a_key_listed_twice_once() -> None:
    fifo = DeltaFIFO()
    fifo.replace([obj("a", "1"), obj("a", "2")], "1")
    assert kinds(fifo.get_by_key(key("a"))) == [S, S]
    await fifo.pop(noop)
    assert fifo.has_synced()


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(lambda f: f.add(obj("x")), id="add"),
        pytest.param(lambda f: f.update(obj("x")), id="update"),
        pytest.param(lambda f: f.delete(obj("x")), id="delete-even-if-ignored"),
    ],
)
def test_has_synced_once_add_update_delete_precede_replace(
    first: Callable[[DeltaFIFO], None],
) -> None:
    fifo = DeltaFIFO()
    first(fifo)
    assert fifo.has_synced()
    fifo.replace([obj("a")], "1")  # not the "first batch" any more
    assert fifo.has_synced()


@pytest.mark.anyio
async def test_is_in_initial_list_only_for_the_first_batch() -> None:
    fifo = DeltaFIFO()
    fifo.replace([obj("a"), obj("b")], "1")
    fifo.add(obj("c"))
    rec = Recorder()
    for _ in range(3):
        await fifo.pop(rec)
    fifo.replace([obj("a"), obj("b"), obj("c")], "2")  # a relist is not initial
    while len(fifo):
        await fifo.pop(rec)
    assert [(k, initial) for k, _, initial in rec.calls] == [
        (key("a"), True),
        (key("b"), True),
        (key("c"), False),
        (key("a"), False),
        (key("b"), False),
        (key("c"), False),
    ]


@pytest.mark.anyio
async def test_is_in_initial_list_false_when_add_came_first() -> None:
    fifo = DeltaFIFO()
    fifo.add(obj("a"))
    fifo.replace([obj("a"), obj("b")], "1")
    assert [initial for _, _, initial in await drain(fifo)] == [False, False]


@pytest.mark.anyio
async def test_not_synced_while_last_initial_item_is_being_processed() -> None:
    fifo = DeltaFIFO()
    fifo.replace([obj("a")], "1")
    seen: list[bool] = []

    async def process(deltas: list[Delta], initial: bool) -> None:
        seen.append(fifo.has_synced())
        await anyio.lowlevel.checkpoint()
        seen.append(fifo.has_synced())

    await fifo.pop(process)
    assert seen == [False, False]
    assert fifo.has_synced()


@pytest.mark.anyio
async def test_failed_initial_item_still_counts_towards_synced() -> None:
    fifo = DeltaFIFO()
    fifo.replace([obj("a")], "1")

    def boom(deltas: list[Delta], initial: bool) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fifo.pop(boom)
    assert fifo.has_synced()


# -- objects are queued as given ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "kind"),
    [
        pytest.param("add", A, id="add"),
        pytest.param("update", U, id="update"),
        pytest.param("delete", D, id="delete"),
        pytest.param("replace", S, id="replace"),
    ],
)
def test_objects_are_queued_as_given(op: str, kind: DeltaType) -> None:
    """The FIFO never transforms nor copies: the informer's transform ran in the Reflector."""
    fifo = DeltaFIFO(known_objects=known(obj("a", "0")))
    incoming = obj("a", "7")
    incoming["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    if op == "replace":
        fifo.replace([incoming], "7")
    else:
        getattr(fifo, op)(incoming)
    deltas = fifo.get_by_key(key("a"))
    assert deltas is not None
    assert kinds(deltas) == [kind]
    assert deltas[0].object is incoming
    assert incoming["metadata"]["managedFields"] == [{"manager": "kubectl"}]


# -- pop: process, errors, closing, waiting, cancellation -------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async"], ids=["sync-process", "async-process"])
async def test_pop_calls_sync_and_async_process(kind: str) -> None:
    fifo = DeltaFIFO()
    fifo.replace([obj("a")], "1")
    got: list[tuple[list[Delta], bool]] = []

    def sync_process(deltas: list[Delta], initial: bool) -> None:
        got.append((deltas, initial))

    async def async_process(deltas: list[Delta], initial: bool) -> None:
        await anyio.lowlevel.checkpoint()
        got.append((deltas, initial))

    deltas = await fifo.pop(sync_process if kind == "sync" else async_process)
    assert got == [(deltas, True)]
    assert kinds(deltas) == [S]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async"], ids=["sync-process", "async-process"])
async def test_process_error_propagates_and_item_is_not_requeued(kind: str) -> None:
    fifo = DeltaFIFO()
    fifo.add(obj("a"))
    fifo.add(obj("b"))

    def sync_boom(deltas: list[Delta], initial: bool) -> None:
        raise ValueError("handler failed")

    async def async_boom(deltas: list[Delta], initial: bool) -> None:
        await anyio.lowlevel.checkpoint()
        raise ValueError("handler failed")

    with pytest.raises(ValueError, match="handler failed"):
        await fifo.pop(sync_boom if kind == "sync" else async_boom)
    assert fifo.get_by_key(key("a")) is None
    assert fifo.list_keys() == [key("b")]
    assert [k for k, _, _ in await drain(fifo)] == [key("b")]


@pytest.mark.anyio
async def test_pop_on_closed_empty_fifo_raises() -> None:
    fifo = DeltaFIFO()
    fifo.close()
    assert fifo.closed
    with pytest.raises(FIFOClosedError):
        await fifo.pop(noop)


@pytest.mark.anyio
async def test_closed_fifo_drains_before_raising() -> None:
    fifo = DeltaFIFO()
    fifo.add(obj("a"))
    fifo.close()
    assert kinds(await fifo.pop(noop)) == [A]
    with pytest.raises(FIFOClosedError):
        await fifo.pop(noop)


@pytest.mark.anyio
async def test_close_wakes_every_blocked_pop() -> None:
    fifo = DeltaFIFO()
    errors: list[BaseException] = []

    async def popper() -> None:
        try:
            await fifo.pop(noop)
        except FIFOClosedError as exc:
            errors.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(popper)
            tg.start_soon(popper)
            await anyio.wait_all_tasks_blocked()
            assert errors == []
            fifo.close()
    assert len(errors) == 2


@pytest.mark.anyio
async def test_add_wakes_a_blocked_pop() -> None:
    fifo = DeltaFIFO()
    rec = Recorder()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(fifo.pop, rec)
            await anyio.wait_all_tasks_blocked()
            assert rec.calls == []
            fifo.add(obj("a"))
    assert [k for k, _, _ in rec.calls] == [key("a")]


@pytest.mark.anyio
async def test_several_blocked_pops_each_get_one_item() -> None:
    fifo = DeltaFIFO()
    rec = Recorder()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(fifo.pop, rec)
            await anyio.wait_all_tasks_blocked()
            fifo.add(obj("a"))
            await anyio.wait_all_tasks_blocked()
            assert len(rec.calls) == 1  # the others went back to waiting
            fifo.add(obj("b"))
            fifo.add(obj("c"))
    assert sorted(k for k, _, _ in rec.calls) == [key("a"), key("b"), key("c")]


@pytest.mark.anyio
async def test_pop_is_cancellable_while_waiting_and_fifo_still_works() -> None:
    fifo = DeltaFIFO()
    cancelled = False
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def popper() -> None:
                nonlocal cancelled
                try:
                    await fifo.pop(noop)
                except anyio.get_cancelled_exc_class():
                    cancelled = True
                    raise

            tg.start_soon(popper)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
        assert cancelled
        fifo.add(obj("a"))
        assert kinds(await fifo.pop(noop)) == [A]
        async with anyio.create_task_group() as tg:  # a new waiter still gets woken
            tg.start_soon(fifo.pop, noop)
            await anyio.wait_all_tasks_blocked()
            fifo.add(obj("b"))
    assert len(fifo) == 0


@pytest.mark.anyio
async def test_pop_does_not_yield_when_an_item_is_available() -> None:
    fifo = DeltaFIFO()
    fifo.add(obj("a"))
    rec = Recorder()
    with anyio.CancelScope() as scope:
        scope.cancel()  # any checkpoint inside pop would raise here
        await fifo.pop(rec)
    assert [k for k, _, _ in rec.calls] == [key("a")]


# -- inspection ----------------------------------------------------------------------------------


def test_get_by_key_returns_a_copy() -> None:
    fifo = DeltaFIFO()
    fifo.add(obj("a"))
    got = fifo.get_by_key(key("a"))
    assert got is not None
    got.clear()
    assert kinds(fifo.get_by_key(key("a"))) == [A]
    assert fifo.get_by_key("nope") is None


def test_len_and_list_keys_follow_queue_order() -> None:
    fifo = DeltaFIFO()
    for name in ("c", "a", "b"):
        fifo.add(obj(name))
    fifo.update(obj("c", "2"))
    assert len(fifo) == 3
    assert fifo.list_keys() == [key("c"), key("a"), key("b")]


def test_custom_key_func() -> None:
    fifo = DeltaFIFO(key_func=lambda o: o["metadata"]["uid"])
    fifo.add({"metadata": {"name": "a", "uid": "u-1"}})
    fifo.delete(DeletedFinalStateUnknown("u-1", None))
    assert fifo.list_keys() == ["u-1"]
    assert kinds(fifo.get_by_key("u-1")) == [A, D]


def test_pop_ready_batches_the_initial_list_then_later_keys_in_order() -> None:
    fifo = DeltaFIFO()
    seen: list[tuple[str, bool]] = []

    def record(deltas: list[Delta], initial: bool) -> None:
        seen.append((meta_namespace_key(deltas[0].object), initial))

    assert fifo.pop_ready(record, 10) == 0  # not populated: nothing to batch
    fifo.replace([obj("a"), obj("b"), obj("c")], "1")
    fifo.update(obj("b", rv="2"))  # joins b's queued deltas: part of the initial list
    fifo.add(obj("d"))  # a key queued after the list: not initial
    assert fifo.pop_ready(record, 2) == 2
    assert not fifo.has_synced()  # c of the initial list is still queued
    assert fifo.pop_ready(record, 1) == 1
    assert fifo.has_synced()
    assert fifo.pop_ready(record, 10) == 1
    assert fifo.pop_ready(record, 10) == 0
    assert seen == [
        ("default/a", True),
        ("default/b", True),
        ("default/c", True),
        ("default/d", False),
    ]


def test_pop_ready_keyed_gives_the_fifo_key() -> None:
    fifo = DeltaFIFO()
    fifo.replace([obj("a")], "1")
    fifo.update(obj("a", rv="2"))
    seen: list[tuple[str, int, bool]] = []
    assert fifo.pop_ready_keyed(lambda k, d, i: seen.append((k, len(d), i)), 10) == 1
    assert seen == [("default/a", 2, True)]


@pytest.mark.anyio
async def test_pop_ready_does_nothing_while_pop_processes_an_initial_key() -> None:
    fifo = DeltaFIFO()
    fifo.replace([obj("a"), obj("b")], "1")
    inside = anyio.Event()
    release = anyio.Event()
    batched: list[int] = []

    async def slow(deltas: list[Delta], initial: bool) -> None:
        inside.set()
        await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(fifo.pop, slow)
        with anyio.fail_after(1):
            await inside.wait()
        batched.append(fifo.pop_ready(lambda d, i: None, 10))
        release.set()
    assert batched == [0]
    assert fifo.pop_ready(lambda d, i: None, 10) == 1
    assert fifo.has_synced()


def test_pop_ready_error_on_an_initial_key_still_counts_it() -> None:
    fifo = DeltaFIFO()
    fifo.replace([obj("a"), obj("b")], "1")

    def process(deltas: list[Delta], initial: bool) -> None:
        if meta_namespace_key(deltas[0].object) == "default/a":
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fifo.pop_ready(process, 10)
    assert not fifo.has_synced()
    assert fifo.pop_ready(process, 10) == 1
    assert fifo.has_synced()


def test_pop_ready_error_drops_only_the_failing_key() -> None:
    fifo = DeltaFIFO()
    fifo.replace([], "1")
    for name in ("a", "b", "c"):
        fifo.add(obj(name))
    done: list[str] = []

    def process(deltas: list[Delta], initial: bool) -> None:
        name = meta_namespace_key(deltas[0].object)
        if name == "default/b":
            raise RuntimeError("boom")
        done.append(name)

    with pytest.raises(RuntimeError):
        fifo.pop_ready(process, 10)
    assert fifo.list_keys() == ["default/c"]
    assert fifo.pop_ready(process, 10) == 1
    assert done == ["default/a", "default/c"]


def test_first_replace_with_a_key_listed_twice_queues_both_under_one_key() -> None:
    fifo = DeltaFIFO(emit_delta_type_replaced=True)
    fifo.replace([obj("a"), obj("b"), obj("a", rv="2")], "2")
    assert fifo.list_keys() == ["default/a", "default/b"]
    deltas = fifo.get_by_key("default/a")
    assert deltas is not None
    assert [(d.type, d.object["metadata"]["resourceVersion"]) for d in deltas] == [
        (DeltaType.REPLACED, "1"),
        (DeltaType.REPLACED, "2"),
    ]
    seen: list[bool] = []
    assert fifo.pop_ready(lambda d, i: seen.append(i), 10) == 2
    assert seen == [True, True]
    assert fifo.has_synced()


# ------------------------------------------------------------- replace in steps


@pytest.mark.anyio
async def test_a_first_list_replaced_in_steps_is_popped_only_once_complete() -> None:
    fifo = DeltaFIFO()
    steps = fifo.replace_steps([obj(f"o{i}") for i in range(7)], step=3)
    woken: list[int] = []

    async def waiter() -> None:
        await fifo.pop(lambda deltas, initial: woken.append(len(fifo) + 1))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            paused_at: list[int] = []
            for _ in steps:
                paused_at.append(len(fifo))
                await anyio.wait_all_tasks_blocked()  # the waiter had every chance to run
                assert woken == []
                assert fifo.pop_ready(noop, 100) == 0  # not populated yet: takes nothing
                assert not fifo.has_synced()
            assert paused_at == [3, 6]
    assert woken == [7]  # woken once, with all seven queued
    assert [c[2] for c in await drain(fifo)] == [True] * 6
    assert fifo.has_synced()


def test_a_relist_is_replaced_in_one_step_with_its_tombstones() -> None:
    known = Indexer(meta_namespace_key)
    for name in ("a", "b", "gone"):
        known.add(obj(name))
    fifo = DeltaFIFO(known_objects=known)
    steps = list(fifo.replace_steps([obj("a", "2"), obj("b", "2")], step=1))
    assert steps == []  # no pause: the tombstones need the whole list
    assert kinds(fifo.get_by_key(key("a"))) == [S]
    assert kinds(fifo.get_by_key(key("gone"))) == [D]


@pytest.mark.anyio
@pytest.mark.parametrize("step", [1, 2, 10_000], ids=["step-1", "step-2", "one-step"])
async def test_replace_steps_queues_what_replace_queues(step: int) -> None:
    objs = [obj("a"), obj("b"), obj("a", "2"), obj("c")]  # a key listed twice
    by_replace, by_steps = DeltaFIFO(), DeltaFIFO()
    by_replace.replace(list(objs))
    for _ in by_steps.replace_steps(list(objs), step=step):
        pass
    assert by_steps.list_keys() == by_replace.list_keys()
    for k in by_replace.list_keys():
        assert by_steps.get_by_key(k) == by_replace.get_by_key(k)
    assert [c[2] for c in await drain(by_steps)] == [c[2] for c in await drain(by_replace)]
    assert by_steps.has_synced() and by_replace.has_synced()


# ------------------------------------------------------------- objects without a key

NAMELESS: Obj = {"metadata": {"namespace": "default", "resourceVersion": "1"}}


@pytest.mark.anyio
@pytest.mark.parametrize("relist", [False, True], ids=["first-list", "relist"])
async def test_replace_leaves_out_what_it_cannot_key_and_hands_it_to_skip(relist: bool) -> None:
    known = Indexer(meta_namespace_key)
    if relist:
        for name in ("a", "gone"):
            known.add(obj(name))
    fifo = DeltaFIFO(known_objects=known)
    skipped: list[tuple[object, type[Exception]]] = []
    fifo.replace(
        [obj("a", "2"), NAMELESS, obj("b", "2"), None],  # type: ignore[list-item]
        skip=lambda o, exc: skipped.append((o, type(exc))),
    )
    assert skipped == [(NAMELESS, ObjectKeyError), (None, ObjectKeyError)]
    expected = [key("a"), key("b")] + ([key("gone")] if relist else [])
    assert fifo.list_keys() == expected
    assert [c[2] for c in await drain(fifo)] == [True] * len(expected)
    assert fifo.has_synced()


def test_replace_without_skip_raises_on_what_it_cannot_key() -> None:
    with pytest.raises(ObjectKeyError, match=r"no metadata\.name"):
        DeltaFIFO().replace([obj("a"), NAMELESS])
