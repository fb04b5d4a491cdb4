"""``python -m informer.run --leader-elect``: replicas as real processes on a real API server.

Three runners share one Lease with shortened timings (``--leader-election-*`` advanced
flags). Who leads is read from the Lease and from each process's JSON log lines
(``leader.acquired``, ``reconciled``...); waits are on those lines or on the API, bounded.
"""

from __future__ import annotations

import signal
import textwrap
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from runner_harness import Runner, RunnerGroup, run_cli, runner_group

from informer._rest.request import request_json
from informer.run import ExitCode, build_parser
from informer.run import runner as run_module

pytestmark = pytest.mark.anyio

LEASE_ID = "runner-test"
LEASE_DURATION = 4.0
RENEW_DEADLINE = 2.5
RETRY_PERIOD = 0.3
JITTERED_RETRY = RETRY_PERIOD * (1 + 1.2)


def timestamp(event: dict[str, Any]) -> datetime:
    """When the runner logged ``event`` (its own clock: no process start/exit latency)."""
    return datetime.fromisoformat(str(event["timestamp"]))


CONTROLLER = '''
"""Logs every ConfigMap it reconciles."""
import structlog

from informer import Controller
from informer.resources import CONFIGMAPS

log = structlog.get_logger("user")


class ConfigMapLogger(Controller):
    name = "cm-logger"

    def setup(self) -> None:
        self.watch(CONFIGMAPS)

    async def reconcile(self, key: str) -> None:
        log.info("reconciled")
'''


class Replica(Runner):
    """One ``python -m informer.run --leader-elect`` child and its JSON log lines."""

    @property
    def identity(self) -> str:
        for e in self.events:
            if e.get("event", "").startswith("leader.") and e.get("identity"):
                return str(e["identity"])
        raise AssertionError(f"{self.name} logged no leader.* line yet")

    def reconciled(self, key: str) -> bool:
        return any(e.get("event") == "reconciled" and e.get("key") == key for e in self.events)


def replica_args(controller: Path, kubeconfig: Path, namespace: str) -> list[str]:
    return [
        str(controller),
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        namespace,
        "--leader-elect",
        "--leader-election-namespace",
        namespace,
        "--leader-election-id",
        LEASE_ID,
        "--leader-election-lease-duration",
        str(LEASE_DURATION),
        "--leader-election-renew-deadline",
        str(RENEW_DEADLINE),
        "--leader-election-retry-period",
        str(RETRY_PERIOD),
    ]


@asynccontextmanager
async def replicas(
    args: Sequence[str], cwd: Path, count: int
) -> AsyncIterator[RunnerGroup[Replica]]:
    """``count`` runner processes; every one is killed and reaped on the way out."""
    async with runner_group(args, cwd, replica=Replica) as group:
        for _ in range(count):
            await group.start()
        yield group


async def lease_spec(api: Any, namespace: str) -> dict[str, Any]:
    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{LEASE_ID}"
    return dict((await request_json(api, "GET", path))["spec"])


async def create_configmap(api: Any, namespace: str, name: str) -> None:
    await request_json(
        api,
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        body={"metadata": {"name": name}, "data": {"k": "v"}},
    )


def controller_file(tmp_path: Path) -> Path:
    path = tmp_path / "cm_logger.py"
    path.write_text(textwrap.dedent(CONTROLLER))
    return path


# -------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--leader-election-renew-deadline", "20"],
            "--leader-election-lease-duration (15s) must be greater than "
            "--leader-election-renew-deadline (20s)",
        ),
        (
            ["--leader-election-retry-period", "9"],
            "--leader-election-renew-deadline (10s) must be greater than "
            "--leader-election-retry-period * 1.2",
        ),
    ],
    ids=["renew-ge-lease", "retry-too-long"],
)
def test_inconsistent_timings_are_usage_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    proc = run_cli(["--leader-elect", *args], tmp_path, timeout=30)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), proc.stderr


def test_election_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parse = build_parser().parse_args
    assert run_module._election_options(parse([])) is None
    monkeypatch.setattr(run_module, "SERVICE_ACCOUNT_NAMESPACE_FILE", str(tmp_path / "none"))
    election = run_module._election_options(parse(["--leader-elect"]))
    assert election is not None
    assert (election.name, election.namespace) == ("kube-informer", "default")
    assert (election.lease_duration, election.renew_deadline, election.retry_period) == (
        15.0,
        10.0,
        2.0,
    )
    host, _, suffix = election.identity.rpartition("_")
    assert host and len(suffix) == 36  # hostname_<uuid4>
    (tmp_path / "ns").write_text("operators\n")
    monkeypatch.setattr(run_module, "SERVICE_ACCOUNT_NAMESPACE_FILE", str(tmp_path / "ns"))
    election = run_module._election_options(parse(["--leader-elect"]))
    assert election is not None and election.namespace == "operators"
    other = run_module._election_options(parse(["--leader-elect"]))
    assert other is not None and other.identity != election.identity


# ------------------------------------------------------------------------------ replicas


@pytest.mark.timeout(60)
async def test_one_leader_failover_on_kill_and_handover_on_sigterm(
    control_plane: Any, api_client: Any, namespace: str, tmp_path: Path
) -> None:
    args = replica_args(controller_file(tmp_path), control_plane.kubeconfig_path, namespace)
    async with replicas(args, tmp_path, 3) as group:
        for r in group.replicas:  # every replica syncs its informers (warm caches on followers)
            await r.wait_until(lambda r=r: r.has("runner.started"))
        first = await group.first("leader.acquired", within=10)
        spec = await lease_spec(api_client, namespace)
        assert spec["holderIdentity"] == first.identity
        assert spec["leaseDurationSeconds"] == LEASE_DURATION
        followers = [r for r in group.replicas if r is not first]

        # Only the leader reconciles.
        await create_configmap(api_client, namespace, "one")
        await first.wait_until(lambda: first.reconciled(f"{namespace}/one"))
        for r in followers:
            await r.wait_until(lambda r=r: r.has("leader.observed"))
            assert not r.has("leader.acquired") and not r.has("controller.started")
            assert not r.event("reconciled"), r.name
        assert sum(r.has("leader.acquired") for r in group.replicas) == 1

        # SIGKILL the leader: a follower takes over once the lease expires.
        first.kill()
        t0 = anyio.current_time()
        # Generous wait (a loaded 2-core machine delays processes, never speeds them up):
        # the bound below is the safety property, the takeover time is printed.
        second = await group.first("leader.acquired", among=followers, within=LEASE_DURATION + 20)
        kill_takeover = anyio.current_time() - t0
        assert await first.wait_exit() == -signal.SIGKILL
        # Safety: nobody takes the Lease before it expires. Followers judge expiry from
        # when they last *saw* the record change (one of their jittered attempts, within
        # a jittered retry of the last renewal before the kill), so the takeover comes at
        # least a lease duration minus one jittered retry after the kill (0.5 s margin
        # for clock reads). Load only delays a takeover, so this cannot flake.
        assert kill_takeover > LEASE_DURATION - JITTERED_RETRY - 0.5, kill_takeover
        spec = await lease_spec(api_client, namespace)
        assert spec["holderIdentity"] == second.identity and spec["leaseTransitions"] == 1
        # The new leader works from its warm cache: the old key, and new events.
        await second.wait_until(lambda: second.reconciled(f"{namespace}/one"))
        await create_configmap(api_client, namespace, "two")
        await second.wait_until(lambda: second.reconciled(f"{namespace}/two"))
        third = next(r for r in followers if r is not second)
        assert not third.event("reconciled") and not third.has("leader.acquired")

        # SIGTERM the leader: it stops its controllers, releases, exits 0; the last
        # replica takes over at once instead of waiting for the lease to expire.
        second.send_signal(signal.SIGTERM)
        t1 = anyio.current_time()
        # Causality: the lease was renewed just before the signal, so a takeover within
        # a lease duration can only follow the release (without it, the takeover waits
        # for expiry, as after the SIGKILL above). A whole lease duration (4 s) of margin
        # against a jittered retry of 0.66 s covers a loaded machine.
        await third.wait_until(lambda: third.has("leader.acquired"), within=LEASE_DURATION)
        term_takeover = anyio.current_time() - t1
        assert await second.wait_exit(within=30) == 0, second.stderr
        assert second.has("leader.released") and second.stderr.strip() == ""
        names = [e.get("event") for e in second.events]
        assert names.index("controller.stopped") < names.index("leader.released")
        # The stop itself, timed inside the process (interpreter start-up and exit are not
        # part of the contract): under the runner's 5 s, with the drain capped at
        # lease - renew deadline = 1.5 s and the release at 1 s.
        stopping = timestamp(second.event("runner.stopping")[0])
        stopped = timestamp(second.event("runner.stopped")[0])
        assert (stopped - stopping).total_seconds() < 5, (stopping, stopped)
        spec = await lease_spec(api_client, namespace)
        assert spec["holderIdentity"] == third.identity and spec["leaseTransitions"] == 2
        await third.wait_until(lambda: third.reconciled(f"{namespace}/two"))

        third.send_signal(signal.SIGINT)
        assert await third.wait_exit(within=5) == 0, third.stderr
    print(f"takeover after SIGKILL: {kill_takeover:.2f}s, after SIGTERM: {term_takeover:.2f}s")


@pytest.mark.timeout(90)
async def test_leader_exits_non_zero_when_it_cannot_renew(tmp_path: Path) -> None:
    """The API server goes away for longer than the renew deadline: the leader stops its
    controllers and exits 10; the follower keeps waiting, and leads once the server is
    back (the dead leader's record is expired by then)."""
    from informer.testing import ControlPlane

    async with ControlPlane() as cp, cp.api_client() as api:
        namespace = "election"
        await request_json(
            api, "POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}}
        )
        args = replica_args(controller_file(tmp_path), cp.kubeconfig_path, namespace)
        async with replicas(args, tmp_path, 3) as group:
            leader = await group.first("leader.acquired", within=20)
            followers = [r for r in group.replicas if r is not leader]
            await create_configmap(api, namespace, "before")
            await leader.wait_until(lambda: leader.reconciled(f"{namespace}/before"))
            for r in followers:
                await r.wait_until(lambda r=r: r.has("leader.observed"))

            t0 = anyio.current_time()
            await cp.stop_apiserver()
            code = await leader.wait_exit(within=RENEW_DEADLINE + 30)
            elapsed = anyio.current_time() - t0
            assert code == ExitCode.LEADERSHIP_LOST, (code, leader.stderr)
            assert leader.stderr.startswith("error: leader election lost"), leader.stderr
            assert "Traceback" not in leader.stderr
            print(f"leader exited {elapsed:.2f}s after the API server was stopped")
            # Safety, timed inside the leader: its last successful renewal came before its
            # first failed attempt, and a follower can take over only a lease duration
            # after that renewal; the leader's controllers stopped before then.
            failed = timestamp(leader.event("leader.attempt_failed")[0])
            stopped = timestamp(leader.event("controller.stopped")[-1])
            assert (stopped - failed).total_seconds() < LEASE_DURATION, (failed, stopped)
            names = [e.get("event") for e in leader.events]
            lost = names.index("leader.lost")
            assert "controller.stopped" in names[lost:]
            assert "reconciled" not in names[lost:]  # stopped reconciling
            for r in followers:  # followers wait (and retry) while the server is away
                assert r.returncode is None and not r.has("leader.acquired")

            await cp.start_apiserver()
            follower = await group.first("leader.acquired", among=followers, within=20)
            spec = await lease_spec(api, namespace)
            assert spec["holderIdentity"] == follower.identity
            await follower.wait_until(lambda: follower.reconciled(f"{namespace}/before"))
            # A follower stops on SIGTERM at once, without touching the Lease.
            other = next(r for r in followers if r is not follower)
            other.send_signal(signal.SIGTERM)
            assert await other.wait_exit(within=5) == 0, other.stderr
            assert not other.has("leader.acquired") and not other.has("leader.released")
            assert not other.event("reconciled")
            follower.send_signal(signal.SIGTERM)
            assert await follower.wait_exit(within=5) == 0, follower.stderr
