"""``LeaderElector`` (informer._leaderelection.elector) on the real API server's Leases.

Timings are shortened (retry periods of tens of milliseconds); expiry is driven by an
injected clock where the test is about time, so nothing waits for a real lease to expire.
Conditions are awaited by polling the API or the elector with a bounded loop, or through
the elector's callbacks. Assertions are about order and cause (the callbacks' timeline,
the Lease's holder and transitions, ``lost_reason``), never about how fast something
happened. The only bounds on real time left are in the renew-deadline test (the deadline
runs on the event loop's clock, which is not injected): one exact, from the code's order
of operations, and two derived from the timings with their margins stated.
"""

from __future__ import annotations

import re
from typing import Any

import anyio
import anyio.abc
import pytest

import informer._leaderelection.elector as le_module
from informer import Conflict, ConnectionFailed, Forbidden
from informer._leaderelection.elector import LeaderElector
from informer._leaderelection.record import micro_time
from informer._leaderelection.timings import LeaseTimings
from informer._rest.request import request_json
from informer.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

LEASE = "test-lease"
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
FAST: dict[str, float] = {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.05}


def lease_path(namespace: str, name: str = LEASE) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"


async def get_lease(api: Any, namespace: str, name: str = LEASE) -> dict[str, Any]:
    return await request_json(api, "GET", lease_path(namespace, name))


class Running:
    """An elector's ``run`` in its own cancel scope: stop one elector, keep the others."""

    def __init__(self, elector: LeaderElector) -> None:
        self.elector = elector
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.returned = False
        self.error: BaseException | None = None

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with self.scope:
            try:
                await self.elector.run(task_status=task_status)
                self.returned = True
            except Exception as exc:
                self.error = exc
        self.done.set()

    async def stop(self) -> None:
        self.scope.cancel()
        with anyio.fail_after(5):
            await self.done.wait()


class FakeClock:
    """An injected clock for the electors' expiry judgement; only the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Callbacks that record what they were told; ``started`` and ``stopped`` also go to
    ``timeline`` (shared by several candidates) as ``(identity, "started" | "stopped")``."""

    def __init__(self, identity: str = "", timeline: list[tuple[str, str]] | None = None) -> None:
        self.identity = identity
        self.timeline: list[tuple[str, str]] = [] if timeline is None else timeline
        self.started = anyio.Event()
        self.cancelled = False
        self.stopped = 0
        self.leaders: list[str] = []

    async def on_started_leading(self) -> None:
        self.timeline.append((self.identity, "started"))
        self.started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise

    def on_stopped_leading(self) -> None:
        self.stopped += 1
        self.timeline.append((self.identity, "stopped"))

    def on_new_leader(self, identity: str) -> None:
        self.leaders.append(identity)

    def kwargs(self) -> dict[str, Any]:
        return {
            "on_started_leading": self.on_started_leading,
            "on_stopped_leading": self.on_stopped_leading,
            "on_new_leader": self.on_new_leader,
        }


TIMING_FIELDS = frozenset({"lease_duration", "renew_deadline", "retry_period", "release_timeout"})


def elector(api: Any, namespace: str, identity: str, **kwargs: Any) -> LeaderElector:
    """An elector on ``LEASE`` with the FAST timings, overridden by timing ``kwargs``."""
    timings = {**FAST, **{k: kwargs.pop(k) for k in list(kwargs) if k in TIMING_FIELDS}}
    return LeaderElector(
        api,
        name=LEASE,
        namespace=namespace,
        identity=identity,
        timings=LeaseTimings(**timings),
        **kwargs,
    )


async def put_spec(api: Any, namespace: str, **spec: Any) -> dict[str, Any]:
    """Overwrite fields of the Lease spec as an outside writer (an admin PUT)."""
    lease = await get_lease(api, namespace)
    lease["spec"] = {**lease.get("spec", {}), **spec}
    return await request_json(api, "PUT", lease_path(namespace), body=lease)


async def create_lease(api: Any, namespace: str, **spec: Any) -> dict[str, Any]:
    return await request_json(
        api,
        "POST",
        f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases",
        body={"metadata": {"name": LEASE}, "spec": spec},
    )


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"identity": ""}, "identity"),
        ({"name": ""}, "name"),
        ({"namespace": ""}, "namespace"),
    ],
    ids=["identity", "name", "namespace"],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    """The timings' rules are LeaseTimings' (test_timings.py)."""
    options: dict[str, Any] = {"name": "l", "namespace": "ns", "identity": "me", **kwargs}
    with pytest.raises(ValueError, match=message):
        LeaderElector(None, **options)  # type: ignore[arg-type]


def test_timings_must_be_lease_timings() -> None:
    with pytest.raises(TypeError, match="timings must be a LeaseTimings"):
        LeaderElector(None, name="l", namespace="ns", identity="me", timings=15.0)  # type: ignore[arg-type]


def test_defaults() -> None:
    e = LeaderElector(None, name="l", namespace="ns", identity="me")  # type: ignore[arg-type]
    assert e.timings == LeaseTimings()
    assert not e.is_leader() and e.leader is None and e.observed_record == {}


def test_micro_time_is_rfc3339_with_microseconds() -> None:
    assert MICRO_TIME.match(micro_time())


# ------------------------------------------------------------------- acquire / renew / release


async def test_acquire_renew_release(api_client: Any, namespace: str) -> None:
    rec = Recorder()
    e = elector(api_client, namespace, "alpha", **rec.kwargs())
    async with anyio.create_task_group() as tg:
        r = Running(e)
        await tg.start(r.run)
        assert e.is_leader() and e.leader == "alpha"
        with anyio.fail_after(5):
            await rec.started.wait()
        assert rec.leaders == ["alpha"]
        first = (await get_lease(api_client, namespace))["spec"]
        assert first["holderIdentity"] == "alpha"
        assert first["leaseDurationSeconds"] == 3
        assert first["leaseTransitions"] == 0
        assert MICRO_TIME.match(first["acquireTime"]) and MICRO_TIME.match(first["renewTime"])

        async def renewed() -> bool:
            spec = (await get_lease(api_client, namespace))["spec"]
            return bool(spec["renewTime"] > first["renewTime"])

        await eventually(renewed, timeout=5.0, interval=0.02)
        spec = (await get_lease(api_client, namespace))["spec"]
        assert spec["acquireTime"] == first["acquireTime"]  # kept across renewals
        assert spec["holderIdentity"] == "alpha" and spec["leaseTransitions"] == 0
        assert e.check() is None

        await r.stop()
    assert not r.returned and r.error is None  # cancelled, not lost
    assert rec.cancelled and rec.stopped == 1 and not e.is_leader()
    released = (await get_lease(api_client, namespace))["spec"]
    assert released["holderIdentity"] == ""
    assert released["leaseDurationSeconds"] == 1
    assert released["leaseTransitions"] == 0
    assert released["renewTime"] > spec["renewTime"]


async def test_release_lets_a_follower_take_over_at_once(api_client: Any, namespace: str) -> None:
    """beta's clock stands still, so alpha's lease never expires in beta's eyes: only
    alpha's release can let beta in, and beta takes over after alpha stopped."""
    slow = {"lease_duration": 30.0, "renew_deadline": 20.0, "retry_period": 0.1}
    timeline: list[tuple[str, str]] = []
    a_rec, b_rec = Recorder("alpha", timeline), Recorder("beta", timeline)
    a = elector(api_client, namespace, "alpha", **slow, **a_rec.kwargs())
    b = elector(api_client, namespace, "beta", **slow, clock=FakeClock(), **b_rec.kwargs())
    async with anyio.create_task_group() as tg:
        ra, rb = Running(a), Running(b)
        await tg.start(ra.run)
        await tg.start(rb.run)
        assert a.is_leader() and not b.is_leader() and b.leader == "alpha"
        assert b_rec.leaders == ["alpha"]
        with anyio.fail_after(5):
            await a_rec.started.wait()
        await ra.stop()
        with anyio.fail_after(5):
            await b_rec.started.wait()
        assert timeline == [("alpha", "started"), ("alpha", "stopped"), ("beta", "started")]
        assert b.is_leader() and not a.is_leader()
        spec = (await get_lease(api_client, namespace))["spec"]
        assert spec["holderIdentity"] == "beta" and spec["leaseTransitions"] == 1
        assert spec["leaseDurationSeconds"] == 30
        assert b_rec.leaders == ["alpha", "beta"] and a_rec.leaders == ["alpha"]
        await rb.stop()


async def test_release_on_cancel_false_keeps_the_lease(api_client: Any, namespace: str) -> None:
    e = elector(api_client, namespace, "alpha", release_on_cancel=False)
    async with anyio.create_task_group() as tg:
        r = Running(e)
        await tg.start(r.run)
        assert e.is_leader()
        await r.stop()
    spec = (await get_lease(api_client, namespace))["spec"]
    assert spec["holderIdentity"] == "alpha" and spec["leaseDurationSeconds"] == 3
    assert not e.is_leader()


async def test_work_error_propagates_and_releases(api_client: Any, namespace: str) -> None:
    stopped: list[bool] = []

    async def boom() -> None:
        raise RuntimeError("reconciler bug")

    e = elector(
        api_client,
        namespace,
        "alpha",
        on_started_leading=boom,
        on_stopped_leading=lambda: stopped.append(True),
    )
    with anyio.fail_after(5), pytest.raises(RuntimeError, match="reconciler bug"):
        await e.run()
    assert stopped == [True] and not e.is_leader()
    assert (await get_lease(api_client, namespace))["spec"]["holderIdentity"] == ""


async def test_runs_only_once(api_client: Any, namespace: str) -> None:
    e = elector(api_client, namespace, "alpha")
    async with anyio.create_task_group() as tg:
        r = Running(e)
        await tg.start(r.run)
        with pytest.raises(RuntimeError, match="already ran"):
            await e.run()
        await r.stop()


# ---------------------------------------------------------------------------- conflicts


async def test_electors_racing_for_one_lease(api_client: Any, namespace: str) -> None:
    """Five candidates start at once (racing to create, then to update): one leads.

    They share an injected clock. Each round moves it by 2.5 s, less than the 3 s lease,
    then waits until the leader renewed and every follower read the renewed record: so
    after three rounds (7.5 s) the followers stay out only because they saw the renewals,
    and nobody ever sees another holder or starts leading."""
    clock = FakeClock()
    timeline: list[tuple[str, str]] = []
    names = [f"candidate-{i}" for i in range(5)]
    recs = {n: Recorder(n, timeline) for n in names}
    electors = [elector(api_client, namespace, n, clock=clock, **recs[n].kwargs()) for n in names]
    runs = [Running(e) for e in electors]
    async with anyio.create_task_group() as tg:
        for r in runs:
            tg.start_soon(r.run)
        await eventually(
            lambda: sum(e.is_leader() for e in electors) == 1, timeout=5.0, interval=0.02
        )
        leader = next(e for e in electors if e.is_leader())
        followers = [e for e in electors if e is not leader]
        with anyio.fail_after(5):
            await recs[leader.identity].started.wait()
        for _ in range(3):
            clock.now += 2.5
            mark = str(leader.observed_record["renewTime"])

            def renewal_seen(mark: str = mark) -> bool:
                # MicroTimes of one writer order as strings do.
                return all(str(f.observed_record.get("renewTime", "")) > mark for f in followers)

            await eventually(renewal_seen, timeout=5.0, interval=0.02)
        assert timeline == [(leader.identity, "started")]
        assert all(recs[n].leaders == [leader.identity] for n in names)
        assert [e.is_leader() for e in electors] == [e is leader for e in electors]
        spec = (await get_lease(api_client, namespace))["spec"]
        assert spec["holderIdentity"] == leader.identity
        assert spec["leaseTransitions"] == 0
        # The leader goes away gracefully: exactly one successor, transitions + 1.
        await runs[electors.index(leader)].stop()
        await eventually(lambda: len(timeline) == 3, timeout=5.0, interval=0.02)
        successor_name = timeline[2][0]
        assert timeline == [
            (leader.identity, "started"),
            (leader.identity, "stopped"),
            (successor_name, "started"),
        ]
        assert successor_name != leader.identity
        assert [e.is_leader() for e in electors] == [e.identity == successor_name for e in electors]
        spec = (await get_lease(api_client, namespace))["spec"]
        assert spec["holderIdentity"] == successor_name and spec["leaseTransitions"] == 1
        for r in runs:
            await r.stop()
    assert all(r.error is None for r in runs)
    assert timeline[3:] == [(successor_name, "stopped")]


async def test_conflicting_update_loses_the_round(
    api_client: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between our read and our PUT another writer takes the Lease: our PUT gets a real
    409 and we do not lead, nor take it afterwards while the intruder's record is fresh
    (by our clock, which stands still); once our clock passes its 1 s lease, we do."""
    await create_lease(api_client, namespace, holderIdentity="", leaseDurationSeconds=1)
    conflicts: list[Conflict] = []
    reads = 0

    async def racing(api: Any, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        nonlocal reads
        if method == "PUT" and not conflicts:
            await put_spec(api_client, namespace, holderIdentity="intruder", renewTime=micro_time())
        reads += method == "GET"
        try:
            return await request_json(api, method, path, **kwargs)
        except Conflict as exc:
            conflicts.append(exc)
            raise

    monkeypatch.setattr(le_module, "request_json", racing)
    clock = FakeClock()
    rec = Recorder()
    e = elector(api_client, namespace, "beta", clock=clock, **rec.kwargs())
    async with anyio.create_task_group() as tg:
        r = Running(e)
        await tg.start(r.run)
        assert len(conflicts) == 1 and not e.is_leader()
        await eventually(lambda: e.leader == "intruder", timeout=5.0, interval=0.02)
        target = reads + 5
        await eventually(
            lambda: reads >= target, timeout=5.0, interval=0.02
        )  # five more attempts, all declined
        assert not e.is_leader() and not rec.started.is_set()
        assert (await get_lease(api_client, namespace))["spec"]["holderIdentity"] == "intruder"
        clock.now += 1.5
        with anyio.fail_after(5):
            await rec.started.wait()
        assert rec.leaders == ["intruder", "beta"] and len(conflicts) == 1
        await r.stop()
    spec = (await get_lease(api_client, namespace))["spec"]
    assert spec["holderIdentity"] == ""  # released by beta
    assert spec["leaseTransitions"] == 1


async def test_leader_survives_a_stale_resource_version(api_client: Any, namespace: str) -> None:
    """Someone else touches the Lease's metadata: the leader's optimistic PUT gets 409,
    the slow path re-reads, sees itself as the holder and renews."""
    e = elector(api_client, namespace, "alpha")
    async with anyio.create_task_group() as tg:
        r = Running(e)
        await tg.start(r.run)
        lease = await get_lease(api_client, namespace)
        lease["metadata"].setdefault("labels", {})["touched"] = "yes"
        touched = await request_json(api_client, "PUT", lease_path(namespace), body=lease)

        async def renewed_after_touch() -> bool:
            now = await get_lease(api_client, namespace)
            return bool(now["spec"]["renewTime"] > touched["spec"]["renewTime"])

        await eventually(renewed_after_touch, timeout=5.0, interval=0.02)
        now = await get_lease(api_client, namespace)
        assert now["spec"]["holderIdentity"] == "alpha" and e.is_leader()
        assert now["metadata"]["labels"] == {"touched": "yes"}
        await r.stop()


# ----------------------------------------------------------- expiry by local observation


async def test_expiry_is_judged_by_local_observation_time(
    api_client: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder's renewTime says 2000: a follower still waits lease_duration of its
    own clock from the moment it saw the record (last) change."""
    old = "2000-01-01T00:00:00.000000Z"
    await create_lease(
        api_client,
        namespace,
        holderIdentity="old-holder",
        leaseDurationSeconds=10,
        acquireTime=old,
        renewTime=old,
        leaseTransitions=4,
    )
    reads = 0

    async def counting(api: Any, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        nonlocal reads
        answer = await request_json(api, method, path, **kwargs)
        if method == "GET":
            reads += 1
        return answer

    async def attempts(n: int) -> None:
        """Let the elector read the Lease ``n`` more times."""
        target = reads + n
        await eventually(lambda: reads >= target, timeout=5.0, interval=0.02)

    monkeypatch.setattr(le_module, "request_json", counting)
    clock = FakeClock()
    rec = Recorder()
    e = elector(
        api_client,
        namespace,
        "beta",
        lease_duration=10.0,
        renew_deadline=5.0,
        retry_period=0.02,
        clock=clock,
        **rec.kwargs(),
    )
    async with anyio.create_task_group() as tg:
        r = Running(e)
        await tg.start(r.run)  # first observation at t=1000
        assert not e.is_leader() and e.leader == "old-holder"
        assert rec.leaders == ["old-holder"]
        clock.now = 1009.0
        await attempts(3)
        assert not e.is_leader()
        # The holder renews (its record changes) at t=1009: the 10 s start again.
        await put_spec(api_client, namespace, renewTime=micro_time())
        await attempts(3)
        clock.now = 1015.0  # 15 s after the first sight, 6 s after the change
        await attempts(3)
        assert not e.is_leader()
        clock.now = 1019.5  # 10.5 s after the last change: expired
        await eventually(e.is_leader, timeout=5.0, interval=0.02)
        spec = (await get_lease(api_client, namespace))["spec"]
        assert spec["holderIdentity"] == "beta"
        assert spec["leaseTransitions"] == 5
        assert spec["acquireTime"] != old and spec["leaseDurationSeconds"] == 10
        assert rec.leaders == ["old-holder", "beta"]
        # Health: a leader whose record was not renewed for too long is reported.
        assert e.check() is None
        clock.now += 10.0 + 20.0 + 1.0
        problem = e.check()
        assert problem is not None and "not renewed" in problem
        await r.stop()


# ------------------------------------------------------------------------------- losing


async def test_leadership_is_lost_when_renewals_fail_past_the_deadline(
    api_client: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken_at: float | None = None
    failed_attempts: list[float] = []  # event-loop time of each failed read

    async def flaky(api: Any, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if broken_at is not None:
            if method == "GET":  # every failing attempt ends with exactly one read
                failed_attempts.append(anyio.current_time())
            raise ConnectionFailed("cannot reach the API server (test)", address="x")
        return await request_json(api, method, path, **kwargs)

    monkeypatch.setattr(le_module, "request_json", flaky)
    rec = Recorder()
    lost_at: list[float] = []

    def on_stopped_leading() -> None:
        lost_at.append(anyio.current_time())
        rec.on_stopped_leading()

    timings = {"lease_duration": 5.0, "renew_deadline": 1.0, "retry_period": 0.1}
    e = elector(
        api_client,
        namespace,
        "alpha",
        **timings,
        **{**rec.kwargs(), "on_stopped_leading": on_stopped_leading},
    )
    async with anyio.create_task_group() as tg:
        r = Running(e)
        await tg.start(r.run)
        with anyio.fail_after(5):
            await rec.started.wait()
        broken_at = anyio.current_time()
        with anyio.fail_after(10):
            await r.done.wait()
    assert r.returned and r.error is None  # run() returned: lost
    assert rec.cancelled and rec.stopped == 1 and not e.is_leader()
    assert e.lost_reason == "not renewed within the renew deadline (1s)"
    after = lost_at[0] - broken_at
    # Not before the deadline (exact): a round that began before the break renewed (its
    # first request was sent before it), so the failing round began after the break, and
    # a round ends unrenewed only once renew_deadline (less 1 ms) passed since it began.
    assert after >= timings["renew_deadline"] - 1e-3, after
    # It retried within the deadline. Margin: the second attempt is due retry_period
    # (0.1 s) after the first, 0.9 s before the deadline; only an event loop stalled for
    # 0.9 s would skip it.
    assert len(failed_attempts) >= 2, failed_attempts
    # The safety bound that renew_deadline < lease_duration exists for: the leader gave
    # up before a follower that saw its last renewal may take over. Margin: 5 - 1 - 0.1
    # = 3.9 s of scheduling delay beyond the deadline and the last retry period.
    assert after < timings["lease_duration"], after
    # No release was attempted on loss: the Lease still names the old leader.
    assert (await get_lease(api_client, namespace))["spec"]["holderIdentity"] == "alpha"


async def test_leadership_is_lost_at_once_when_another_holds_the_lease(
    api_client: Any, namespace: str
) -> None:
    rec = Recorder()
    slow = {"lease_duration": 30.0, "renew_deadline": 20.0, "retry_period": 0.05}
    e = elector(api_client, namespace, "alpha", **slow, **rec.kwargs())
    async with anyio.create_task_group() as tg:
        r = Running(e)
        await tg.start(r.run)
        await put_spec(api_client, namespace, holderIdentity="usurper", renewTime=micro_time())
        with anyio.fail_after(10):  # a bound only; lost_reason tells the cause
            await r.done.wait()
    # Lost on seeing the usurper, not at the (20 s) renew deadline.
    assert e.lost_reason == "the lease is held by usurper"
    assert r.returned and rec.cancelled and rec.stopped == 1
    assert rec.leaders == ["alpha", "usurper"] and e.leader == "usurper"
    assert (await get_lease(api_client, namespace))["spec"]["holderIdentity"] == "usurper"


async def test_forbidden_propagates(control_plane: Any, namespace: str) -> None:
    nobody = control_plane.user("nobody")
    async with nobody.api_client() as api:
        e = elector(api, namespace, "alpha")
        with anyio.fail_after(5), pytest.raises(Forbidden) as info:
            await e.run()
    assert f"cannot get leases.coordination.k8s.io in namespace '{namespace}'" in str(info.value)
