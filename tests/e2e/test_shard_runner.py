"""``python -m informer.run --shard``: replicas as real processes on a real API server.

Every replica runs a controller that logs the wall-clock interval of each reconcile
(``reconcile.begin`` / ``reconcile.end``, with the key bound by the controller); the
replicas share the host's clock, so intervals of different processes compare. The
safety property checked after every scenario: for one key, no two reconciles (of any
replicas) overlap in time. ConfigMaps keep being touched during membership changes, so
events for moving keys reach every replica while the handoff runs.

Timings are shortened with the advanced flags; waits are on log lines or the API,
bounded; assertions are about causality (which log line came after which), with the
wall-clock windows only as generous outer bounds (a loaded machine delays processes,
never speeds them up).
"""

from __future__ import annotations

import math
import random
import signal
import textwrap
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from runner_harness import Runner, RunnerGroup, run_cli, runner_group

from informer._rest.request import request_json
from informer._sharding.assignment import owner, view_digest
from informer._sharding.records import lease_name
from informer.run import ExitCode

pytestmark = pytest.mark.anyio

GROUP = "recorders"
LEASE_DURATION = 4.0
RENEW_DEADLINE = 2.5
RETRY_PERIOD = 0.3

CONTROLLER = '''
"""Logs the wall-clock interval of every reconcile."""
import time

import anyio
import structlog

from informer import Controller
from informer.resources import CONFIGMAPS

log = structlog.get_logger("user")


class Recorder(Controller):
    name = "recorder"

    def setup(self) -> None:
        self.watch(CONFIGMAPS)

    async def reconcile(self, key: str) -> None:
        start = time.time()
        log.info("reconcile.begin", start=start)
        try:
            await anyio.sleep(0.05)
        finally:
            log.info("reconcile.end", start=start, end=time.time())
'''


def when(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"])).timestamp()


class Replica(Runner):
    killed_at: float | None = None

    @property
    def identity(self) -> str:
        for e in self.events:
            if e.get("event") == "shard.joined":
                return str(e["identity"])
        raise AssertionError(f"{self.name} has not joined yet")

    def cleared_view(self) -> tuple[str, int] | None:
        """The last view this replica cleared (digest, members), if it still works in it."""
        last: tuple[str, int] | None = None
        for e in self.events:
            if e.get("event") == "shard.view_cleared":
                last = (str(e["view"]), int(e["members"]))
            elif e.get("event") in ("shard.view_adopted", "shard.view_dropped"):
                last = None
        return last

    def intervals(self) -> list[tuple[str, float, float]]:
        """(key, start, end) of every reconcile; one cut by a SIGKILL ends at the kill."""
        ended = {(e["key"], e["start"]): float(e["end"]) for e in self.event("reconcile.end")}
        out = []
        for e in self.event("reconcile.begin"):
            end = ended.get((e["key"], e["start"]))
            if end is None:
                assert self.killed_at is not None or self.returncode is None, (
                    f"{self.name}: a reconcile of {e['key']} never ended"
                )
                end = self.killed_at if self.killed_at is not None else math.inf
            out.append((str(e["key"]), float(e["start"]), end))
        return out

    def cleared_at(self) -> float:
        """When this replica cleared its current view (the log line's timestamp)."""
        return when(self.event("shard.view_cleared")[-1])

    def keys_since(self, moment: float) -> set[str]:
        return {str(e["key"]) for e in self.event("reconcile.begin") if e["start"] > moment}

    def started_after(self, key: str, moment: float) -> bool:
        return any(
            e.get("key") == key and float(e["start"]) > moment
            for e in self.event("reconcile.begin")
        )


async def converged(group: RunnerGroup[Replica], count: int, within: float = 40.0) -> str:
    """Wait until every live replica cleared the same view of ``count`` members; its
    digest."""
    views: list[str] = []

    def one_view() -> bool:
        live = group.live()
        cleared = {r.cleared_view() for r in live}
        if len(live) != count or len(cleared) != 1:
            return False
        (view,) = cleared
        if view is None or view[1] != count:
            return False
        assert view[0] == view_digest([r.identity for r in live])
        views[:] = [view[0]]
        return True

    await group.wait_until(one_view, within, f"{count} live replicas clear one view")
    return views[0]


def check_no_overlap(replicas: Sequence[Replica]) -> int:
    """No two reconciles of one key overlap, across ``replicas``; returns how many
    reconciles were checked."""
    by_key: dict[str, list[tuple[float, float, str]]] = {}
    for r in replicas:
        for key, start, end in r.intervals():
            by_key.setdefault(key, []).append((start, end, r.name))
    total = 0
    for key, spans in by_key.items():
        spans.sort()
        total += len(spans)
        latest_end, who = -math.inf, ""
        for start, end, name in spans:
            assert start >= latest_end, (
                f"{key}: {name} started at {start:.6f} while {who} reconciled it "
                f"until {latest_end:.6f}"
            )
            if end > latest_end:
                latest_end, who = end, name
    return total


def shard_group(
    controller: Path, kubeconfig: Path, namespace: str, cwd: Path
) -> AbstractAsyncContextManager[RunnerGroup[Replica]]:
    """Replicas of the recorder in shard group ``GROUP`` (not started yet)."""
    args = [
        str(controller),
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        namespace,
        "--workers",
        "4",
        "--shard-group",
        GROUP,
        "--shard-lease-namespace",
        namespace,
        "--shard-lease-duration",
        str(LEASE_DURATION),
        "--shard-renew-deadline",
        str(RENEW_DEADLINE),
        "--shard-retry-period",
        str(RETRY_PERIOD),
    ]
    return runner_group(args, cwd, replica=Replica)


async def create_configmaps(api: Any, namespace: str, count: int) -> list[str]:
    names = [f"cm-{i:03d}" for i in range(count)]
    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(
                lambda name=name: request_json(
                    api,
                    "POST",
                    f"/api/v1/namespaces/{namespace}/configmaps",
                    body={"metadata": {"name": name}, "data": {"n": "0"}},
                )
            )
    return [f"{namespace}/{name}" for name in names]


async def touch_forever(api: Any, keys: Sequence[str], rate: float = 40.0) -> None:
    """Patch random ConfigMaps: events for every key keep arriving at every replica."""
    rng = random.Random(12)
    n = 0
    while True:
        n += 1
        ns, name = rng.choice(keys).split("/")
        await request_json(
            api,
            "PATCH",
            f"/api/v1/namespaces/{ns}/configmaps/{name}",
            body={"data": {"n": str(n)}},
        )
        await anyio.sleep(1 / rate)


def controller_file(tmp_path: Path) -> Path:
    path = tmp_path / "recorder.py"
    path.write_text(textwrap.dedent(CONTROLLER))
    return path


async def lease_holder(api: Any, namespace: str, identity: str) -> str:
    path = (
        f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{lease_name(GROUP, identity)}"
    )
    return str((await request_json(api, "GET", path))["spec"].get("holderIdentity") or "")


# ------------------------------------------------------------------------------ scenarios


@pytest.mark.timeout(150)
async def test_kill_and_sigterm_move_keys_without_overlap(
    control_plane: Any, api_client: Any, namespace: str, tmp_path: Path
) -> None:
    keys = await create_configmaps(api_client, namespace, 120)
    ctl = controller_file(tmp_path)
    async with shard_group(ctl, control_plane.kubeconfig_path, namespace, tmp_path) as group:
        for _ in range(3):
            await group.start()
        await converged(group, 3)
        a, b, c = group.replicas
        ids = [r.identity for r in group.replicas]
        shares = {r.name: {k for k in keys if owner(ids, k) == r.identity} for r in group.replicas}
        assert all(shares.values()), shares  # 120 keys over 3 members: everyone has some
        # Every key is reconciled; once the 3-member view cleared, by its owner only
        # (before that, replicas that started first worked in smaller views).
        for r in group.replicas:
            await r.wait_until(lambda r=r: all(r.started_after(k, 0) for k in shares[r.name]))
            assert r.keys_since(r.cleared_at()) <= shares[r.name]

        async with anyio.create_task_group() as touching:
            touching.start_soon(touch_forever, api_client, keys)

            # SIGKILL a: b and c take its keys once its lease expired (judged by their
            # clocks), never before.
            a.kill()
            await a.wait_exit()
            a.killed_at = killed = time.time()
            await converged(group, 2, within=LEASE_DURATION + 30)
            survivors = [b, c]
            ids2 = [b.identity, c.identity]
            for r in survivors:
                expired = [e for e in r.event("shard.member_expired") if e["member"] == a.identity]
                assert expired, f"{r.name} dropped {a.name} without judging its lease expired"
                # Its last renewal before the kill was seen at most one retry period (plus
                # a list's latency) before the kill: expiry comes a lease duration later.
                assert when(expired[0]) - killed > LEASE_DURATION - RETRY_PERIOD - 0.5
            for k in shares[a.name]:
                new = b if owner(ids2, k) == b.identity else c
                await new.wait_until(lambda k=k, new=new: new.started_after(k, killed))
            moved_after = (
                max(
                    min(
                        float(e["start"])
                        for e in r.event("reconcile.begin")
                        if e["key"] == k and float(e["start"]) > killed
                    )
                    for k in shares[a.name]
                    for r in survivors
                    if any(
                        e["key"] == k and float(e["start"]) > killed
                        for e in r.event("reconcile.begin")
                    )
                )
                - killed
            )
            # Liveness, generously bounded: expiry (lease duration after the last renewal
            # seen), one list (retry period), the drained round trip (two more), margin.
            assert moved_after < LEASE_DURATION + 3 * RETRY_PERIOD + 15, moved_after

            # SIGTERM b: it stops its controllers, releases its lease and exits 0; c takes
            # b's keys without waiting for an expiry.
            b.send_signal(signal.SIGTERM)
            termed = time.time()
            assert await b.wait_exit(30) == 0, b.stderr
            assert await lease_holder(api_client, namespace, b.identity) == ""
            names = [e.get("event") for e in b.events]
            assert names.index("controller.stopped") < names.index("shard.released")
            await converged(group, 1, within=LEASE_DURATION + 30)
            assert not [e for e in c.event("shard.member_expired") if e["member"] == b.identity]
            b_keys = [k for k in keys if owner(ids2, k) == b.identity]
            for k in b_keys:
                await c.wait_until(lambda k=k: c.started_after(k, termed))
            taken = (
                max(
                    min(
                        float(e["start"])
                        for e in c.event("reconcile.begin")
                        if e["key"] == k and float(e["start"]) > termed
                    )
                    for k in b_keys
                )
                - termed
            )
            touching.cancel_scope.cancel()
        checked = check_no_overlap(group.replicas)
        c.send_signal(signal.SIGINT)
        assert await c.wait_exit(30) == 0, c.stderr
    print(
        f"\n{checked} reconciles, none overlapping; keys moved {moved_after:.2f}s after "
        f"SIGKILL, {taken:.2f}s after SIGTERM"
    )
    # A released lease needs no expiry: the takeover after SIGTERM is faster than any
    # takeover by expiry could be.
    assert taken < LEASE_DURATION, taken


@pytest.mark.timeout(150)
async def test_a_fourth_replica_takes_about_a_quarter_of_the_keys(
    control_plane: Any, api_client: Any, namespace: str, tmp_path: Path
) -> None:
    keys = await create_configmaps(api_client, namespace, 200)
    ctl = controller_file(tmp_path)
    async with shard_group(ctl, control_plane.kubeconfig_path, namespace, tmp_path) as group:
        for _ in range(3):
            await group.start()
        await converged(group, 3)
        ids3 = [r.identity for r in group.replicas]
        async with anyio.create_task_group() as touching:
            touching.start_soon(touch_forever, api_client, keys)
            joined_at = time.time()
            d = await group.start()
            await converged(group, 4)
            ids4 = [*ids3, d.identity]
            moved = [k for k in keys if owner(ids3, k) != owner(ids4, k)]
            assert all(owner(ids4, k) == d.identity for k in moved)
            # Binomial(200, 1/4): mean 50, sd 6.1; 4 sd either way.
            assert 25 <= len(moved) <= 75, len(moved)
            for k in moved:
                await d.wait_until(lambda k=k: d.started_after(k, joined_at))
            # The joiner reconciles only its own keys, the others only theirs.
            assert {e["key"] for e in d.event("reconcile.begin")} <= set(moved)
            for r in group.replicas[:3]:
                mine = {k for k in keys if owner(ids4, k) == r.identity}
                assert r.keys_since(r.cleared_at()) <= mine
            touching.cancel_scope.cancel()
        checked = check_no_overlap(group.replicas)
    print(f"\n{len(moved)} of {len(keys)} keys moved to the 4th replica; {checked} reconciles")


# -------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--shard", "--leader-elect"],
            "--leader-elect and sharding (--shard, --shard-by, --shard-group) exclude each other",
        ),
        (
            ["--shard-group", "mine", "--leader-elect"],
            "--leader-elect and sharding",
        ),
        (
            ["--shard", "--shard-renew-deadline", "20"],
            "--shard-lease-duration (15s) must be greater than --shard-renew-deadline (20s)",
        ),
    ],
    ids=["shard-and-leader-elect", "group-and-leader-elect", "renew-ge-lease"],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_cli(args, tmp_path, timeout=30)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), proc.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], None),
        (["--shard"], ("cm-logger-recorder", "key", 15.0, 10.0, 2.0)),
        (["--shard-by", "key"], ("cm-logger-recorder", "key", 15.0, 10.0, 2.0)),
        (
            ["--shard-group", "g", "--shard-lease-duration", "6", "--shard-renew-deadline", "4"],
            ("g", "key", 6.0, 4.0, 2.0),
        ),
    ],
    ids=["off", "shard", "shard-by", "group-and-timings"],
)
def test_sharding_options(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    expected: tuple[str, str, float, float, float] | None,
) -> None:
    from informer import Controller
    from informer.run import build_parser
    from informer.run import runner as run_module

    class Recorder(Controller):
        name = "recorder"

    class Logger(Controller):
        name = "cm-logger"

    monkeypatch.setattr(run_module, "SERVICE_ACCOUNT_NAMESPACE_FILE", str(tmp_path / "none"))
    config = run_module._sharding_options(build_parser().parse_args(argv), [Recorder, Logger])
    if expected is None:
        assert config is None
        return
    assert config is not None
    got = (config.group, config.shard_by, config.lease_duration)
    assert (*got, config.renew_deadline, config.retry_period) == expected
    assert config.namespace == "default"


def test_a_lapsed_membership_exits_10() -> None:
    from informer import ShardMembershipLost
    from informer.run import exit_code

    assert exit_code(ShardMembershipLost("lost", lease="ns/l", identity="me")) == 10


@pytest.mark.anyio
@pytest.mark.timeout(120)
async def test_replicas_that_cannot_renew_stop_before_their_lease_expires(tmp_path: Path) -> None:
    """The API server goes away: every replica stops admitting keys at its renew
    deadline, stops its controllers within the drain grace, and exits 10, all before a
    lease duration has passed since its last renewal."""
    from informer.testing import ControlPlane

    async with ControlPlane() as cp, cp.api_client() as api:
        namespace = "sharded"
        await request_json(
            api, "POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}}
        )
        keys = await create_configmaps(api, namespace, 30)
        ctl = controller_file(tmp_path)
        async with shard_group(ctl, cp.kubeconfig_path, namespace, tmp_path) as group:
            for _ in range(2):
                await group.start()
            await converged(group, 2)
            for r in group.replicas:
                await r.wait_until(lambda r=r: bool(r.keys_since(0)))
            async with anyio.create_task_group() as touching:
                touching.start_soon(touch_forever, api, keys, 20.0)
                await anyio.sleep(0.5)
                touching.cancel_scope.cancel()
            await cp.stop_apiserver()
            for r in group.replicas:
                code = await r.wait_exit(RENEW_DEADLINE + 20)
                assert code == ExitCode.LEADERSHIP_LOST, (code, r.stderr)
                assert r.stderr.startswith("error: shard membership lost"), r.stderr
                assert "Traceback" not in r.stderr
                names = [e.get("event") for e in r.events]
                lapsed = names.index("shard.lapsed")
                assert "controller.stopped" in names[lapsed:]
                assert "reconcile.begin" not in names[lapsed:]
                # Timed inside the replica: its last renewal was sent before its first
                # failed request; the controllers stopped less than a lease duration
                # after that (renew deadline + drain grace = 2.5 + 0.75 s).
                failed = when(r.event("shard.request_failed")[0])
                stopped = when(r.event("controller.stopped")[-1])
                assert stopped - failed < LEASE_DURATION, (failed, stopped)
            check_no_overlap(group.replicas)
