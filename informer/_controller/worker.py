"""A controller's workers: take a key, reconcile it, hand the outcome to the policy; drain.

:meth:`Workers.process_next_item` is client-go's ``examples/workqueue`` loop body: take a
key, ask the key gate, reconcile inside a structlog context bound with ``controller`` and
``key``, then let the :class:`~informer._controller.reconcile.OutcomePolicy` decide what
happens to the key; ``done(key)`` is always called. A reconcile that does not return a
:class:`~informer.Result` or ``None`` counts as raising ``TypeError``.

The work queue guarantees that no two workers reconcile the same key at once. Each
reconcile runs in a shielded cancel scope, so cancelling the workers does not interrupt
it; :meth:`Workers.drain` waits for those scopes within the grace and then cancels them.
Everything runs on one event loop; the gate, the policy and the stats are called from it.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import structlog
import structlog.contextvars

from .._exceptions import QueueShutDown
from .._queue.workqueue import RateLimitingQueue
from .options import ControllerOptions
from .reconcile import OutcomePolicy, ReconcileOutcome, ReconcileStats, Result

__all__ = ["KeyGate", "Reconciler", "Workers"]


class KeyGate(Protocol):
    """Decides whether a worker may reconcile a key now (sharding installs one per
    controller as :attr:`~informer.Controller.key_gate`).

    ``admit(key)`` is asked after a worker took ``key`` from the queue, before the
    reconcile; False skips the key (``done``, no reconcile, no retry: the gate is
    responsible for re-adding it when it is admitted again). After an admitted key's
    reconcile ends (success, failure or cancellation), ``release(key)`` is called, once.
    Both run on the event loop and must not block.
    """

    def admit(self, key: str) -> bool: ...

    def release(self, key: str) -> None: ...


class Reconciler(Protocol):
    """What the workers use of their controller; read for every key, so a gate or options
    installed after construction (before :meth:`~informer.Controller.run`) apply."""

    @property
    def key_gate(self) -> KeyGate | None: ...

    @property
    def options(self) -> ControllerOptions: ...

    async def reconcile(self, key: str) -> Result | None: ...


class Workers:
    """The worker tasks of one controller, its reconciles in flight, and their drain."""

    def __init__(
        self,
        reconciler: Reconciler,
        *,
        name: str,
        queue: RateLimitingQueue[str],
        policy: OutcomePolicy,
        stats: ReconcileStats,
    ) -> None:
        self.reconciler = reconciler
        self.name = name
        self.queue = queue
        self.policy = policy
        self.stats = stats
        self._in_flight: set[anyio.CancelScope] = set()
        self._stopping = False
        self._log = structlog.get_logger(__name__, controller=name)

    def start(self, tg: anyio.abc.TaskGroup, count: int) -> None:
        """Start ``count`` worker tasks in ``tg``; each returns once the queue shut down."""
        for i in range(count):
            tg.start_soon(self._work, name=f"{self.name} worker {i}")

    async def _work(self) -> None:
        while await self.process_next_item():
            pass

    async def process_next_item(self) -> bool:
        """Take one key, reconcile it and handle the outcome; False once shut down."""
        # A cancellation point, and a yield: ``get`` does not yield when a key is ready.
        await anyio.lowlevel.checkpoint()
        try:
            key = await self.queue.get()
        except QueueShutDown:
            return False
        if self._stopping:
            self.queue.done(key)
            return False
        gate = self.reconciler.key_gate
        if gate is not None and not gate.admit(key):
            self.policy.not_admitted(key)
            self.queue.done(key)
            return True
        try:
            # Shielded: on shutdown an in-flight reconcile finishes (or the grace ends it).
            with anyio.CancelScope(shield=True) as scope:
                self._in_flight.add(scope)
                try:
                    await self._reconcile(key)
                finally:
                    self._in_flight.discard(scope)
        finally:
            self.queue.done(key)
            if gate is not None:
                gate.release(key)
        return True

    async def _reconcile(self, key: str) -> None:
        stats = self.stats
        stats.active_workers += 1
        start = time.perf_counter()
        outcome: ReconcileOutcome
        try:
            with structlog.contextvars.bound_contextvars(controller=self.name, key=key):
                try:
                    result = await self.reconciler.reconcile(key)
                    if result is not None and not isinstance(result, Result):
                        raise TypeError(f"reconcile() must return a Result or None, got {result!r}")
                except Exception as exc:
                    max_retries = self.reconciler.options.max_retries
                    outcome = self.policy.failed(key, exc, max_retries=max_retries)
                else:
                    outcome = self.policy.succeeded(key, result)
        finally:
            stats.active_workers -= 1
        stats.observe(outcome, time.perf_counter() - start)

    async def drain(self, grace: float) -> None:
        """Stop taking keys; wait, shielded, at most ``grace`` seconds for the reconciles
        in flight, then cancel those left; shut the queue down. Keys still queued are not
        processed."""
        self._stopping = True
        with anyio.CancelScope(shield=True):
            in_flight = len(self._in_flight)
            if in_flight:
                self._log.info("controller.draining", in_flight=in_flight, grace=grace)
            with anyio.move_on_after(grace) as waited:
                await self.queue.shut_down_with_drain()
            if waited.cancelled_caught:
                self._log.warning(
                    "controller.drain_timeout", in_flight=len(self._in_flight), grace=grace
                )
                for scope in list(self._in_flight):
                    scope.cancel()
            self.queue.shut_down()
