"""``python -m bench.shard``: sharded runners (``--shard``) on the local control plane.

What it measures (issue 12), with a controller whose reconcile awaits 20 ms (I/O-bound),
one worker per replica and 1,000 ConfigMaps, each reconcile asking to be called again at
once (``Result(requeue_after=0.001)``), so every replica always has work:

- **throughput**: reconciles per second summed over 1, 2 and 3 replicas of one shard
  group, counted over a window that starts once every replica cleared the same view
  (target: >= 0.9 x N times one replica's);
- **rebalance after SIGKILL and after SIGTERM** (3 replicas): seconds from the signal
  until every survivor cleared the new view, and until every key of the stopped replica
  was reconciled by a survivor;
- **cache memory in namespace mode** (``--memory``, only this part): ConfigMaps of
  distinct content spread over ``--memory-namespaces`` namespaces; the RSS of one runner
  caching everything, and of each replica of groups of ``--memory-replicas``
  ``--shard-by=namespace`` replicas (1 and 3) once it synced its namespaces, minus the
  RSS of a runner caching nothing (same controller, an empty namespace): the cache's
  share, target ~1/N.

Each replica is ``python -m informer.run`` with JSON logs; figures come from the log
lines (wall clock: the replicas share the host's). Prints a Markdown table; ``--output``
appends it to a file. Timings are the runner's defaults unless ``--lease-duration`` etc.
are given. Not part of ``python -m bench`` (it needs several minutes and no peers).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import orjson
from anyio.streams.text import TextReceiveStream

from informer._rest.request import request_json
from informer._sharding.assignment import owner
from informer.testing import ControlPlane

RUN = [sys.executable, "-m", "informer.run"]
NAMESPACE = "bench-shard"

CONTROLLER = '''
"""Reconciles every ConfigMap over and over; each reconcile awaits 20 ms (I/O)."""
import time

import anyio
import structlog

from informer import Controller, Result
from informer.resources import CONFIGMAPS

log = structlog.get_logger("bench")


class Busy(Controller):
    name = "busy"

    def setup(self) -> None:
        self.watch(CONFIGMAPS)

    async def reconcile(self, key: str) -> Result:
        start = time.time()
        await anyio.sleep(0.02)
        log.info("r", start=start)
        return Result(requeue_after=0.001)
'''


def _when(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"])).timestamp()


class Replica:
    def __init__(self, process: anyio.abc.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.events: list[dict[str, Any]] = []

    async def pump(self) -> None:
        assert self.process.stderr is not None  # the runner logs there
        buffer = ""
        async for chunk in TextReceiveStream(self.process.stderr):
            buffer += chunk
            *lines, buffer = buffer.split("\n")
            for line in lines:
                if line.startswith("{"):
                    self.events.append(orjson.loads(line))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]

    def cleared(self) -> tuple[str, int, float] | None:
        last: tuple[str, int, float] | None = None
        for e in self.events:
            if e.get("event") == "shard.view_cleared":
                last = (str(e["view"]), int(e["members"]), _when(e))
            elif e.get("event") in ("shard.view_adopted", "shard.view_dropped"):
                last = None
        return last

    @property
    def identity(self) -> str:
        return str(self.named("shard.joined")[0]["identity"])

    def reconciles(self) -> list[tuple[str, float]]:
        return [(str(e["key"]), float(e["start"])) for e in self.named("r")]


class Bench:
    def __init__(self, tg: anyio.abc.TaskGroup, args: Sequence[str], cwd: Path) -> None:
        self.tg, self.args, self.cwd = tg, list(args), cwd
        self.replicas: list[Replica] = []

    async def start(self, group: str, extra: Sequence[str] = ()) -> Replica:
        return await self.start_plain(["--shard-group", group, *extra])

    async def start_plain(self, extra: Sequence[str]) -> Replica:
        """A runner with the bench's arguments and ``extra`` (no shard group of its own)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "KUBERN"))}
        env.update(HOME=str(self.cwd), PYTHONUNBUFFERED="1")
        process = await anyio.open_process(
            [*RUN, *self.args, *extra],
            cwd=self.cwd,
            env=env,
            stdout=(self.cwd / f"replica-{len(self.replicas)}.stdout").open("w"),
            stderr=subprocess.PIPE,
        )
        replica = Replica(process, f"replica-{len(self.replicas)}")
        self.replicas.append(replica)
        self.tg.start_soon(replica.pump)
        return replica

    async def converged(self, replicas: Sequence[Replica], within: float = 120.0) -> float:
        """Wait until every replica cleared the same view of ``len(replicas)`` members;
        return the wall-clock time of the last clear."""
        with anyio.fail_after(within):
            while True:
                views = [v for v in (r.cleared() for r in replicas) if v is not None]
                full = len(views) == len(replicas) and all(v[1] == len(views) for v in views)
                if full and len({v[0] for v in views}) == 1:
                    return max(v[2] for v in views)
                await anyio.sleep(0.1)

    async def stop(self, replicas: Sequence[Replica]) -> None:
        for r in replicas:
            if r.process.returncode is None:
                r.process.send_signal(signal.SIGTERM)
        for r in replicas:
            with anyio.move_on_after(15):
                await r.process.wait()
            if r.process.returncode is None:
                r.process.kill()
                await r.process.wait()


async def create_configmaps(api: Any, count: int) -> list[str]:
    await request_json(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": NAMESPACE}})
    limiter = anyio.Semaphore(32)

    async def create(i: int) -> None:
        async with limiter:
            await request_json(
                api,
                "POST",
                f"/api/v1/namespaces/{NAMESPACE}/configmaps",
                body={"metadata": {"name": f"cm-{i:04d}"}, "data": {"n": str(i)}},
            )

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(create, i)
    return [f"{NAMESPACE}/cm-{i:04d}" for i in range(count)]


async def throughput(bench: Bench, n: int, window: float) -> float:
    replicas = [await bench.start(f"bench-{n}") for _ in range(n)]
    try:
        await bench.converged(replicas)
        await anyio.sleep(2.0)  # past the gained keys' first pass
        t0 = time.time()
        await anyio.sleep(window)
        t1 = time.time()
        count = sum(1 for r in replicas for _, start in r.reconciles() if t0 <= start < t1)
        return count / (t1 - t0)
    finally:
        await bench.stop(replicas)


async def rebalance(bench: Bench, keys: Sequence[str], how: str) -> tuple[float, float, int]:
    """(seconds to the survivors' clear, seconds until every moved key was reconciled by
    a survivor, keys moved) after SIGKILL or SIGTERM of one of 3 replicas."""
    replicas = [await bench.start(f"bench-{how.lower()}") for _ in range(3)]
    try:
        await bench.converged(replicas)
        await anyio.sleep(3.0)
        victim, survivors = replicas[0], replicas[1:]
        members = [r.identity for r in replicas]
        share = {k for k in keys if owner(members, k) == victim.identity}
        t0 = time.time()
        if how == "SIGKILL":
            victim.process.kill()
        else:
            victim.process.send_signal(signal.SIGTERM)
        await victim.process.wait()
        cleared = await bench.converged(survivors)
        with anyio.fail_after(180):
            while True:
                done = {k for r in survivors for k, start in r.reconciles() if start > t0}
                if share <= done:
                    break
                await anyio.sleep(0.2)
        firsts = [
            min(start for r in survivors for k2, start in r.reconciles() if k2 == k and start > t0)
            for k in share
        ]
        return cleared - t0, max(firsts) - t0, len(share)
    finally:
        await bench.stop(replicas)


MEMORY_CONTROLLER = '''
"""Watches ConfigMaps; reconciles do nothing (the cache is what is measured)."""
from informer import Controller
from informer.resources import CONFIGMAPS


class Idle(Controller):
    name = "idle"

    def setup(self) -> None:
        self.watch(CONFIGMAPS)

    async def reconcile(self, key: str) -> None:
        return None
'''


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def create_spread(api: Any, namespaces: int, per: int, size: int) -> list[str]:
    """``per`` ConfigMaps of ``size`` bytes of distinct (random hex) data in each of
    ``namespaces`` new namespaces."""
    names = [f"bench-mem-{i:02d}" for i in range(namespaces)]
    limiter = anyio.Semaphore(16)

    async def create(ns: str, i: int) -> None:
        async with limiter:
            await request_json(
                api,
                "POST",
                f"/api/v1/namespaces/{ns}/configmaps",
                body={
                    "metadata": {"name": f"cm-{i:04d}"},
                    "data": {"blob": os.urandom(size // 2).hex()},
                },
            )

    for ns in [*names, "bench-empty"]:
        await request_json(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    async with anyio.create_task_group() as tg:
        for ns in names:
            for i in range(per):
                tg.start_soon(create, ns, i)
    return names


async def settled_rss(replica: Replica, settle: float) -> float:
    await anyio.sleep(settle)
    return rss_mib(replica.process.pid)


async def shard_rows(
    bench: Bench,
    namespaces: Sequence[str],
    n: int,
    settle: float,
    baseline: float,
    cache: float,
    overhead: list[float],
) -> list[str]:
    """One row per replica of ``n`` namespace-mode replicas, once each synced its share.
    With ``n == 1``, appends to ``overhead`` the MiB each cached namespace costs beyond
    its objects (the replica's RSS minus the unsharded one's, per namespace it caches:
    the bench's and the cluster's own), then that count."""
    shards = [await bench.start(f"bench-mem-{n}", ["--shard-by", "namespace"]) for _ in range(n)]
    try:
        await bench.converged(shards)
        ids = [r.identity for r in shards]
        with anyio.fail_after(180):
            for r in shards:
                mine = {ns for ns in namespaces if owner(ids, ns) == r.identity}
                while True:
                    synced = {str(e["namespace"]) for e in r.named("shard.namespace_synced")}
                    if mine <= synced:
                        break
                    if r.process.returncode is not None:
                        raise RuntimeError(f"{r.name} exited {r.process.returncode}")
                    await anyio.sleep(0.1)
        rows = []
        for i, r in enumerate(shards):
            rss = await settled_rss(r, settle if i == 0 else 0.0)
            count = sum(1 for ns in namespaces if owner(ids, ns) == r.identity)
            rows.append(
                f"| `--shard-by=namespace`, replica {i + 1} of {n} | {count} "
                f"| {count / len(namespaces):.2f} | {rss:.1f} MiB | {rss - baseline:.1f} MiB "
                f"| {(rss - baseline) / cache:.2f} |"
            )
            print(rows[-1], flush=True)
            if n == 1:
                # Every namespace of the cluster (the bench's, default, kube-*...).
                cached = {str(e["namespace"]) for e in r.named("shard.namespace_synced")}
                overhead.append((rss - baseline - cache) / len(cached))
                overhead.append(len(cached))
        return rows
    finally:
        await bench.stop(shards)


async def memory(
    bench: Bench, namespaces: Sequence[str], counts: Sequence[int], settle: float
) -> list[str]:
    """The RSS rows: baseline, one replica caching everything (no sharding), then
    namespace-mode groups of each size in ``counts``."""

    async def started(replica: Replica) -> None:
        with anyio.fail_after(180):
            while not replica.named("manager.started"):
                if replica.process.returncode is not None:
                    raise RuntimeError(f"{replica.name} exited {replica.process.returncode}")
                await anyio.sleep(0.1)

    base = await bench.start_plain(["--namespace", "bench-empty"])
    await started(base)
    baseline = await settled_rss(base, settle)
    await bench.stop([base])
    whole = await bench.start_plain([])
    await started(whole)
    everything = await settled_rss(whole, settle)
    await bench.stop([whole])
    print(f"baseline {baseline:.1f} MiB, one replica {everything:.1f} MiB", flush=True)
    cache = everything - baseline
    rows = [
        "| runner | bench namespaces cached | share | RSS after sync | minus baseline "
        "| vs one replica |",
        "|---|---|---|---|---|---|",
        f"| nothing cached (baseline) | 0 | - | {baseline:.1f} MiB | - | - |",
        f"| one replica, no sharding | {len(namespaces)} | 1.00 | {everything:.1f} MiB | "
        f"{cache:.1f} MiB | 1.00 |",
    ]
    overhead: list[float] = []
    for n in counts:
        rows += await shard_rows(bench, namespaces, n, settle, baseline, cache, overhead)
    if overhead:
        per, cached = overhead
        rows.append(
            f"\nFixed overhead per cached namespace (namespace mode, 1 of 1, minus the "
            f"unsharded replica, over the {cached:.0f} namespaces it caches): "
            f"**{per:.2f} MiB** (target <= 0.2 MiB: {'met' if per <= 0.2 else 'MISSED'})"
        )
    return rows


async def amain_memory(ns: argparse.Namespace) -> str:
    async with ControlPlane() as cp, cp.api_client() as api:
        names = await create_spread(api, ns.memory_namespaces, ns.memory_per, ns.memory_size)
        with tempfile.TemporaryDirectory() as tmp:
            controller = Path(tmp) / "idle.py"
            controller.write_text(textwrap.dedent(MEMORY_CONTROLLER))
            args = [
                str(controller),
                "--kubeconfig",
                str(cp.kubeconfig_path),
                "--workers",
                "1",
                "--shard-lease-namespace",
                "default",
                "--shard-lease-duration",
                str(ns.lease_duration),
                "--shard-renew-deadline",
                str(ns.renew_deadline),
                "--shard-retry-period",
                str(ns.retry_period),
                "--log-format",
                "json",
            ]
            async with anyio.create_task_group() as tg:
                rows = await memory(Bench(tg, args, Path(tmp)), names, ns.memory_replicas, 3.0)
                tg.cancel_scope.cancel()
    header = (
        f"{ns.memory_namespaces} namespaces x {ns.memory_per} ConfigMaps of "
        f"{ns.memory_size} bytes (distinct data); RSS (VmRSS) 3 s after the sync.\n\n"
    )
    return header + "\n".join(rows) + "\n"


async def amain(ns: argparse.Namespace) -> str:
    rows: list[str] = []
    async with ControlPlane() as cp, cp.api_client() as api:
        keys = await create_configmaps(api, ns.keys)
        with tempfile.TemporaryDirectory() as tmp:
            controller = Path(tmp) / "busy.py"
            controller.write_text(textwrap.dedent(CONTROLLER))
            args = [
                str(controller),
                "--kubeconfig",
                str(cp.kubeconfig_path),
                "--namespace",
                NAMESPACE,
                "--workers",
                "1",
                "--shard-lease-namespace",
                NAMESPACE,
                "--shard-lease-duration",
                str(ns.lease_duration),
                "--shard-renew-deadline",
                str(ns.renew_deadline),
                "--shard-retry-period",
                str(ns.retry_period),
                "--log-format",
                "json",
            ]
            async with anyio.create_task_group() as tg:
                bench = Bench(tg, args, Path(tmp))
                rates = {}
                for n in ns.replicas:
                    rates[n] = await throughput(bench, n, ns.window)
                    print(f"{n} replica(s): {rates[n]:.1f} reconciles/s", flush=True)
                one = rates.get(1)
                if rates:
                    rows.append("| replicas | reconciles/s | vs one replica | target |")
                    rows.append("|---|---|---|---|")
                for n, rate in rates.items():
                    ratio = f"{rate / one:.2f}x" if one else "-"
                    met = "met" if one and rate >= 0.9 * n * one else "MISSED"
                    rows.append(f"| {n} | {rate:.1f} | {ratio} | >= {0.9 * n:.1f}x: {met} |")
                if rates:
                    rows.append("")
                rows.append(
                    "| 3 replicas, one stopped by | keys moved | view cleared after | "
                    "every moved key reconciled after |"
                )
                rows.append("|---|---|---|---|")
                for how in ns.signals:
                    clear, done, moved = await rebalance(bench, keys, how)
                    print(f"{how}: cleared {clear:.2f}s, moved keys done {done:.2f}s", flush=True)
                    rows.append(f"| {how} | {moved} | {clear:.2f} s | {done:.2f} s |")
                tg.cancel_scope.cancel()
    header = (
        f"{ns.keys} ConfigMaps, reconcile = 20 ms sleep, 1 worker per replica; lease "
        f"{ns.lease_duration:g} s, renew deadline {ns.renew_deadline:g} s, retry "
        f"{ns.retry_period:g} s; throughput over {ns.window:g} s after every replica "
        "cleared the same view.\n\n"
    )
    return header + "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shard", description=__doc__)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--signals", nargs="*", default=["SIGTERM", "SIGKILL"])
    parser.add_argument("--lease-duration", type=float, default=15.0)
    parser.add_argument("--renew-deadline", type=float, default=10.0)
    parser.add_argument("--retry-period", type=float, default=2.0)
    parser.add_argument("--output", type=Path)
    parser.add_argument(
        "--memory", action="store_true", help="run only the namespace-mode memory part"
    )
    parser.add_argument("--memory-replicas", type=int, nargs="*", default=[1, 3])
    parser.add_argument("--memory-namespaces", type=int, default=60)
    parser.add_argument("--memory-per", type=int, default=60, help="ConfigMaps per namespace")
    parser.add_argument("--memory-size", type=int, default=16384, help="bytes of data each")
    ns = parser.parse_args(argv)
    table = anyio.run(amain_memory if ns.memory else amain, ns)
    print(table)
    if ns.output is not None:
        with ns.output.open("a") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
