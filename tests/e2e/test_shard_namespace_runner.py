"""``python -m informer.run --shard --shard-by=namespace``: three replicas split the
namespaces, and with them the caches.

As ``test_shard_runner.py`` (same helpers): every replica logs the interval of each
reconcile, and whether its cache held the object; the namespaces a replica caches are
read from its ``shard.namespace_synced`` / ``shard.namespace_stopped`` log lines. The
replicas distribute every namespace of the cluster (no ``--namespace``); the assertions
look at this test's namespaces.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import pytest
from runner_harness import RunnerGroup, runner_group
from test_shard_runner import (
    LEASE_DURATION,
    RENEW_DEADLINE,
    RETRY_PERIOD,
    Replica,
    check_no_overlap,
    converged,
    create_configmaps,
    touch_forever,
    when,
)

from informer._rest.request import request_json
from informer._sharding.assignment import owner
from informer.resources import NAMESPACES

pytestmark = pytest.mark.anyio

GROUP = "ns-recorders"
PER_NAMESPACE = 4

CONTROLLER = '''
"""Logs the wall-clock interval of every reconcile, and whether the cache had the object."""
import signal
import time

import anyio
import structlog

from informer import Controller
from informer.resources import CONFIGMAPS

log = structlog.get_logger("user")


class NsRecorder(Controller):
    name = "ns-recorder"

    def setup(self) -> None:
        self.configmaps = self.watch(CONFIGMAPS)

    async def reconcile(self, key: str) -> None:
        start = time.time()
        found = self.configmaps.lister().get_by_key(key) is not None
        log.info("reconcile.begin", start=start, found=found)
        try:
            await anyio.sleep(0.05)
        finally:
            log.info("reconcile.end", start=start, end=time.time())
'''


def cached(replica: Replica) -> set[str]:
    """The namespaces ``replica`` caches (synced and not stopped since), from its logs."""
    out: set[str] = set()
    for e in replica.events:
        if e.get("event") == "shard.namespace_synced":
            out.add(str(e["namespace"]))
        elif e.get("event") == "shard.namespace_stopped":
            out.discard(str(e["namespace"]))
    return out


def share(ids: Sequence[str], namespaces: Sequence[str], identity: str) -> set[str]:
    return {ns for ns in namespaces if owner(ids, ns) == identity}


def namespace_group(
    controller: Path, kubeconfig: Path, lease_namespace: str, cwd: Path
) -> AbstractAsyncContextManager[RunnerGroup[Replica]]:
    """Replicas of the namespace recorder in shard group ``GROUP`` (not started yet)."""
    args = [
        str(controller),
        "--kubeconfig",
        str(kubeconfig),
        "--workers",
        "2",
        "--shard-by",
        "namespace",
        "--shard-group",
        GROUP,
        "--shard-lease-namespace",
        lease_namespace,
        "--shard-lease-duration",
        str(LEASE_DURATION),
        "--shard-renew-deadline",
        str(RENEW_DEADLINE),
        "--shard-retry-period",
        str(RETRY_PERIOD),
    ]
    return runner_group(args, cwd, replica=Replica)


async def make_namespace(api: Any, name: str) -> list[str]:
    await request_json(api, "POST", NAMESPACES.path(), body={"metadata": {"name": name}})
    return await create_configmaps(api, name, PER_NAMESPACE)


def owned_name(ids: Sequence[str], identity: str, prefix: str) -> str:
    """The first ``<prefix><n>`` that ``identity`` owns among ``ids``."""
    return next(f"{prefix}{n}" for n in range(1000) if owner(ids, f"{prefix}{n}") == identity)


async def covered(
    replicas: Sequence[Replica], ids: Sequence[str], namespaces: Sequence[str]
) -> None:
    """Until every replica caches exactly its share of ``namespaces`` (among them)."""
    for r in replicas:
        mine = share(ids, namespaces, r.identity)
        await r.wait_until(lambda r=r, mine=mine: cached(r) & set(namespaces) == mine, 30)


@pytest.mark.timeout(120)
async def test_replicas_cache_and_reconcile_only_their_namespaces(
    control_plane: Any, api_client: Any, namespace: str, tmp_path: Path
) -> None:
    namespaces = [f"{namespace}-n{i}" for i in range(6)]
    keys: list[str] = []
    for ns in namespaces:
        keys += await make_namespace(api_client, ns)
    ctl = tmp_path / "ns_recorder.py"
    ctl.write_text(CONTROLLER)
    async with namespace_group(ctl, control_plane.kubeconfig_path, namespace, tmp_path) as group:
        for _ in range(3):
            await group.start()
        await converged(group, 3)
        a, b, c = group.replicas
        ids = [r.identity for r in group.replicas]
        # Six random names leave a replica without one ~6% of the time; the checks below
        # need each to own one (a's move on SIGKILL, b's on SIGTERM): add what is missing.
        for r in group.replicas:
            if not share(ids, namespaces, r.identity):
                extra = owned_name(ids, r.identity, f"{namespace}-x")
                keys += await make_namespace(api_client, extra)
                namespaces.append(extra)
        await covered(group.replicas, ids, namespaces)
        sets = [cached(r) & set(namespaces) for r in group.replicas]
        assert set().union(*sets) == set(namespaces)
        assert sum(len(s) for s in sets) == len(namespaces), sets  # disjoint
        for r in group.replicas:  # every key of its namespaces, from a synced cache
            mine = {k for k in keys if k.split("/")[0] in share(ids, namespaces, r.identity)}
            await r.wait_until(lambda r=r, mine=mine: mine <= r.keys_since(0))
            ours = {k for k in r.keys_since(r.cleared_at()) if k.split("/")[0] in namespaces}
            assert ours <= mine
            assert all(e["found"] for e in r.event("reconcile.begin"))

        async with anyio.create_task_group() as touching:
            touching.start_soon(touch_forever, api_client, keys)

            # A namespace created later: cached and reconciled by its owner only.
            late = f"{namespace}-late"
            created = time.time()
            late_keys = await make_namespace(api_client, late)
            late_owner = next(r for r in group.replicas if owner(ids, late) == r.identity)
            await late_owner.wait_until(lambda: late in cached(late_owner))
            for k in late_keys:
                await late_owner.wait_until(lambda k=k: late_owner.started_after(k, created))
            for r in group.replicas:
                if r is not late_owner:
                    assert late not in cached(r)
                    assert not any(k.startswith(f"{late}/") for k in r.keys_since(0))
            namespaces.append(late)
            keys += late_keys

            # SIGKILL a: b and c take its namespaces (start their informers, sync, then
            # reconcile), once its lease expired.
            lost = share(ids, namespaces, a.identity)
            a.kill()
            await a.wait_exit()
            a.killed_at = killed = time.time()
            await converged(group, 2, within=LEASE_DURATION + 30)
            ids2 = [b.identity, c.identity]
            await covered([b, c], ids2, namespaces)
            for k in (k for k in keys if k.split("/")[0] in lost):
                new = b if owner(ids2, k.split("/")[0]) == b.identity else c
                await new.wait_until(lambda k=k, new=new: new.started_after(k, killed))
            moved = (
                max(
                    when(e)
                    for r in (b, c)
                    for e in r.event("shard.namespace_synced")
                    if e["namespace"] in lost
                )
                - killed
            )

            # SIGTERM b: it stops its units (controllers, then informers), releases its
            # Lease and exits 0; c caches every namespace without waiting for an expiry.
            b.send_signal(signal.SIGTERM)
            termed = time.time()
            assert await b.wait_exit(30) == 0, b.stderr
            names = [e.get("event") for e in b.events]
            assert names.index("shard.namespace_stopped") < names.index("shard.released")
            await converged(group, 1, within=LEASE_DURATION + 30)
            await covered([c], [c.identity], namespaces)
            taken = (
                max(
                    when(e)
                    for e in c.event("shard.namespace_synced")
                    if e["namespace"] in share(ids2, namespaces, b.identity)
                )
                - termed
            )
            touching.cancel_scope.cancel()
        for r in group.replicas:
            assert all(e["found"] for e in r.event("reconcile.begin")), r.name
        checked = check_no_overlap(group.replicas)
    print(
        f"\n{checked} reconciles over {len(namespaces)} namespaces, none overlapping; "
        f"{len(lost)} namespaces re-cached {moved:.2f}s after SIGKILL, {taken:.2f}s after "
        "SIGTERM"
    )
    assert taken < LEASE_DURATION, taken  # released: no expiry waited for
