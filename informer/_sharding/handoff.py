"""``Handoff``: which keys this replica may start, and the "drained" half of the protocol.

The :class:`~informer._sharding.membership.Membership` gives the live member set (our
*view*) and each member's published "drained" view; the handoff turns them into one
:class:`Gate` per controller, which the controller's workers ask before each reconcile
(:attr:`informer.Controller.key_gate`). With ``me`` our identity and ``V`` our view:

- **admit** ``key`` only if ``owner(V, key) == me`` and ``V`` is *cleared*: every other
  member of ``V`` has published "drained for ``V``". A key whose owner is another member
  is dropped (that member's own informers see the same events); a key we own but may
  not start yet, or any key while we have no view, is *parked* and re-added when ``V``
  clears.
- **drained**: as soon as no reconcile in flight (over every controller) is of a key we
  do not own in ``V``, we publish "drained for ``V``" (:meth:`Membership.publish`); we
  never admit such a key while our view is ``V``.
- **gained keys**: when ``V`` clears, every key we now own and did not own in the last
  cleared view (or in a view adopted since) is enqueued again from the caches
  (:meth:`informer.Controller.cached_keys`: every cached object mapped as an add event
  would be), with the parked keys we own: events we dropped while another member owned
  the key are not lost.

Why this never lets two replicas reconcile one key at once is argued in
``docs/sharding.md``. Everything runs on the event loop; :meth:`Handoff.update` and the
gates never await. :meth:`Handoff.run` (a task) does the re-enqueueing, yielding now and
then on large caches.

Statistics for metrics: :attr:`Handoff.rebalances` (views adopted after the first),
:attr:`Handoff.handoff_waits` (seconds from adopting a view to its clearing: a
:class:`WaitHistogram`, fixed size however many views clear), :attr:`Gate.owned` (keys
owned among the cached ones, as of the last clear).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import anyio
import anyio.lowlevel
import structlog

from .._controller.controller import Controller
from .assignment import owner, view_digest

__all__ = ["HANDOFF_WAIT_BUCKETS", "Gate", "Handoff", "WaitHistogram"]

_YIELD_EVERY = 1000

HANDOFF_WAIT_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
"""Upper bounds (seconds) of the handoff-wait histogram's buckets."""


class WaitHistogram:
    """A cumulative histogram of seconds (Prometheus semantics): a count per bucket, the
    sum and the count; its size does not grow with the observations."""

    def __init__(self, bounds: Sequence[float] = HANDOFF_WAIT_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self._counts = [0] * len(self.bounds)  # observations in (bound[i-1], bound[i]]
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        i = bisect.bisect_left(self.bounds, seconds)
        if i < len(self._counts):
            self._counts[i] += 1
        self.sum += seconds
        self.count += 1

    def buckets(self) -> list[tuple[str, float]]:
        """``[(le, cumulative count)]``, ``+Inf`` last (``HistogramMetricFamily``'s form)."""
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip(self.bounds, self._counts, strict=True):
            total += count
            out.append((repr(bound), float(total)))
        out.append(("+Inf", float(self.count)))
        return out

    def __len__(self) -> int:
        return self.count


class Gate:
    """The key gate of one controller (:class:`informer.Controller` ``key_gate``)."""

    def __init__(self, handoff: Handoff, controller: Controller) -> None:
        self.handoff = handoff
        self.controller = controller
        self.in_flight: dict[str, int] = {}
        self.parked: set[str] = set()
        self.owned = 0
        """Cached keys this replica owns (counted when its view last cleared)."""
        self.skipped = 0
        """Keys dropped because another member owns them."""

    def admit(self, key: str) -> bool:
        """May this worker reconcile ``key`` now? True counts it in flight until
        :meth:`release`. Never awaits."""
        handoff = self.handoff
        members = handoff.members
        if members is None or not handoff.valid():
            self.parked.add(key)
            return False
        if owner(members, handoff.key_of(key)) != handoff.identity:
            self.skipped += 1
            return False
        if not handoff.cleared or not handoff.ready(handoff.key_of(key)):
            self.parked.add(key)
            return False
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        return True

    def release(self, key: str) -> None:
        """The reconcile of an admitted ``key`` ended (however it ended)."""
        count = self.in_flight.get(key, 0) - 1
        if count > 0:
            self.in_flight[key] = count
        else:
            self.in_flight.pop(key, None)
        self.handoff.check_drained()

    def __repr__(self) -> str:
        return f"<Gate {self.controller.name} in_flight={len(self.in_flight)}>"


class Handoff:
    """The per-key gates of ``identity``'s controllers, driven by :meth:`update`.

    ``publish(view=..., drained=...)`` writes our annotations (the membership's
    :meth:`~informer._sharding.membership.Membership.publish`); ``valid()`` is false once
    our membership may have lapsed (checked at every admission, so no key starts after
    the renew deadline even before the lapse is noticed); ``key_of`` maps a work-queue
    key to what is hashed (the key itself in key mode, its namespace in namespace mode);
    ``ready(unit)`` says whether the caches of a hashed unit are synced (namespace mode:
    a key of an owned namespace whose informers still sync is parked, and re-added by
    :meth:`unit_ready`).
    """

    def __init__(
        self,
        identity: str,
        *,
        publish: Callable[..., Any],
        valid: Callable[[], bool] = lambda: True,
        key_of: Callable[[str], str] = lambda key: key,
        ready: Callable[[str], bool] = lambda unit: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.identity = identity
        self.publish = publish
        self.valid = valid
        self.key_of = key_of
        self.ready = ready
        self.on_adopt: list[Callable[[], None]] = []
        """Called (never awaiting) after each view change is adopted."""
        self._clock = clock
        self.gates: list[Gate] = []
        self.members: tuple[str, ...] | None = None
        self.view = ""
        self.cleared = False
        self.drained = ""
        self.rebalances = 0
        self.handoff_waits = WaitHistogram()
        self._adopted_at = 0.0
        self._adopted = 0  # views adopted (the first is no rebalance)
        self._since_clear: list[tuple[str, ...] | None] = [None]  # views not to trust
        self._requeue: list[tuple[tuple[str, ...], list[tuple[str, ...] | None]]] = []
        self._wake = anyio.Event()
        self._log = structlog.get_logger(__name__, identity=identity)

    def gate(self, controller: Controller) -> Gate:
        """A new gate for ``controller`` (install it as ``controller.key_gate``)."""
        gate = Gate(self, controller)
        self.gates.append(gate)
        return gate

    def remove_gate(self, gate: Gate) -> None:
        """Forget ``gate`` (its controller stopped: nothing of it is in flight), then
        re-check "drained"."""
        self.gates = [g for g in self.gates if g is not gate]
        self.check_drained()

    def unit_ready(self, unit: str) -> int:
        """The caches of ``unit`` (what ``key_of`` maps keys to) synced: re-add the keys
        of it parked meanwhile to their controllers' queues (the gates decide again).
        Returns how many were re-added."""
        added = 0
        key_of = self.key_of
        for gate in self.gates:
            parked = [key for key in gate.parked if key_of(key) == unit]
            for key in parked:
                gate.parked.discard(key)
                gate.controller.queue.add(key)
            added += len(parked)
        return added

    def owns(self, key: str) -> bool:
        """Whether our current view assigns ``key`` to us (cleared or not)."""
        members = self.members
        return members is not None and owner(members, self.key_of(key)) == self.identity

    def has_view(self) -> bool:
        return self.members is not None

    # -- driven by the membership -----------------------------------------------------------

    def update(self, members: Sequence[str] | None, drained_of: Callable[[str], str]) -> None:
        """Adopt ``members`` as our view (``None``: no view) and re-check the barrier."""
        current = tuple(sorted(members)) if members is not None else None
        if current != self.members:
            self._adopt(current)
        if self.members is not None and not self.cleared:
            me = self.identity
            if all(drained_of(m) == self.view for m in self.members if m != me):
                self._clear()
        self.check_drained()

    def _adopt(self, members: tuple[str, ...] | None) -> None:
        self.members = members
        self.view = view_digest(members) if members is not None else ""
        self.cleared = False
        self._since_clear.append(members)
        if members is None:
            self._log.info("shard.view_dropped")
        else:
            self._adopted += 1
            if self._adopted > 1:
                self.rebalances += 1
            self._adopted_at = self._clock()
            self._log.info("shard.view_adopted", view=self.view, members=list(members))
            self.publish(view=self.view, drained=self.drained)
        for callback in self.on_adopt:
            callback()

    def _clear(self) -> None:
        assert self.members is not None
        self.cleared = True
        wait = self._clock() - self._adopted_at
        self.handoff_waits.observe(wait)
        untrusted, self._since_clear = self._since_clear, [self.members]
        self._requeue.append((self.members, untrusted))
        self._wake.set()
        self._log.info(
            "shard.view_cleared", view=self.view, members=len(self.members), waited=round(wait, 3)
        )

    def check_drained(self) -> None:
        """Publish "drained for our view" once nothing in flight is of a key we do not
        own in it."""
        members = self.members
        if members is None or self.drained == self.view:
            return
        me, key_of = self.identity, self.key_of
        for gate in self.gates:
            for key in gate.in_flight:
                if owner(members, key_of(key)) != me:
                    return
        self.drained = self.view
        self._log.info("shard.drained", view=self.view)
        self.publish(view=self.view, drained=self.drained)

    # -- re-enqueueing ------------------------------------------------------------------------

    async def run(self) -> None:
        """Re-enqueue gained and parked keys after each clear; until cancelled."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            while self._requeue:
                members, untrusted = self._requeue.pop(0)
                await self._requeue_gained(members, untrusted)

    async def _requeue_gained(
        self, members: tuple[str, ...], untrusted: list[tuple[str, ...] | None]
    ) -> None:
        me, key_of = self.identity, self.key_of
        for gate in self.gates:
            queue = gate.controller.queue
            parked, gate.parked = gate.parked, set()
            added = owned = 0
            for key in parked:
                if owner(members, key_of(key)) == me:
                    queue.add(key)
                    added += 1
            for i, key in enumerate(gate.controller.cached_keys()):
                if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                    await anyio.lowlevel.checkpoint()
                hashed = key_of(key)
                if owner(members, hashed) != me:
                    continue
                owned += 1
                if any(v is None or owner(v, hashed) != me for v in untrusted):
                    queue.add(key)
                    added += 1
            gate.owned = owned
            self._log.info(
                "shard.keys_requeued",
                controller=gate.controller.name,
                owned=owned,
                requeued=added,
                view=view_digest(members),
            )
