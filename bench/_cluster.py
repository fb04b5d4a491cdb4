"""Benchmarks 2-4 on the local control plane (``informer.testing.ControlPlane``).

- ``sync``: seconds from start to ``has_synced`` and peak RSS, per peer and data set.
- ``memory``: RSS added by the cache per object (after a GC and ``malloc_trim``; Go:
  after ``runtime.GC`` and ``FreeOSMemory``), with and without dropping managedFields.
- ``latency``: API write to ``reconcile(key)``, p50/p99, under a steady write load.

The control plane is started once per ``python -m bench`` run and the data sets are
created on first use (concurrent POSTs; through the Go peer when it is built, which is
several times faster than Python).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bench._config import Config
from bench._objects import configmap_spec, deployment_spec
from bench._proc import (
    InteractivePeer,
    PeerRun,
    clientgo_binary,
    missing_python_peer,
    python_peer,
    run_peer,
)
from bench._report import fmt_num, fmt_ratio, median, percentile, table

MB = 1 << 20


@dataclass(frozen=True)
class DataSet:
    key: str
    kind: str
    count: int

    @property
    def namespace(self) -> str:
        return f"bench-{self.key}"

    @property
    def label(self) -> str:
        noun = "ConfigMaps" if self.kind == "configmaps" else "Deployments"
        return f"{self.count:,} {noun}"


def datasets(cfg: Config) -> list[DataSet]:
    out = []
    for key, count in cfg.sync_sizes.items():
        kind = "deployments" if key.startswith("deploy") else "configmaps"
        out.append(DataSet(key, kind, count))
    return out


class Cluster:
    """One control plane for the run; data sets created on demand."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.cp: Any = None
        self.kubeconfig = Path()
        self._populated: set[str] = set()
        self.populate_seconds: dict[str, float] = {}

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Cluster]:
        from informer.testing import ControlPlane

        async with ControlPlane() as cp:
            self.cp = cp
            self.kubeconfig = cp.kubeconfig_path
            yield self

    async def ensure(self, ds: DataSet) -> None:
        if ds.key in self._populated:
            return
        print(f"  creating {ds.label} in namespace {ds.namespace} ...", flush=True)
        start = time.perf_counter()
        binary, _ = clientgo_binary(build=self.cfg.build_go)
        if binary is not None and self.cfg.wants("client-go"):
            run = await run_peer(
                [
                    str(binary),
                    "-mode",
                    "populate",
                    "-kubeconfig",
                    str(self.kubeconfig),
                    "-resource",
                    ds.kind,
                    "-namespace",
                    ds.namespace,
                    "-count",
                    str(ds.count),
                ],
                time_limit=3600,
            )
            if not run.ok or (run.result or {}).get("failures"):
                raise RuntimeError(f"populating {ds.label} failed: {run.error or run.result}")
        else:
            await self._populate_python(ds)
        self.populate_seconds[ds.key] = time.perf_counter() - start
        print(f"  created {ds.label} in {self.populate_seconds[ds.key]:.1f}s", flush=True)
        self._populated.add(ds.key)

    async def _populate_python(self, ds: DataSet) -> None:
        from informer import new_api_client
        from informer._kube import request_json

        api = await new_api_client(kubeconfig=str(self.kubeconfig))
        try:
            await request_json(
                api, "POST", "/api/v1/namespaces", body={"metadata": {"name": ds.namespace}}
            )
            if ds.kind == "configmaps":
                path = f"/api/v1/namespaces/{ds.namespace}/configmaps"
                make = configmap_spec
            else:
                path = f"/apis/apps/v1/namespaces/{ds.namespace}/deployments"
                make = deployment_spec
            next_i = 0

            async def worker() -> None:
                nonlocal next_i
                while next_i < ds.count:
                    i = next_i
                    next_i += 1
                    await request_json(api, "POST", path, body=make(i))

            async with anyio.create_task_group() as tg:
                for _ in range(32):
                    tg.start_soon(worker)
        finally:
            await api.close()


# --------------------------------------------------------------------------- sync


@dataclass(frozen=True)
class SyncClient:
    name: str
    peer: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


SYNC_CLIENTS = (
    SyncClient("kube-informer (list, GC on)", "ours"),
    SyncClient("kube-informer (list, --gc-freeze)", "ours", ("--gc", "freeze")),
    SyncClient(
        "kube-informer (watch-list, --gc-freeze)", "ours", ("--gc", "freeze", "--watch-list")
    ),
    SyncClient("client-go (watch-list, its default)", "client-go"),
    SyncClient("client-go (list)", "client-go", env=(("KUBE_FEATURE_WatchListClient", "false"),)),
    SyncClient("decode floor (aiohttp + orjson + dict)", "floor"),
    SyncClient("kubernetes_asyncio list (models)", "kubernetes_asyncio"),
    SyncClient("official kubernetes.informer", "official"),
    SyncClient("kopf @on.event", "kopf"),
)


async def sync_once(
    cluster: Cluster, ds: DataSet, client: SyncClient, cfg: Config, *, strip: bool = False
) -> PeerRun:
    kubeconfig = str(cluster.kubeconfig)
    if client.peer == "client-go":
        binary, why = clientgo_binary(build=cfg.build_go)
        if binary is None:
            return PeerRun(error=why)
        argv = [
            str(binary),
            "-mode",
            "sync",
            "-kubeconfig",
            kubeconfig,
            "-resource",
            ds.kind,
            "-namespace",
            ds.namespace,
            "-timeout",
            f"{cfg.timeout:.0f}s",
        ]
        if strip:
            argv.append("-strip-managed-fields")
    else:
        if missing := missing_python_peer(client.peer):
            return PeerRun(error=f"skipped: {missing}")
        if client.peer == "kopf" and ds.count > cfg.kopf_max_objects:
            return PeerRun(
                error=f"skipped: > {cfg.kopf_max_objects:,} objects (--kopf-max-objects)"
            )
        argv = python_peer(
            client.peer,
            "--mode",
            "sync",
            "--kubeconfig",
            kubeconfig,
            "--resource",
            ds.kind,
            "--namespace",
            ds.namespace,
            "--objects",
            str(ds.count),
            "--timeout",
            str(cfg.timeout),
            *client.args,
        )
        if strip:
            argv.append("--strip")
    return await run_peer(argv, time_limit=cfg.timeout + 30, env=dict(client.env))


def _med(runs: list[PeerRun], field: str) -> float | None:
    return median([r.result[field] for r in runs if r.result and field in r.result])


async def run_sync(cluster: Cluster, cfg: Config) -> str:
    rows: list[list[str]] = []
    notes: list[str] = []
    target_lines: list[str] = []
    clients = [c for c in SYNC_CLIENTS if cfg.wants(c.peer)]
    for ds in datasets(cfg):
        await cluster.ensure(ds)
        results: dict[str, list[PeerRun]] = {c.name: [] for c in clients}
        errors: dict[str, str] = {}
        for round_ in range(cfg.repeat):
            for c in clients:
                if c.name in errors:
                    continue
                run = await sync_once(cluster, ds, c, cfg)
                if run.ok:
                    results[c.name].append(run)
                else:
                    errors[c.name] = (run.error or "failed").splitlines()[-1][:100]
                secs = (run.result or {}).get("sync_seconds")
                print(
                    f"  sync {ds.label} round {round_ + 1}: {c.name}: "
                    f"{fmt_num(secs, 2, ' s') if secs else run.error}",
                    flush=True,
                )
        go_best = min(
            (
                v
                for v in (
                    _med(results.get(c.name, []), "sync_seconds")
                    for c in clients
                    if c.peer == "client-go"
                )
                if v is not None
            ),
            default=None,
        )
        ours_best = min(
            (
                v
                for v in (
                    _med(results.get(c.name, []), "sync_seconds")
                    for c in clients
                    if c.peer == "ours"
                )
                if v is not None
            ),
            default=None,
        )
        for c in clients:
            runs = results[c.name]
            secs = _med(runs, "sync_seconds")
            if secs is None:
                rows.append([ds.label, c.name, errors.get(c.name, "-"), "", "", "", ""])
                continue
            peak = _med(runs, "peak_rss")
            delta = median(
                [(r.result["rss_after"] - r.result["rss_before"]) for r in runs if r.result]
            )
            rows.append(
                [
                    ds.label,
                    c.name,
                    fmt_num(secs, 2),
                    fmt_num(ds.count / secs / 1000, 1, "k"),
                    fmt_ratio(secs, go_best),
                    fmt_num((peak or 0) / MB, 0),
                    fmt_num((delta or 0) / MB, 0),
                ]
            )
        if go_best and ours_best:
            ratio = ours_best / go_best
            verdict = "met" if ratio <= 1.5 else "MISSED"
            target_lines.append(
                f"- {ds.label}: best kube-informer {ours_best:.2f} s = {ratio:.2f}x the best "
                f"client-go {go_best:.2f} s (target <= 1.5x: {verdict})"
            )
    notes.append(
        f"Median of {cfg.repeat} run(s); each client in its own process against the same "
        "control plane (kube-apiserver + etcd on this machine, so the server's own work is "
        "part of every figure). 'vs client-go' = seconds / the faster client-go mode's "
        "(lower is better). Peak RSS is the process's; 'cache RSS' is the RSS added by the "
        "synced cache (after a GC). --gc-freeze: gc.disable() during the initial list, then "
        "gc.collect() + gc.freeze() (not counted: it runs after has_synced)."
    )
    notes.extend(target_lines)
    header = [
        "data set",
        "client",
        "seconds",
        "objects/s",
        "vs client-go",
        "peak RSS MB",
        "cache RSS MB",
    ]
    return table("Initial sync from the local control plane", header, rows, notes)


# --------------------------------------------------------------------------- memory


async def run_memory(cluster: Cluster, cfg: Config) -> str:
    ds = next((d for d in datasets(cfg) if d.kind == "deployments"), None)
    if ds is None:
        return "memory: no Deployments data set configured\n"
    await cluster.ensure(ds)
    variants = [
        ("kube-informer", SyncClient("ours", "ours"), False),
        ("kube-informer", SyncClient("ours", "ours"), True),
        (
            "kube-informer, watch-list",
            SyncClient("ours", "ours", ("--watch-list",)),
            True,
        ),
        ("client-go", SyncClient("client-go", "client-go"), False),
        ("client-go", SyncClient("client-go", "client-go"), True),
        ("decode floor (dicts)", SyncClient("floor", "floor"), False),
        (
            "kubernetes_asyncio (models)",
            SyncClient("kubernetes_asyncio", "kubernetes_asyncio"),
            False,
        ),
    ]
    per: dict[tuple[str, bool], list[float]] = {}
    heap: dict[tuple[str, bool], list[float]] = {}
    errors: dict[tuple[str, bool], str] = {}
    for round_ in range(cfg.repeat):
        for name, client, strip in variants:
            if not cfg.wants(client.peer) or (name, strip) in errors:
                continue
            run = await sync_once(cluster, ds, client, cfg, strip=strip)
            if not run.ok or run.result is None:
                errors[(name, strip)] = (run.error or "failed").splitlines()[-1][:100]
                continue
            r = run.result
            objects = max(1, r["objects"])
            per.setdefault((name, strip), []).append((r["rss_after"] - r["rss_before"]) / objects)
            if "heap_after" in r:
                heap.setdefault((name, strip), []).append(
                    (r["heap_after"] - r["heap_before"]) / objects
                )
            print(
                f"  memory round {round_ + 1}: {name} strip={strip}: "
                f"{per[(name, strip)][-1] / 1024:.2f} KB/object",
                flush=True,
            )
    rows = []
    lines = []
    for name, client, strip in variants:
        if not cfg.wants(client.peer):
            continue
        v = median(per.get((name, strip), []))
        if v is None:
            rows.append([name, "on" if strip else "off", errors.get((name, strip), "-"), "", ""])
            continue
        go = median(per.get(("client-go", strip), []))
        h = median(heap.get((name, strip), []))
        rows.append(
            [
                name,
                "on" if strip else "off",
                fmt_num(v / 1024, 2),
                "" if name == "client-go" else fmt_ratio(v, go),
                fmt_num(h / 1024, 2) if h is not None else "",
            ]
        )
        if name.startswith("kube-informer") and strip and go:
            verdict = "met" if v / go <= 2 else "MISSED"
            lines.append(
                f"- with the transform, {name}: {v / 1024:.2f} KB = {v / go:.2f}x "
                f"client-go {go / 1024:.2f} KB per object (target <= 2x: {verdict})"
            )
    notes = [
        f"{ds.label} from the control plane (each with one managedFields entry, no status: "
        "nothing runs the Deployment controller). Per object = (RSS after sync - RSS before "
        f"start) / objects, after a full GC and malloc_trim (Go: runtime.GC + FreeOSMemory); "
        f"median of {cfg.repeat}. 'transform' drops metadata.managedFields "
        "(informer.strip_managed_fields / client-go SetTransform). Go heap = HeapAlloc delta.",
        *lines,
    ]
    header = ["client", "transform", "KB/object (RSS)", "vs client-go", "Go heap KB/object"]
    return table("Memory per cached object", header, rows, notes)


# --------------------------------------------------------------------------- latency

LATENCY_KEYS = 50


async def run_latency(cluster: Cluster, cfg: Config) -> str:
    from informer import new_api_client
    from informer._kube import request_json

    namespace = "bench-latency"
    api = await new_api_client(kubeconfig=str(cluster.kubeconfig))
    rows = []
    notes: list[str] = []
    try:
        if "latency" not in cluster._populated:
            await request_json(
                api, "POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}}
            )
            for i in range(LATENCY_KEYS):
                await request_json(
                    api,
                    "POST",
                    f"/api/v1/namespaces/{namespace}/configmaps",
                    body={"metadata": {"name": f"lat-{i:03d}"}, "data": {"t": "0"}},
                )
            cluster._populated.add("latency")
        peers: list[tuple[str, list[str]]] = []
        binary, why = clientgo_binary(build=cfg.build_go)
        kc = str(cluster.kubeconfig)
        candidates: list[tuple[str, str, list[str] | None, str]] = [
            (
                "kube-informer Controller",
                "ours",
                python_peer(
                    "ours", "--mode", "latency", "--kubeconfig", kc, "--namespace", namespace
                ),
                "",
            ),
            (
                "client-go informer + workqueue",
                "client-go",
                [str(binary), "-mode", "latency", "-kubeconfig", kc, "-namespace", namespace]
                if binary
                else None,
                why,
            ),
            (
                "kopf @on.event",
                "kopf",
                python_peer(
                    "kopf",
                    "--mode",
                    "latency",
                    "--kubeconfig",
                    kc,
                    "--namespace",
                    namespace,
                    "--objects",
                    str(LATENCY_KEYS),
                ),
                "",
            ),
        ]
        results: dict[str, list[float]] = {}
        writes: dict[str, int] = {}
        errors: dict[str, str] = {}
        for name, peer, argv, why in candidates:
            if not cfg.wants(peer):
                continue
            if argv is None:
                errors[name] = why
                continue
            if peer != "client-go" and (missing := missing_python_peer(peer)):
                errors[name] = f"skipped: {missing}"
                continue
            peers.append((name, argv))
        for name, argv in peers:
            proc = InteractivePeer(argv)
            try:
                await proc.start(time_limit=cfg.latency_peers_timeout)
                writes[name] = await _write_load(
                    api, namespace, cfg.latency_rate, cfg.latency_seconds
                )
                await anyio.sleep(2.0)
                result = await proc.stop(time_limit=30)
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"[:100]
                await proc.kill()
                continue
            if result is None:
                errors[name] = "no result"
                continue
            results[name] = result["latencies_ms"]
            print(
                f"  latency: {name}: {len(results[name])} reconciles, p50 "
                f"{fmt_num(percentile(results[name], 50), 1)} ms",
                flush=True,
            )
        go = results.get("client-go informer + workqueue")
        go50, go99 = (percentile(go, 50), percentile(go, 99)) if go else (None, None)
        for name, _ in peers:
            lat = results.get(name)
            if lat is None:
                rows.append([name, errors.get(name, "-"), "", "", "", "", "", ""])
                continue
            p50, p99 = percentile(lat, 50), percentile(lat, 99)
            rows.append(
                [
                    name,
                    str(writes.get(name, 0)),
                    str(len(lat)),
                    fmt_num(p50, 1),
                    fmt_num(p99, 1),
                    fmt_num(lat[-1] if lat else None, 1),
                    "" if name.startswith("client-go") else fmt_ratio(p50, go50),
                    "" if name.startswith("client-go") else fmt_ratio(p99, go99),
                ]
            )
        for name, why in errors.items():
            if name not in {n for n, _ in peers}:
                rows.append([name, why, "", "", "", "", "", ""])
    finally:
        await api.close()
    notes.append(
        f"{cfg.latency_rate:g} merge-patches/s for {cfg.latency_seconds:g} s over "
        f"{LATENCY_KEYS} ConfigMaps; each write stores its send time (unix ns) in "
        "data.t and reconcile(key) reads the object from the cache: latency = reconcile "
        "time - send time (API server + etcd + watch + client). Peers run one after the "
        "other; kopf batches an object's events for 0.1 s (settings.batching.batch_window)."
    )
    header = [
        "client",
        "writes",
        "reconciles",
        "p50 ms",
        "p99 ms",
        "max ms",
        "p50 vs client-go",
        "p99 vs client-go",
    ]
    return table("Reconcile latency (API write -> reconcile(key))", header, rows, notes)


async def _write_load(api: Any, namespace: str, rate: float, seconds: float) -> int:
    from informer._kube import request_json

    total = int(rate * seconds)
    interval = 1.0 / rate
    sent = 0

    async def one(i: int) -> None:
        nonlocal sent
        name = f"lat-{i % LATENCY_KEYS:03d}"
        await request_json(
            api,
            "PATCH",
            f"/api/v1/namespaces/{namespace}/configmaps/{name}",
            body={"data": {"t": str(time.time_ns())}},
            content_type="application/merge-patch+json",
        )
        sent += 1

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for i in range(total):
            await anyio.sleep_until(start + i * interval)
            tg.start_soon(one, i)
    return sent


def assets_available() -> str | None:
    """Why the control-plane benchmarks cannot run (``None`` if they can)."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if not assets:
        return "KUBEBUILDER_ASSETS is not set (`make bench` sets it; or run `make control-plane`)"
    if not all((Path(assets) / b).exists() for b in ("kube-apiserver", "etcd")):
        return f"KUBEBUILDER_ASSETS={assets} lacks kube-apiserver/etcd"
    return None
