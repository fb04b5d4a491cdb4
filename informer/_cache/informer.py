"""``SharedIndexInformer``: reflector -> DeltaFIFO -> indexed store -> handlers.

One informer watches one resource (one scope, one set of selectors). Its pieces run as
tasks of one task group inside :meth:`SharedIndexInformer.run`:

- the :class:`~informer.Reflector` lists and watches into a :class:`~informer.DeltaFIFO`;
- the processing loop pops deltas, applies them to :attr:`SharedIndexInformer.indexer`
  and then notifies every listener (so a handler always finds the object in the store);
- one task per handler (:class:`~informer._cache.listener.ProcessorListener`) with its own
  unbounded buffer, used when the handler is busy (an awaitable in flight, a backlog):
  an idle listener calls its handler as the processing loop hands it a notification;
- the resync loop, which replays the store into the FIFO (``Sync`` deltas) for the
  handlers whose resync period is due. It never relists.

Contracts: the objects in the store and those handed to handlers are the same dicts;
nobody may mutate them. The store only changes inside the processing loop, which never
awaits while applying one key's deltas, so readers on the event loop see consistent
state without locks.

One key function (``key_func``, default :func:`~informer.meta_namespace_key`) keys
everything of one informer: the DeltaFIFO, the store (:attr:`SharedIndexInformer.key_func`
is what a lister's ``get_by_key`` and a controller's ``own_key`` mapping use). The
``transform`` runs in one place only, the Reflector, once per object received.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import structlog

from .._exceptions import FIFOClosedError
from .._failures import report_failure
from .._meta.objects import DeletedFinalStateUnknown, ObjectOrTombstone, meta_namespace_key
from .delta_fifo import Delta, DeltaFIFO, DeltaType
from .listener import ADD, DELETE, UPDATE, ProcessorListener
from .lister import Lister
from .listwatch import ListerWatcher
from .processor import MIN_RESYNC_PERIOD, SharedProcessor
from .reflector import Reflector
from .store import NAMESPACE_INDEX, Indexer, IndexFunc, KeyFunc, namespace_index
from .transforms import TransformFunc

__all__ = ["SharedIndexInformer"]

log = structlog.get_logger(__name__)

Transform = TransformFunc

# Yield to the loop after this many FIFO pops in a row (pop does not yield when an item is
# ready), so a large initial list cannot starve the listeners and the watch.
_YIELD_EVERY = 128
_DELETED = DeltaType.DELETED
_UPDATED = DeltaType.UPDATED
_ADDED = DeltaType.ADDED


class SharedIndexInformer:
    """Keeps an indexed cache of one resource and tells handlers about changes.

    ``resync_period`` is the default resync period of handlers added without one
    (0 disables resync). ``indexers`` are added to the store (the namespace index is
    always there). ``transform`` runs once on every object received from the API server
    before it is stored (see ``strip_managed_fields`` and the contract in
    ``informer._cache.transforms``); it is handed to the Reflector only. ``key_func`` keys the
    objects of this informer everywhere (FIFO, store, the processing loop, handler error
    logs); it is given object dicts only, never tombstones. ``reflector_options`` are
    passed to :class:`~informer.Reflector` (``page_size``, ``use_watch_list``,
    ``inactivity_timeout``, ...).
    """

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        *,
        resync_period: float = 0.0,
        indexers: Mapping[str, IndexFunc] | None = None,
        transform: Transform | None = None,
        name: str = "",
        reflector_options: Mapping[str, Any] | None = None,
        key_func: KeyFunc = meta_namespace_key,
    ) -> None:
        self.name = name or type(lister_watcher).__name__
        self.lister_watcher = lister_watcher
        self.default_resync_period = max(0.0, float(resync_period))
        # meta_namespace_key keys tombstones itself; any other key function is wrapped so
        # that the processing loop and the handlers may key a tombstone too.
        self._key_of: Callable[[ObjectOrTombstone], str] = (
            meta_namespace_key if key_func is meta_namespace_key else _tombstone_aware(key_func)
        )
        all_indexers: dict[str, IndexFunc] = {NAMESPACE_INDEX: namespace_index}
        all_indexers.update(indexers or {})
        self.indexer = Indexer(key_func=key_func, indexers=all_indexers)
        self._fifo = DeltaFIFO(
            key_func=key_func, known_objects=self.indexer, emit_delta_type_replaced=True
        )
        self.reflector = Reflector(
            lister_watcher,
            self._fifo,
            name=self.name,
            transform=transform,  # the one place it runs
            **dict(reflector_options or {}),
        )
        self._processor = SharedProcessor()
        self._synced = anyio.Event()
        self._synced_flag = False  # _synced.is_set(), without a call on the hot path
        self._resync_changed = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        self._started = False
        self._stopped = False
        self._log = structlog.get_logger(__name__, resource=self.name)

    # -- handlers -----------------------------------------------------------------
    def add_event_handler(
        self, handler: Any, *, resync_period: float | None = None
    ) -> ProcessorListener:
        """Register ``handler`` (see ``informer._cache.handlers`` for the accepted forms).

        A handler added after the informer started first receives ``on_add`` for every
        object in the store. ``resync_period`` defaults to the informer's; a value below
        1 s (but above 0) is raised to 1 s. Returns the registration, whose
        ``has_synced()`` says when this handler has seen the whole initial state.
        """
        if self._stopped:
            raise RuntimeError(f"informer {self.name} has stopped; cannot add a handler")
        period = self.default_resync_period if resync_period is None else resync_period
        if 0 < period < MIN_RESYNC_PERIOD:
            period = MIN_RESYNC_PERIOD
        listener = ProcessorListener(
            handler, period, self.has_synced, resource=self.name, key_func=self._key_of
        )
        self._processor.add_listener(listener)
        if self._tg is not None:
            listener.replay(self.indexer.list())
            self._tg.start_soon(listener.run, name=f"listener {listener.name}")
        self._resync_changed.set()
        return listener

    def remove_event_handler(self, registration: ProcessorListener) -> None:
        """Stop delivering to a handler; unknown registrations raise ``ValueError``."""
        if not self._processor.remove_listener(registration):
            raise ValueError(f"{registration!r} is not registered with informer {self.name}")
        registration.stop()
        self._resync_changed.set()

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add the indexes whose names the store does not have yet (existing ones are
        kept); they index the objects already cached. Safe while running."""
        missing = {k: v for k, v in indexers.items() if k not in self.indexer.indexers}
        if missing:
            self.indexer.add_indexers(missing)

    @property
    def key_func(self) -> Callable[[ObjectOrTombstone], str]:
        """This informer's key function, accepting a tombstone too (its ``key``)."""
        return self._key_of

    def lister(self) -> Lister:
        """A read-only view of the store (no API calls; returned dicts are shared)."""
        return Lister(self.indexer)

    @property
    def listeners(self) -> list[ProcessorListener]:
        return list(self._processor.listeners)

    # -- state --------------------------------------------------------------------
    def has_synced(self) -> bool:
        """True once the first full list has been applied to the store."""
        return self._synced.is_set()

    async def wait_for_sync(self, registration: ProcessorListener | None = None) -> None:
        """Wait until the informer synced (and ``registration``'s handler has seen the
        whole initial state, when given)."""
        if registration is None:
            await self._synced.wait()
        else:
            await registration.wait_for_sync(self._synced.wait)

    @property
    def last_sync_resource_version(self) -> str:
        return str(self.reflector.last_sync_resource_version)

    def has_queued(self, key: str) -> bool:
        """Whether deltas for ``key`` were received but are not applied to the store yet.

        With :attr:`last_sync_resource_version` (R) this says what the store reflects:
        when nothing is queued for a key, the store holds that key's state as of R or
        later, or does not hold it if it did not exist at R (``Client.wait_cached``
        relies on this). Cheap (one dict lookup); never awaits.
        """
        return self._fifo.get_by_key(key) is not None

    # -- running ------------------------------------------------------------------
    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until cancelled; ``task_status.started()`` once the initial list is popped.

        An informer runs once: it cannot be restarted after it stopped.
        """
        if self._started:
            raise RuntimeError(f"informer {self.name} was already started")
        self._started = True
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for listener in self._processor.listeners:
                    tg.start_soon(listener.run, name=f"listener {listener.name}")
                tg.start_soon(self._process_loop, name=f"processor {self.name}")
                await tg.start(self.reflector.run)
                self._check_synced()  # an empty first list leaves nothing to pop
                await self._synced.wait()
                tg.start_soon(self._resync_loop, name=f"resync {self.name}")
                task_status.started()
        finally:
            self._tg = None
            self._stopped = True
            self._fifo.close()

    async def _process_loop(self) -> None:
        """Pop deltas forever: in batches of up to ``_YIELD_EVERY`` keys between yields
        while keys are queued (the initial list included), one key at a time (awaiting)
        whenever the FIFO is empty."""
        fifo = self._fifo
        pop, pop_ready = fifo.pop, fifo.pop_ready_keyed
        handle, handle_keyed = self._handle_deltas, self._handle_keyed
        checkpoint = anyio.lowlevel.checkpoint
        streak = 0
        while True:
            try:
                if pop_ready(handle_keyed, _YIELD_EVERY):
                    if not self._synced_flag:
                        self._check_synced()
                    await checkpoint()  # let the listeners and the watch run
                    continue
                await pop(handle)  # waits while the FIFO is empty
            except FIFOClosedError:
                return
            except Exception as exc:
                report_failure("processing", self.name, exc)
                self._log.exception("process.failed")
            if not self._synced_flag:
                self._check_synced()
            streak += 1
            if streak >= _YIELD_EVERY:  # pop does not yield while items are queued
                streak = 0
                await checkpoint()

    def _check_synced(self) -> None:
        if not self._synced_flag and self._fifo.has_synced():
            self._synced_flag = True
            self._synced.set()
            self._log.info("informer.synced", objects=len(self.indexer))

    def _handle_deltas(self, deltas: list[Delta], is_in_initial_list: bool) -> None:
        """Apply one key's deltas to the store, then notify (never awaits)."""
        self._handle_keyed(self._key_of(deltas[0].object), deltas, is_in_initial_list)

    def _handle_keyed(self, key: str, deltas: list[Delta], is_in_initial_list: bool) -> None:
        """:meth:`_handle_deltas` for the deltas the FIFO filed under ``key``.

        The hot path of the processing loop: ``SharedProcessor.distribute`` inlined. An
        update is a resync notification (for the listeners due a resync only) when it
        comes from a ``Sync`` or ``Replaced`` delta that leaves the resourceVersion
        unchanged, as client-go decides it."""
        indexer = self.indexer
        processor = self._processor
        for delta in deltas:
            obj = delta.object
            type_ = delta.type
            if type_ is _DELETED:
                indexer.delete_by_key(key)
                for listener in processor.listeners:
                    listener.add(DELETE, None, obj, is_in_initial_list)
                continue
            # Only Deleted deltas hold tombstones.
            old = indexer.add_with_key(key, obj)  # type: ignore[arg-type]
            if old is None:
                for listener in processor.listeners:
                    listener.add(ADD, None, obj, is_in_initial_list)
                continue
            if type_ is _UPDATED or type_ is _ADDED:
                listeners = processor.listeners
            elif old["metadata"].get("resourceVersion") == obj["metadata"].get(  # type: ignore[index]
                "resourceVersion"
            ):
                listeners = processor.syncing
            else:
                listeners = processor.listeners
            for listener in listeners:
                listener.add(UPDATE, old, obj, is_in_initial_list)

    async def _resync_loop(self) -> None:
        """Every check period, resync the store for the listeners that are due.

        A handler added or removed only recomputes the period (the next check may come
        sooner); it never triggers a check early, which would reset the syncing set
        while Sync deltas for it are still queued.
        """
        processor = self._processor
        next_check: float | None = None
        while True:
            self._resync_changed = anyio.Event()
            period = processor.resync_check_period()
            if period <= 0:
                next_check = None
                await self._resync_changed.wait()
                continue
            now = anyio.current_time()
            next_check = now + period if next_check is None else min(next_check, now + period)
            with anyio.move_on_after(next_check - now):
                await self._resync_changed.wait()
            if anyio.current_time() < next_check:
                continue  # woken by a handler change
            next_check = None
            if processor.should_resync(time.monotonic()):
                self._fifo.resync()

    def __repr__(self) -> str:
        return f"SharedIndexInformer({self.name}, objects={len(self.indexer)})"


def _tombstone_aware(key_func: KeyFunc) -> Callable[[ObjectOrTombstone], str]:
    """``key_func`` for object dicts, a tombstone's ``key`` for a tombstone."""

    def key_of(obj: ObjectOrTombstone) -> str:
        if isinstance(obj, DeletedFinalStateUnknown):
            return obj.key
        return key_func(obj)

    key_of.__qualname__ = f"tombstone_aware({getattr(key_func, '__qualname__', key_func)!s})"
    return key_of
