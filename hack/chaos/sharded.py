"""The sharded soak (``python -m hack.chaos --sharded``): runner replicas in one shard
group (key mode) under the soak's faults, plus replica faults.

Topology: the control plane, the fault proxy and the writer are the soak's
(:mod:`hack.chaos.soak`); ``--replicas`` (3) processes of ``python -m informer.run
--shard`` reach the apiserver only through the proxies, and run :data:`RECORDER`, a
controller of the workload's ConfigMaps that logs (JSON, on stderr) every reconcile's
interval and the resourceVersion its cache held for the key, and every notification its
informer delivers (the replica's cache, replayed by the checker).

Faults: the proxy and apiserver faults of :mod:`hack.chaos.faults` (all but
token-rotation) and three of the replicas' own:

=================  ========================================================================
replica-kill       SIGKILL a replica, start a new one 1-3 s later (its keys move once the
                   killed replica's Lease expired)
replica-term       SIGTERM a replica (it drains, releases its Lease, exits 0), start a
                   new one
replica-join       a new replica joins (the keys spread over one more), then the oldest
                   leaves by SIGTERM: a rolling update
=================  ========================================================================

A replica that exits on its own (a lost membership: exit 10) is started again, as a
Deployment would; the restarts are reported. After each fault the writer pauses, the
canaries change, and three checks run, polled until they hold (``--recovery-timeout``):

- **caches**: every live replica's cache (its notifications, replayed) equals a fresh
  list of the ConfigMaps;
- **every change reconciled**: for every key a fresh list holds, the last reconcile of
  it (by any replica) saw that resourceVersion (deletions are counted, not required:
  see :func:`unreconciled`);
- **no overlap**: no two reconciles of one key, by any replicas, ever overlapped in
  time (a reconcile cut by a SIGKILL ends at the kill). Checked over the whole run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import orjson

from informer import request_json
from informer.resources import CONFIGMAPS
from informer.testing import ControlPlane, TcpProxy

from .checks import poll
from .fault_proxy import FaultProxy
from .faults import FAULTS, FaultEnv
from .report import FaultRecord
from .workload import NAMESPACES, Writer, setup_workload

__all__ = [
    "RECORDER",
    "REPLICA_FAULTS",
    "SHARDED_FAULTS",
    "Replica",
    "ShardedConfig",
    "cache_of",
    "missed_deletions",
    "overlaps",
    "run_sharded",
    "unreconciled",
]

GROUP = "chaos-recorders"
LEASE_NAMESPACE = NAMESPACES[0]

RECORDER = '''
"""Logs each reconcile's interval and what the cache held, and each notification."""
import random
import time

import anyio
import structlog

from informer import Controller, HandlerFuncs, meta_namespace_key
from informer.resources import CONFIGMAPS

log = structlog.get_logger("recorder")


def _rv(obj):
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta.get("resourceVersion") if meta else None


class Recorder(Controller):
    name = "recorder"

    def setup(self) -> None:
        self.configmaps = self.watch(CONFIGMAPS)

        def note(op, obj):
            log.info("cache.event", op=op, obj_key=meta_namespace_key(obj), rv=_rv(obj))

        self.configmaps.add_event_handler(
            HandlerFuncs(
                on_add=lambda obj: note("add", obj),
                on_update=lambda old, new: note("update", new),
                on_delete=lambda obj: note("delete", obj),
            )
        )

    async def reconcile(self, key: str) -> None:
        start = time.time()
        obj = self.configmaps.lister().get_by_key(key)
        log.info("reconcile.begin", start=start, seen=_rv(obj) if obj is not None else None)
        try:
            await anyio.sleep(random.uniform(0.005, 0.03))
        finally:
            log.info("reconcile.end", start=start, end=time.time())
'''


@dataclass(frozen=True)
class ShardedConfig:
    seed: int
    duration: float
    faults: tuple[str, ...]
    replicas: int = 3
    rate: float = 8.0
    recovery_timeout: float = 45.0
    lease_duration: float = 4.0
    renew_deadline: float = 2.5
    retry_period: float = 0.3
    sync_timeout: float = 90.0


# ----------------------------------------------------------------------------- replicas


def _when(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"])).timestamp()


class Replica:
    """One ``python -m informer.run --shard`` process and the JSON lines it logged."""

    def __init__(self, name: str, process: anyio.abc.Process) -> None:
        self.name = name
        self.process = process
        self.events: list[dict[str, Any]] = []
        self.killed_at: float | None = None
        self.stopping = False  # the soak asked it to stop (SIGTERM, SIGKILL)

    async def pump(self) -> None:
        assert self.process.stderr is not None  # the runner logs there
        buffered = b""
        async for chunk in self.process.stderr:
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                if line.startswith(b"{"):
                    with contextlib.suppress(orjson.JSONDecodeError):
                        self.events.append(orjson.loads(line))

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    def cleared_members(self) -> int | None:
        """Members of the view this replica last cleared, if it still works in it."""
        last: int | None = None
        for e in self.events:
            name = e.get("event")
            if name == "shard.view_cleared":
                last = int(e["members"])
            elif name in ("shard.view_adopted", "shard.view_dropped"):
                last = None
        return last


def cache_of(events: Iterable[dict[str, Any]]) -> dict[str, str]:
    """A replica's cache, ``key -> resourceVersion``, replayed from its ``cache.event``
    lines (adds and updates set, deletes remove)."""
    cache: dict[str, str] = {}
    for e in events:
        if e.get("event") != "cache.event":
            continue
        key = str(e["obj_key"])
        if e["op"] == "delete":
            cache.pop(key, None)
        else:
            cache[key] = str(e["rv"])
    return cache


def intervals(replica: Replica) -> list[tuple[str, float, float]]:
    """``(key, start, end)`` of every reconcile of ``replica``; one that never ended
    ends when the process did (a SIGKILL), or lasts while the replica runs (in flight)."""
    ended = {(e["key"], e["start"]): float(e["end"]) for e in replica.named("reconcile.end")}
    out = []
    for e in replica.named("reconcile.begin"):
        end = ended.get((e["key"], e["start"]))
        if end is None:
            end = replica.killed_at if replica.killed_at is not None else math.inf
        out.append((str(e["key"]), float(e["start"]), end))
    return out


def overlaps(spans: Iterable[tuple[str, str, float, float]]) -> list[str]:
    """Overlapping reconciles of one key: ``(replica, key, start, end)`` each."""
    by_key: dict[str, list[tuple[float, float, str]]] = {}
    for who, key, start, end in spans:
        by_key.setdefault(key, []).append((start, end, who))
    problems = []
    for key, found in by_key.items():
        found.sort()
        latest_end, holder = -math.inf, ""
        for start, end, who in found:
            if start < latest_end:
                problems.append(
                    f"{key}: {who} started at {start:.3f} while {holder} reconciled it "
                    f"until {latest_end:.3f}"
                )
            if end > latest_end:
                latest_end, holder = end, who
    return problems


def unreconciled(
    begins: Iterable[tuple[str, float, str | None]], truth: dict[str, str]
) -> list[str]:
    """Keys of ``truth`` whose last reconcile (``(key, start, seen rv)``, any replica)
    did not see the resourceVersion the server holds.

    A deleted key is not required to have a last reconcile that saw it gone: no
    informer delivers the deletion of an object it never cached (a replica started
    after it, client-go's as well), so a deletion made while its owner was being
    replaced can go unreconciled; :func:`missed_deletions` counts them."""
    last = _last_seen(begins)
    problems = []
    for key in sorted(truth):
        got = last.get(key)
        if got is None:
            problems.append(f"{key}: never reconciled (holds rv {truth[key]})")
        elif got[1] != truth[key]:
            problems.append(f"{key}: last reconcile saw rv {got[1]}, the server holds {truth[key]}")
    return problems


def missed_deletions(begins: Iterable[tuple[str, float, str | None]], truth: dict[str, str]) -> int:
    """Deleted keys (reconciled once, absent from ``truth``) whose last reconcile still
    saw an object."""
    return sum(
        1 for key, (_, seen) in _last_seen(begins).items() if key not in truth and seen is not None
    )


def _last_seen(
    begins: Iterable[tuple[str, float, str | None]],
) -> dict[str, tuple[float, str | None]]:
    last: dict[str, tuple[float, str | None]] = {}
    for key, start, seen in begins:
        if key not in last or start >= last[key][0]:
            last[key] = (start, seen)
    return last


class Group:
    """The replicas: started, stopped, restarted when they exit on their own."""

    def __init__(self, tg: anyio.abc.TaskGroup, argv: list[str], cwd: Path) -> None:
        self.tg, self.argv, self.cwd = tg, argv, cwd
        self.all: list[Replica] = []
        self.restarts = 0
        self.reported: set[str] = set()  # overlaps already reported

    def new_overlaps(self) -> list[str]:
        """Overlaps (:func:`overlaps`) not reported before."""
        found = [p for p in overlaps(self.spans()) if p not in self.reported]
        self.reported.update(found)
        return found

    @property
    def live(self) -> list[Replica]:
        return [r for r in self.all if r.alive and not r.stopping]

    async def start(self) -> Replica:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "KUBERN"))}
        env.update(PYTHONUNBUFFERED="1")
        name = f"replica-{len(self.all)}"
        process = await anyio.open_process(
            self.argv,
            cwd=self.cwd,
            env=env,
            stdout=(self.cwd / f"{name}.stdout").open("w"),
            stderr=subprocess.PIPE,
        )
        replica = Replica(name, process)
        self.all.append(replica)
        self.tg.start_soon(replica.pump)
        self.tg.start_soon(self._supervise, replica)
        return replica

    async def _supervise(self, replica: Replica) -> None:
        await replica.process.wait()
        if replica.killed_at is None:  # a reconcile that never ended, ended at the exit
            replica.killed_at = time.time()
        if not replica.stopping:  # exited on its own (a lost membership)
            self.restarts += 1
            await self.start()

    async def kill(self, replica: Replica) -> None:
        replica.stopping = True
        replica.killed_at = time.time()
        replica.process.send_signal(signal.SIGKILL)
        await replica.process.wait()

    async def term(self, replica: Replica, within: float = 30.0) -> int | None:
        replica.stopping = True
        replica.process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(within):
            return await replica.process.wait()
        await self.kill(replica)
        return None

    async def stop_all(self) -> None:
        for r in self.all:
            if r.alive:
                await self.term(r, within=15.0)

    def spans(self) -> list[tuple[str, str, float, float]]:
        return [(r.name, k, s, e) for r in self.all for k, s, e in intervals(r)]

    def begins(self) -> list[tuple[str, float, str | None]]:
        out = []
        for r in self.all:
            for e in r.named("reconcile.begin"):
                seen = e.get("seen")
                out.append((str(e["key"]), float(e["start"]), None if seen is None else str(seen)))
        return out

    async def converged(self, within: float) -> bool:
        """Every live replica cleared a view of as many members as there are live."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            live = self.live
            if live and all(r.cleared_members() == len(live) for r in live):
                return True
            await anyio.sleep(0.2)
        return False


# ------------------------------------------------------------------------------- faults


async def replica_kill(group: Group, rng: random.Random) -> str:
    victim = rng.choice(group.live)
    await group.kill(victim)
    pause = rng.uniform(1.0, 3.0)
    await anyio.sleep(pause)
    new = await group.start()
    return f"SIGKILL {victim.name}, {new.name} started {pause:.1f}s later"


async def replica_term(group: Group, rng: random.Random) -> str:
    victim = rng.choice(group.live)
    code = await group.term(victim)
    new = await group.start()
    return f"SIGTERM {victim.name} (exit {code}), {new.name} started"


async def replica_join(group: Group, rng: random.Random) -> str:
    new = await group.start()
    joined = "converged" if await group.converged(60.0) else "NOT converged"
    oldest = next(r for r in group.live if r is not new)
    code = await group.term(oldest)
    return f"{new.name} joined ({joined}), {oldest.name} left (exit {code})"


REPLICA_FAULTS: dict[str, Callable[[Group, random.Random], Any]] = {
    "replica-kill": replica_kill,
    "replica-term": replica_term,
    "replica-join": replica_join,
}
SHARDED_FAULTS: tuple[str, ...] = (
    *(name for name in FAULTS if name != "token-rotation"),
    *REPLICA_FAULTS,
)


# --------------------------------------------------------------------------------- soak


@dataclass
class ShardedResult:
    records: list[FaultRecord] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    reconciles: int = 0
    missed_deletions: int = 0
    replicas_started: int = 0
    restarts: int = 0
    writes: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and not any(r.failures for r in self.records)


def _kubeconfig(cp: ControlPlane, server: str, path: Path) -> Path:
    """The admin kubeconfig, pointed at ``server`` (the proxies)."""
    config = json.loads(cp.kubeconfig_path.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = server
    path.write_text(json.dumps(config))
    return path


async def _truth(admin: Any) -> dict[str, str]:
    truth: dict[str, str] = {}
    for ns in NAMESPACES:
        listed = await request_json(admin, "GET", CONFIGMAPS.path(namespace=ns))
        for obj in listed.get("items") or []:
            meta = obj["metadata"]
            truth[f"{meta['namespace']}/{meta['name']}"] = str(meta["resourceVersion"])
    return truth


async def check_replicas(group: Group, admin: Any) -> list[str]:
    """The caches and the last reconciles against a fresh list (see the module)."""
    truth = await _truth(admin)
    problems = []
    for r in group.live:
        cache = cache_of(r.events)
        if cache != truth:
            missing = sorted(set(truth) - set(cache))[:3]
            ghosts = sorted(set(cache) - set(truth))[:3]
            stale = sorted(k for k in set(cache) & set(truth) if cache[k] != truth[k])[:3]
            problems.append(f"{r.name} cache: missing {missing} ghosts {ghosts} stale {stale}")
    problems += unreconciled(group.begins(), truth)[:5]
    return problems


async def run_sharded(
    cfg: ShardedConfig, say: Callable[[str], None], workdir: Path
) -> ShardedResult:
    """Run the sharded soak; ``say`` receives progress lines. Never raises for a
    divergence (it is recorded); raises when the control plane cannot be driven."""
    from .soak import APISERVER_ARGS, _admin_files, _port

    result = ShardedResult()
    began = time.monotonic()
    rng = random.Random(f"{cfg.seed}/sharded")
    say(
        f"chaos --sharded: seed={cfg.seed} duration={cfg.duration:.0f}s "
        f"replicas={cfg.replicas} faults={','.join(cfg.faults)}"
    )
    async with ControlPlane(apiserver_args=APISERVER_ARGS) as cp, cp.api_client() as admin:
        await setup_workload(admin, random.Random(f"{cfg.seed}/setup"))
        ca, cert, key = _admin_files(cp)
        proxy = FaultProxy(
            upstream_port=_port(cp.host),
            serving_cert=cp.dir / "apiserver.crt",
            serving_key=cp.dir / "apiserver.key",
            ca_file=Path(ca),
            client_cert=Path(cert),
            client_key=Path(key),
        )
        async with proxy, TcpProxy("127.0.0.1", proxy.port) as tcp, anyio.create_task_group() as tg:
            controller = workdir / "recorder.py"
            controller.write_text(RECORDER)
            kubeconfig = _kubeconfig(cp, tcp.url, workdir / "kubeconfig.json")
            argv = [
                sys.executable, "-m", "informer.run", str(controller),
                "--kubeconfig", str(kubeconfig),
                *(a for ns in NAMESPACES for a in ("--namespace", ns)),
                "--workers", "2",
                "--shard", "--shard-group", GROUP,
                "--shard-lease-namespace", LEASE_NAMESPACE,
                "--shard-lease-duration", str(cfg.lease_duration),
                "--shard-renew-deadline", str(cfg.renew_deadline),
                "--shard-retry-period", str(cfg.retry_period),
                "--log-format", "json",
            ]  # fmt: skip
            group = Group(tg, argv, workdir)
            writer = Writer(admin, random.Random(f"{cfg.seed}/writer"), rate=cfg.rate)
            env = FaultEnv(
                cp=cp, tcp=tcp, proxy=proxy, writer=writer,
                rng=random.Random(f"{cfg.seed}/faults"), inactivity_timeout=3.0,
            )  # fmt: skip
            try:
                for _ in range(cfg.replicas):
                    await group.start()
                if not await group.converged(cfg.sync_timeout):
                    result.failures.append("the replicas never converged on one view")
                    return result
                _, problems = await poll(
                    lambda: check_replicas(group, admin),
                    since=time.monotonic(),
                    within=cfg.recovery_timeout,
                )
                if problems:
                    result.failures += [f"baseline: {p}" for p in problems]
                    return result
                say(f"{cfg.replicas} replicas converged and reconciled every key")
                tg.start_soon(writer.run, name="chaos writer")
                started = time.monotonic()
                bag: list[str] = []
                while time.monotonic() < started + cfg.duration:
                    writer.resume()
                    await anyio.sleep(rng.uniform(1.0, 3.0))
                    if not bag:
                        bag = list(cfg.faults)
                        rng.shuffle(bag)
                    name = bag.pop()
                    record = await _fault(name, group, env, admin, cfg, rng, started)
                    result.records.append(record)
                    _progress(say, record)
                await writer.pause()
            finally:
                result.failures += group.new_overlaps()
                with contextlib.suppress(Exception):  # only a count for the summary
                    truth = await _truth(admin)
                    result.missed_deletions = missed_deletions(group.begins(), truth)
                result.reconciles = len(group.spans())
                result.replicas_started = len(group.all)
                result.restarts = group.restarts
                result.writes = writer.stats.writes
                with anyio.CancelScope(shield=True):
                    await group.stop_all()
                tg.cancel_scope.cancel()
    result.elapsed = time.monotonic() - began
    return result


async def _fault(
    name: str,
    group: Group,
    env: FaultEnv,
    admin: Any,
    cfg: ShardedConfig,
    rng: random.Random,
    started: float,
) -> FaultRecord:
    began = time.monotonic()
    restarts = group.restarts
    if name in REPLICA_FAULTS:
        detail = await REPLICA_FAULTS[name](group, rng)
    else:
        detail = await FAULTS[name](env)
    ended = time.monotonic()
    await env.writer.pause()
    await env.writer.touch_canaries()
    record = FaultRecord(name, at=began - started, held=ended - began, detail=detail)
    record.recovery, problems = await poll(
        lambda: check_replicas(group, admin), since=ended, within=cfg.recovery_timeout
    )
    record.failures += [f"not converged after {cfg.recovery_timeout:.0f}s: {p}" for p in problems]
    record.controllers = (
        time.monotonic() - ended if await group.converged(cfg.recovery_timeout) else None
    )
    if record.controllers is None:
        record.failures.append("the live replicas did not clear one view")
    record.failures += group.new_overlaps()
    if group.restarts > restarts:
        record.evidence["restarts"] = group.restarts - restarts
    return record


def _progress(say: Callable[[str], None], r: FaultRecord) -> None:
    recovered = f"recovered in {r.recovery:.2f}s" if r.recovery is not None else "NOT recovered"
    line = f"[{r.at:6.1f}s] {r.name}: {r.detail}; {recovered}"
    if r.failures:
        line += "\n  FAILED: " + "\n  FAILED: ".join(r.failures[:5])
    say(line)


def summary(cfg: ShardedConfig, result: ShardedResult) -> str:
    verdict = "OK" if result.ok else "DIVERGED"
    return (
        f"chaos --sharded {verdict}: seed={cfg.seed}, {len(result.records)} faults, "
        f"{sum(1 for r in result.records if r.recovery is not None)} recoveries, "
        f"{sum(1 for r in result.records if r.failures)} failed, {result.reconciles} "
        f"reconciles checked for overlap, {result.writes} writes, {result.replicas_started} "
        f"replicas started ({result.restarts} restarts after exiting on their own), "
        f"{result.missed_deletions} deletions not reconciled (allowed: see unreconciled), "
        f"{result.elapsed:.0f}s in all"
    )


def select(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` restricted to the faults the sharded soak can inject."""
    return tuple(n for n in names if n in SHARDED_FAULTS)
