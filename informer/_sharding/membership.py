"""``Membership``: hold our member Lease, and judge which members of the group are live.

One loop per replica (:meth:`Membership.run`):

1. **renew** our Lease, every ``retry_period`` and at once when the handoff publishes a
   new "drained": a PUT at the ``resourceVersion`` we wrote last, with a fresh
   ``renewTime`` and our annotations (``records``). A renewal counts from the moment its
   request was *sent*: our membership is valid until ``sent + renew_deadline`` of the
   local monotonic clock. When that passes without a newer successful renewal (or the
   server says the Lease is gone or held by someone else), the membership **lapses**:
   :attr:`Membership.members` becomes ``None`` at once (the handoff gates then admit no
   key), the work (the controllers) is cancelled and awaited, and :meth:`run` raises
   :class:`~informer.ShardMembershipLost`. A lapsed identity never comes back (the
   runner exits; a restarted process is a new member).
2. **list** the group's Leases with the label selector, every ``retry_period`` (four
   times as often while the handoff waits for the others to drain: :attr:`hurry`), as
   a *consistent* read (no ``resourceVersion``: served from etcd, never from a lagging
   cache), and judge each other Lease as the leader elector judges its record, by the
   local clock (:mod:`informer._leaderelection.observation`): ``since`` is when a list
   first returned the Lease's current record (``spec``: each renewal writes a new
   ``renewTime``); it is **expired** once ``since + leaseDurationSeconds`` is not after
   the start of a list that still returns that record. A released Lease (empty
   ``holderIdentity``: a replica that stopped gracefully, after its controllers
   stopped) is not a member at once. A Lease that disappears without
   having been seen released stays a member (a *ghost*) until it would have expired.

The live members are ourselves plus every other holder whose Lease is neither expired
nor released. ``on_change()`` is called after each list (and at a lapse), so the handoff
can re-evaluate; it must not block.

Clean-up: a member deletes a Lease it judged expired, or saw released for a lease
duration (a ``DELETE`` with a ``resourceVersion`` precondition); dead replicas' Leases
do not pile up. On a graceful stop (:meth:`run` cancelled) the work is cancelled and
awaited first, then our Lease is released (``holderIdentity: ""``, within
``release_timeout``).

Errors: connection failures, timeouts and API errors of the renewals and lists are
logged (and end in a lapse if they last); 401 and 403 propagate from :meth:`run`.

Logs (bound with ``group`` and ``identity``): ``shard.joined``, ``shard.view``,
``shard.lapsed`` (warning), ``shard.released``, ``shard.request_failed`` (warning on the
first failure of a streak), ``shard.member_expired``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import structlog

from .._exceptions import (
    AlreadyExists,
    ConfigError,
    Conflict,
    Forbidden,
    InformerError,
    NotFound,
    ShardMembershipLost,
    Unauthorized,
)
from .._leaderelection.observation import ObservedLease, observe
from .._leaderelection.record import micro_time, released_record
from .._leaderelection.timings import LeaseTimings
from .._meta.resource import LEASES
from .._meta.types import Obj
from .._rest.api_client import ApiClient
from .._rest.request import request_json
from .records import (
    DRAINED_ANNOTATION,
    GROUP_LABEL,
    VIEW_ANNOTATION,
    MemberRecord,
    lease_body,
    lease_name,
)

__all__ = ["Membership"]


HURRY_FACTOR = 4
"""While :attr:`Membership.hurry`, the group is listed this many times per retry period."""


class _Lapse(Exception):
    """Internal: the membership lapsed (the reason is the message)."""


@dataclass(slots=True)
class _Seen:
    observed: ObservedLease  # the Lease as last listed, judged on our clock
    member: MemberRecord  # what the handoff reads of it
    present: bool  # in the latest list (False: a ghost)


class Membership:
    """Our member Lease in ``namespace`` for ``group``, held as ``identity``.

    ``identity`` must be unique per process *run*: the protocol's safety argument relies
    on a member that lapsed or stopped never coming back under the same name (a Lease
    left by an earlier run with the same identity makes :meth:`run` raise
    :class:`~informer.ConfigError`).

    ``timings`` (:class:`~informer._leaderelection.timings.LeaseTimings`):
    ``lease_duration`` is written to our Lease (rounded up to whole seconds) and is how
    long others wait after they last saw it change; ``renew_deadline`` how long our
    membership survives without a successful renewal; ``retry_period`` the pause between
    renewals (and lists); ``release_timeout`` bounds the release on a graceful stop.
    ``clock`` is the monotonic clock of all judgments.

    Read by the handoff (on the event loop): :attr:`members`, :meth:`drained_of`. Written
    by the handoff: :meth:`publish`. One Membership runs once.
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        group: str,
        namespace: str,
        identity: str,
        timings: LeaseTimings = LeaseTimings(),  # noqa: B008 - immutable
        on_change: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not identity or not namespace or not group:
            raise ValueError("a shard membership needs a group, a namespace and an identity")
        if not isinstance(timings, LeaseTimings):
            raise TypeError(f"timings must be a LeaseTimings, got {timings!r}")
        self.api_client = api_client
        self.group = group
        self.namespace = namespace
        self.identity = identity
        self.timings = timings
        self.lease_name = lease_name(group, identity)
        self.on_change = on_change
        self._clock = clock
        self._lease: Obj | None = None  # our Lease as last written (its resourceVersion)
        self._valid_until = -math.inf
        self._seen: dict[str, _Seen] = {}  # other Leases of the group, by name
        self._records: dict[str, MemberRecord] = {}  # live members' records, by holder
        self._drained = ""
        self._written_drained = ""  # the "drained" our Lease holds (last renewal)
        self._view = ""
        self._poke = anyio.Event()
        self._started = False
        self._last_error: dict[str, str] = {}  # by request kind (join, renew, list)
        self.members: tuple[str, ...] | None = None
        """The live members, sorted (ourselves included); ``None`` before the first list
        and once lapsed."""
        self.lapsed_reason: str | None = None
        self.hurry = False
        """Set by the handoff while its view waits for other members' "drained": the
        group is then listed every ``retry_period / 4`` (renewals keep their pace)."""
        self._log = structlog.get_logger(__name__, group=group, identity=identity)

    # -- read and written by the handoff ------------------------------------------------

    def drained_of(self, member: str) -> str:
        """The view digest ``member`` last published as drained (``""``: none)."""
        record = self._records.get(member)
        return record.drained if record is not None else ""

    def publish(self, *, view: str, drained: str) -> None:
        """Write ``view`` and ``drained`` on our Lease with the next renewal; a new
        ``drained`` renews at once."""
        self._view, self._drained = view, drained
        if drained != self._written_drained:
            self._poke.set()

    @property
    def valid_for(self) -> float:
        """Seconds our membership stays valid without another renewal (<= 0: lapsed)."""
        return self._valid_until - self._clock()

    # -- running --------------------------------------------------------------------------

    async def run(
        self,
        work: Callable[[], Awaitable[Any]] | None = None,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Join, then run ``work`` while our membership holds; see the module docstring.

        ``task_status.started()`` once joined and the first list gave a view. Raises
        :class:`~informer.ShardMembershipLost` after a lapse (the work cancelled and
        awaited first), 401/403, and whatever ``work`` raised; on cancellation the work
        is cancelled and awaited, then our Lease released.
        """
        if self._started:
            raise RuntimeError(f"shard membership {self.lease_name} already ran")
        self._started = True
        await self._join()
        await self._cycle(renew=False)
        task_status.started()
        lapsed: str | None = None
        work_error: list[BaseException] = []
        try:
            async with anyio.create_task_group() as tg:
                if work is not None:
                    tg.start_soon(self._run_work, work, tg.cancel_scope, work_error)
                lapsed = await self._maintain()
                tg.cancel_scope.cancel()
        finally:
            if lapsed is None:
                with anyio.CancelScope(shield=True):
                    await self._release()
        if work_error:
            raise work_error[0]
        lease = f"{self.namespace}/{self.lease_name}"
        raise ShardMembershipLost(
            f"shard membership lost: lease {lease} (identity {self.identity}): {lapsed}; "
            "controllers stopped",
            lease=lease,
            identity=self.identity,
        )

    async def _run_work(
        self,
        work: Callable[[], Awaitable[Any]],
        scope: anyio.CancelScope,
        errors: list[BaseException],
    ) -> None:
        try:
            await work()
        except Exception as exc:
            errors.append(exc)
            scope.cancel()

    async def _join(self) -> None:
        """Create our Lease (retrying every ``retry_period``); our membership starts."""
        body = lease_body(
            group=self.group,
            namespace=self.namespace,
            identity=self.identity,
            lease_seconds=self.timings.lease_seconds,
            drained="",
            view="",
        )
        timings = self.timings
        while True:
            sent = self._clock()
            try:
                with anyio.fail_after(timings.renew_deadline):
                    self._lease = await self._request(
                        "POST", body, path=None, read_timeout=timings.renew_deadline
                    )
            except (Unauthorized, Forbidden):
                raise
            except AlreadyExists as exc:
                lease = f"{self.namespace}/{self.lease_name}"
                raise ConfigError(
                    f"shard member Lease {lease} already exists: identity {self.identity!r} "
                    "is (or was) used by another process; give every process run its own "
                    "identity (the default, <hostname>_<uuid4>, is)"
                ) from exc
            except (InformerError, TimeoutError) as exc:
                self._failed("join", exc)
                await anyio.sleep(timings.retry_period)
                continue
            self._valid_until = sent + timings.renew_deadline
            self._log.info(
                "shard.joined",
                lease=f"{self.namespace}/{self.lease_name}",
                lease_duration=timings.lease_duration,
                renew_deadline=timings.renew_deadline,
                retry_period=timings.retry_period,
            )
            return

    async def _maintain(self) -> str:
        """Renew and list until the membership lapses; return why it lapsed.

        The lapse is noticed when ``valid_for`` reaches 0, even while a request hangs.
        """
        retry_period = self.timings.retry_period
        deadline = f"not renewed within the renew deadline ({self.timings.renew_deadline:g}s)"
        renewed = self._clock()
        while True:
            # A new "drained" is written at once, unless renewals are failing (no spin).
            if self._drained == self._written_drained or "renew" in self._last_error:
                self._poke = anyio.Event()
                pause = retry_period / HURRY_FACTOR if self.hurry else retry_period
                with anyio.move_on_after(min(pause, max(0.0, self.valid_for))):
                    await self._poke.wait()
            try:
                if self.valid_for <= 0:
                    raise _Lapse(deadline)
                renew = (
                    self._drained != self._written_drained
                    or self._clock() - renewed >= retry_period
                )
                if renew:
                    renewed = self._clock()
                with anyio.move_on_after(self.valid_for):
                    await self._cycle(renew=renew)
                if self.valid_for <= 0:
                    raise _Lapse(deadline)
            except _Lapse as lapse:
                self.members = None
                self.lapsed_reason = str(lapse)
                self._log.warning("shard.lapsed", reason=self.lapsed_reason)
                self._changed()
                return self.lapsed_reason

    async def _cycle(self, *, renew: bool) -> None:
        if renew:
            await self._renew()
        await self._refresh()
        self._changed()

    async def _renew(self) -> None:
        assert self._lease is not None
        sent = self._clock()
        body = copy.deepcopy(self._lease)
        metadata = body.setdefault("metadata", {})
        metadata.pop("managedFields", None)
        annotations = metadata.get("annotations") or {}
        drained = annotations[DRAINED_ANNOTATION] = self._drained
        annotations[VIEW_ANNOTATION] = self._view
        metadata["annotations"] = annotations
        body.setdefault("spec", {})["renewTime"] = micro_time()
        try:
            self._lease = await self._request(
                "PUT", body, path=self.lease_name, read_timeout=self.valid_for
            )
        except (Unauthorized, Forbidden):
            raise
        except NotFound as exc:
            raise _Lapse("our lease was deleted") from exc
        except Conflict as exc:
            raise _Lapse("our lease was changed by someone else") from exc
        except InformerError as exc:
            self._failed("renew", exc)
            return
        self._valid_until = sent + self.timings.renew_deadline
        self._written_drained = drained
        self._last_error.pop("renew", None)

    async def _refresh(self) -> None:
        """One consistent list of the group's Leases: judge every member's expiry."""
        started = self._clock()
        try:
            listed = await request_json(
                self.api_client,
                "GET",
                LEASES.path(namespace=self.namespace),
                query={"labelSelector": f"{GROUP_LABEL}={self.group}"},
                resource=LEASES.group_resource,
                namespace=self.namespace,
                read_timeout=max(0.001, min(self.timings.renew_deadline, self.valid_for)),
            )
        except (Unauthorized, Forbidden):
            raise
        except InformerError as exc:
            self._failed("list", exc)
            return
        returned = self._clock()
        self._last_error.pop("list", None)
        present: set[str] = set()
        for item in listed.get("items") or ():
            member = MemberRecord.from_lease(item)
            if not member.name or member.name == self.lease_name:
                continue
            present.add(member.name)
            seen = self._seen.get(member.name)
            observed = observe(seen.observed if seen else None, item, returned)
            self._seen[member.name] = _Seen(observed, member, True)
        for name, seen in list(self._seen.items()):
            if name not in present:
                seen.present = False
                if seen.observed.released:
                    del self._seen[name]
        await self._judge(started)

    async def _judge(self, started: float) -> None:
        """Live members from the Leases seen; collect the expired (``started``: when the
        list that confirmed them was sent)."""
        live: dict[str, MemberRecord] = {}
        for name, seen in list(self._seen.items()):
            observed, member = seen.observed, seen.member
            if observed.released:
                # Not a member at once; collected after one of *our* lease durations, so
                # every member lists it released before it disappears (no ghost).
                if started >= observed.since + self.timings.lease_seconds:
                    await self._collect(member)
                continue
            if not observed.expired(started):
                live[member.holder] = member
                continue
            if member.holder in self._records:
                self._log.info("shard.member_expired", member=member.holder)
            if seen.present:
                await self._collect(member)
            else:
                del self._seen[name]
        self._records = live
        members = tuple(sorted({*live, self.identity}))
        if members != self.members:
            self._log.info("shard.view", members=list(members), size=len(members))
        self.members = members

    async def _collect(self, record: MemberRecord) -> None:
        """Delete a Lease judged expired (released ones expire after a lease duration).

        Forgotten once gone. A delete that failed (the Lease was written since it was
        listed, or the request failed) keeps the observation: the next list judges the
        Lease again, and only a changed record makes it live again."""
        try:
            with anyio.move_on_after(self.timings.retry_period) as scope:
                await request_json(
                    self.api_client,
                    "DELETE",
                    LEASES.path(record.name, namespace=self.namespace),
                    body={"preconditions": {"resourceVersion": record.resource_version}},
                    resource=LEASES.group_resource,
                    namespace=self.namespace,
                )
        except NotFound:
            pass  # someone else collected it
        except Conflict:
            return  # written since it was listed: judged again by the next list
        except InformerError as exc:
            self._log.debug("shard.collect_failed", lease=record.name, error=str(exc))
            return
        if not scope.cancelled_caught:
            self._seen.pop(record.name, None)

    async def _release(self) -> None:
        """Give our Lease up (empty holder) once the work stopped; never raises.

        The record written is the elector's (``released_record``). A renewal cancelled
        in flight may have been applied: on a 409 the Lease is read again and released at
        its new resourceVersion if it is still ours (as the leader elector does), all
        within ``release_timeout``."""
        lease, self._lease = self._lease, None
        if lease is None:
            return
        self.members = None
        timeout = self.timings.release_timeout
        try:
            with anyio.fail_after(timeout):
                for _ in range(2):
                    body = copy.deepcopy(lease)
                    body.get("metadata", {}).pop("managedFields", None)
                    body["spec"] = released_record(body.get("spec") or {})
                    try:
                        await self._request("PUT", body, path=self.lease_name, read_timeout=timeout)
                        break
                    except Conflict:
                        lease = await self._request(
                            "GET", None, path=self.lease_name, read_timeout=timeout
                        )
                        holder = (lease.get("spec") or {}).get("holderIdentity") or ""
                        if holder != self.identity:
                            return
                else:
                    raise Conflict("the Lease kept changing under the release")
        except (InformerError, TimeoutError) as exc:
            self._log.warning("shard.release_failed", error=f"{type(exc).__name__}: {exc}")
            return
        self._log.info("shard.released")

    # -- helpers ----------------------------------------------------------------------------

    async def _request(
        self, method: str, body: Obj | None, *, path: str | None, read_timeout: float
    ) -> Obj:
        return await request_json(
            self.api_client,
            method,
            LEASES.path(path, namespace=self.namespace),
            body=body,
            resource=LEASES.group_resource,
            namespace=self.namespace,
            read_timeout=max(0.001, read_timeout),
        )

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _failed(self, what: str, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        level = self._log.debug if error == self._last_error.get(what) else self._log.warning
        level("shard.request_failed", request=what, error=error, valid_for=round(self.valid_for, 3))
        self._last_error[what] = error

    def __repr__(self) -> str:
        state = "lapsed" if self.lapsed_reason else f"members={list(self.members or ())}"
        return f"<Membership {self.namespace}/{self.lease_name} {self.identity!r} {state}>"
