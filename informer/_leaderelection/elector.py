"""``LeaderElector``: leader election on a ``coordination.k8s.io/v1`` Lease.

The algorithm is client-go's ``tools/leaderelection`` (``leaderelection.go``) on raw
Lease dicts:

- **Acquire**: try at once, then every ``retry_period * (1 + random * 1.2)`` seconds
  (``JITTER_FACTOR``). One attempt reads the Lease (creating it when absent). A Lease held
  by another identity whose record has not expired is left alone; an expired, released
  (``holderIdentity`` empty) or own Lease is taken with an **optimistic update**: a PUT
  carrying the ``resourceVersion`` that was read, so two candidates racing for it cannot
  both win (the loser gets 409 Conflict and loses this round).
- **Expiry is judged by the local clock**, never by the timestamps in the Lease (clocks of
  different machines disagree): :mod:`informer._leaderelection.observation`'s rule, the
  one shard membership applies to member Leases too. A holder that keeps renewing changes
  ``renewTime`` and so keeps its lease.
- **Renew**: while leading, every ``retry_period`` (first a PUT at the cached
  ``resourceVersion``; on any failure a fresh read then a PUT). When no renewal succeeds
  within ``renew_deadline``, leadership is **lost**: the leading work is cancelled,
  ``on_stopped_leading`` is called and :meth:`LeaderElector.run` returns. Unlike
  client-go, a renewal that finds the Lease held by someone else loses at once instead of
  retrying until the deadline: the server says we are not the leader any more.
- **Release**: when :meth:`LeaderElector.run` is cancelled (graceful shutdown) with
  ``release_on_cancel``, the leading work is cancelled and awaited first, then the Lease
  is written with ``holderIdentity: ""``, ``leaseDurationSeconds: 1`` and ``renewTime``
  now (client-go's ``ReleaseOnCancel``), so a follower takes over on its next attempt
  instead of waiting for the lease to expire.

Record fields written: ``holderIdentity``, ``leaseDurationSeconds`` (``lease_duration``
rounded up to whole seconds), ``acquireTime`` (kept across renewals), ``renewTime``
(MicroTime, RFC 3339 with microseconds, UTC) and ``leaseTransitions`` (incremented each
time the holder changes): the format of :mod:`informer._leaderelection.record`. The
timings and their rules are :class:`~informer._leaderelection.timings.LeaseTimings`.

Errors: connection failures, timeouts and API errors are logged and count as a failed
attempt, except **401 and 403**, which propagate from :meth:`LeaderElector.run` (after
the leading work was cancelled): a missing RBAC rule on Leases will not fix itself.

Logs (``structlog``, bound with ``lease`` = ``namespace/name`` and ``identity``):
``leader.acquiring``, ``leader.acquired``, ``leader.observed`` (a new holder was seen),
``leader.lost`` (warning), ``leader.released``, ``leader.attempt_failed`` (warning on the
first failure of a streak, debug for repeats).
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import structlog

from .._exceptions import Conflict, Forbidden, InformerError, NotFound, Unauthorized
from .._failures import report_failure
from .._meta.resource import LEASES
from .._meta.types import Obj
from .._rest.api_client import ApiClient
from .._rest.request import request_json
from .observation import ObservedLease, observe
from .record import micro_time, new_lease, released_record
from .timings import JITTER_FACTOR, LeaseTimings

__all__ = ["LeaderElector"]

log = structlog.get_logger(__name__)


class LeaderElector:
    """Campaigns for the Lease ``namespace/name`` as ``identity``; runs work while leading.

    ``on_started_leading`` is an async function run (in a task) once the Lease is
    acquired; it is **cancelled** when leadership is lost or :meth:`run` is cancelled. If
    it returns, the elector keeps leading (and renewing) until one of those happens; if it
    raises, the Lease is released and the exception propagates from :meth:`run`.
    ``on_stopped_leading()`` is called after the leading work stopped (and the Lease was
    released, on a graceful exit); it is not called when leadership was never acquired.
    ``on_new_leader(identity)`` is called each time a different (non-empty) holder is
    observed, ourselves included. Both are plain functions called on the event loop: keep
    them short; an exception in them is logged and ignored.

    ``timings`` (:class:`~informer._leaderelection.timings.LeaseTimings`): followers take
    the Lease over ``lease_duration`` after they last saw its record change; the leader
    gives up when it could not renew within ``renew_deadline``; attempts are
    ``retry_period`` apart; the release on a graceful exit gets ``release_timeout``.
    ``clock`` is the monotonic clock used to judge expiry (tests inject a fake one); the
    waits between attempts use the event loop's clock.

    Read by metrics and health checks: :meth:`is_leader` (``leader_election_master_status``
    with the label ``name``), :attr:`leader`, :meth:`check`. One elector runs once.
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        name: str,
        namespace: str,
        identity: str,
        timings: LeaseTimings = LeaseTimings(),  # noqa: B008 - immutable
        on_started_leading: Callable[[], Awaitable[Any]] | None = None,
        on_stopped_leading: Callable[[], Any] | None = None,
        on_new_leader: Callable[[str], Any] | None = None,
        release_on_cancel: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not identity:
            raise ValueError("identity must not be empty")
        if not name:
            raise ValueError("name (the Lease name) must not be empty")
        if not namespace:
            raise ValueError("namespace (the Lease namespace) must not be empty")
        if not isinstance(timings, LeaseTimings):
            raise TypeError(f"timings must be a LeaseTimings, got {timings!r}")
        self.api_client = api_client
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.timings = timings
        self.release_on_cancel = release_on_cancel
        self._on_started_leading = on_started_leading
        self._on_stopped_leading = on_stopped_leading
        self._on_new_leader = on_new_leader
        self._clock = clock
        self._path = LEASES.path(name, namespace=namespace)

        self._observed: ObservedLease | None = None  # the Lease last read or written
        self._reported: str | None = None  # holder last given to on_new_leader
        self._leading = False
        self._started = False
        self._fatal: BaseException | None = None
        self._work_error: BaseException | None = None
        self._last_error: str | None = None
        self.lost_reason: str | None = None
        """Why leadership was lost (set when :meth:`run` returns or raises 401/403)."""
        self._log = structlog.get_logger(__name__, lease=f"{namespace}/{name}", identity=identity)

    # -- state ------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        """True from the moment the Lease is acquired until leadership is lost or released."""
        return self._leading

    @property
    def leader(self) -> str | None:
        """The holder in the record last observed (``None`` when nobody holds the Lease)."""
        if self._observed is None or self._observed.released:
            return None
        return self._observed.holder

    @property
    def observed_record(self) -> Obj:
        """A copy of the Lease ``spec`` last observed (read or written)."""
        return dict(self._observed.record) if self._observed is not None else {}

    def check(self, max_tolerable_expired_lease: float = 20.0) -> str | None:
        """Health check (client-go ``Check``): a problem description, or ``None`` if healthy.

        Unhealthy when this elector believes it leads but has not seen its record renewed
        for more than ``lease_duration + max_tolerable_expired_lease`` seconds: it should
        have given up by then (a stuck event loop, for example).
        """
        if not self._leading or self._observed is None:
            return None
        overdue = self._clock() - self._observed.since
        lease_duration = self.timings.lease_duration
        if overdue > lease_duration + max_tolerable_expired_lease:
            return (
                f"leader election: lease {self.namespace}/{self.name} not renewed for "
                f"{overdue:.1f}s (lease duration {lease_duration:g}s)"
            )
        return None

    # -- running ------------------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Acquire the Lease, lead until leadership is lost, then return.

        ``task_status.started()`` is called once the first attempt to acquire finished
        (so :attr:`leader` and :meth:`is_leader` reflect the Lease). Returns (after
        ``on_stopped_leading``) only when leadership was lost. On cancellation the leading
        work is cancelled and awaited, the Lease released (``release_on_cancel``, shielded,
        within ``release_timeout``), ``on_stopped_leading`` called, and the cancellation
        propagates. Raises :class:`~informer.Unauthorized` / :class:`~informer.Forbidden`
        from the Lease requests and whatever ``on_started_leading`` raised.
        """
        if self._started:
            raise RuntimeError(f"leader elector for {self.namespace}/{self.name} already ran")
        self._started = True
        await self._acquire(task_status)
        lost: str | None = None
        try:
            async with anyio.create_task_group() as tg:
                if self._on_started_leading is not None:
                    tg.start_soon(self._lead, tg.cancel_scope, name=f"leading {self.name}")
                lost = self.lost_reason = await self._renew_loop()
                tg.cancel_scope.cancel()
            if self._work_error is not None:
                raise self._work_error
            if self._fatal is not None:
                raise self._fatal
        finally:
            with anyio.CancelScope(shield=True):
                if lost is None and self.release_on_cancel and self._fatal is None:
                    with anyio.move_on_after(self.timings.release_timeout) as scope:
                        await self._release()
                    if scope.cancelled_caught:
                        self._log.warning("leader.release_failed", error="timed out")
                self._leading = False
                self._call(self._on_stopped_leading)

    async def _lead(self, scope: anyio.CancelScope) -> None:
        assert self._on_started_leading is not None
        try:
            await self._on_started_leading()
        except Exception as exc:
            self._work_error = exc
            scope.cancel()

    async def _acquire(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        timings = self.timings
        self._log.info(
            "leader.acquiring",
            lease_duration=timings.lease_duration,
            renew_deadline=timings.renew_deadline,
            retry_period=timings.retry_period,
        )
        first = True
        while True:
            acquired = await self._attempt(timings.renew_deadline)
            self._report_transition()
            if acquired:
                self._leading = True
                transitions = self.observed_record.get("leaseTransitions", 0)
                self._log.info("leader.acquired", transitions=transitions)
            if first:
                first = False
                task_status.started()
            if acquired:
                return
            await anyio.sleep(timings.retry_period * (1.0 + random.random() * JITTER_FACTOR))

    async def _renew_loop(self) -> str:
        """Renew every ``retry_period``; return why leadership was lost.

        A fatal error (401/403) is stored in ``_fatal`` and ends the loop too.
        """
        retry_period, renew_deadline = self.timings.retry_period, self.timings.renew_deadline
        while True:
            await anyio.sleep(retry_period)
            deadline = anyio.current_time() + renew_deadline
            while True:
                remaining = deadline - anyio.current_time()
                try:
                    renewed = remaining > 0 and await self._attempt(remaining)
                except (Unauthorized, Forbidden) as exc:
                    self._fatal = exc
                    self._leading = False
                    self._log.error("leader.lost", reason=str(exc))
                    return str(exc)
                self._report_transition()
                holder = self.leader or ""
                if renewed:
                    break
                if holder and holder != self.identity and self._lease_valid():
                    reason = f"the lease is held by {holder}"
                elif anyio.current_time() + 1e-3 >= deadline:
                    reason = f"not renewed within the renew deadline ({renew_deadline:g}s)"
                else:
                    left = deadline - anyio.current_time()
                    await anyio.sleep(min(retry_period, max(0.0, left)))
                    continue
                self._leading = False
                self._log.warning("leader.lost", reason=reason)
                return reason

    async def _attempt(self, budget: float) -> bool:
        """One ``tryAcquireOrRenew`` within ``budget`` seconds; False on a non-fatal failure."""
        error: str
        with anyio.move_on_after(budget):
            try:
                acquired = await self._try_acquire_or_renew(budget)
            except (Unauthorized, Forbidden):
                raise
            except InformerError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                self._last_error = None
                return acquired
            self._log_failure(error)
            return False
        self._log_failure(f"timed out after {budget:.3g}s")
        return False

    def _log_failure(self, error: str) -> None:
        level = self._log.debug if error == self._last_error else self._log.warning
        level("leader.attempt_failed", error=error, leading=self._leading)
        self._last_error = error

    async def _try_acquire_or_renew(self, read_timeout: float) -> bool:
        now = micro_time()
        record: Obj = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.timings.lease_seconds,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        }
        # 1. Fast path: the leader updates at the resourceVersion it wrote last.
        if self._observed is not None and self._observed_is_us() and self._lease_valid():
            record["acquireTime"] = self._observed.record.get("acquireTime") or now
            record["leaseTransitions"] = self._observed.record.get("leaseTransitions") or 0
            try:
                await self._update(record, read_timeout)
                return True
            except (Unauthorized, Forbidden):
                raise
            except InformerError as exc:
                self._log.debug("leader.optimistic_update_failed", error=str(exc))

        # 2. Read the Lease, or create it.
        try:
            lease = await self._request("GET", None, read_timeout)
        except NotFound:
            try:
                created = await self._request(
                    "POST",
                    new_lease(record, name=self.name, namespace=self.namespace),
                    read_timeout,
                )
            except Conflict:  # AlreadyExists: another candidate created it first
                return False
            self._observed = observe(None, created, self._clock())
            return True
        self._observed = observe(self._observed, lease, self._clock())
        spec = self._observed.record

        # 3. Held by another, and not expired by our clock: leave it.
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and self._lease_valid():
            return False

        # 4. Take it (or renew through the slow path).
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            record["acquireTime"] = spec.get("acquireTime") or now
            record["leaseTransitions"] = transitions
        else:
            record["leaseTransitions"] = transitions + 1
        try:
            await self._update(record, read_timeout)
        except Conflict:
            self._log.debug("leader.conflict", holder=holder or None)
            return False
        return True

    async def _release(self) -> None:
        """Give the Lease up: empty holder, 1-second duration (client-go's release)."""
        if self._observed is None or not self._observed_is_us():
            return
        record = released_record(self._observed.record)
        timeout = self.timings.release_timeout
        for _ in range(2):
            try:
                await self._update(record, timeout)
            except Conflict:
                # Our resourceVersion is stale: re-read; release only if still ours.
                try:
                    lease = await self._request("GET", None, timeout)
                except InformerError as exc:
                    self._log.warning("leader.release_failed", error=str(exc))
                    return
                self._observed = observe(self._observed, lease, self._clock())
                if not self._observed_is_us():
                    return
                continue
            except InformerError as exc:
                self._log.warning("leader.release_failed", error=str(exc))
                return
            self._log.info("leader.released")
            return

    # -- helpers ------------------------------------------------------------------------------

    async def _update(self, spec: Obj, read_timeout: float) -> None:
        """PUT ``spec`` at the observed ``resourceVersion``; observe what the server stored."""
        assert self._observed is not None
        body = dict(self._observed.lease)
        metadata = dict(body.get("metadata") or {})
        metadata.pop("managedFields", None)
        body["metadata"] = metadata
        body["spec"] = spec
        updated = await self._request("PUT", body, read_timeout)
        self._observed = observe(None, updated, self._clock())

    async def _request(self, method: str, body: Obj | None, read_timeout: float) -> Obj:
        path = LEASES.path(namespace=self.namespace) if method == "POST" else self._path
        return await request_json(
            self.api_client,
            method,
            path,
            body=body,
            resource=LEASES.group_resource,
            namespace=self.namespace,
            read_timeout=max(read_timeout, 0.001),
        )

    def _observed_is_us(self) -> bool:
        return self._observed is not None and self._observed.holder == self.identity

    def _lease_valid(self) -> bool:
        """The observed record has not expired, judged by the local clock."""
        return self._observed is not None and not self._observed.expired(self._clock())

    def _report_transition(self) -> None:
        holder = self.leader
        if holder == self._reported:
            return
        self._reported = holder
        if holder is None:
            return
        self._log.info("leader.observed", leader=holder, is_self=holder == self.identity)
        if self._on_new_leader is not None:
            self._call(self._on_new_leader, holder)

    def _call(self, callback: Callable[..., Any] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception as exc:
            report_failure("callback", f"lease {self.namespace}/{self.name}", exc)
            self._log.error(
                "leader.callback_failed",
                callback=getattr(callback, "__qualname__", repr(callback)),
                error=f"{type(exc).__name__}: {exc}",
                exc_info=exc,
            )

    def __repr__(self) -> str:
        state = "leading" if self._leading else f"following {self.leader or 'nobody'}"
        return f"<LeaderElector {self.namespace}/{self.name} {self.identity!r} {state}>"
