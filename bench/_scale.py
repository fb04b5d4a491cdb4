"""``python -m bench scale``: the scaling curve (issue 13, item 4).

Initial sync of 10k, 50k, 100k and 200k ConfigMaps (``--sizes``) from the local control
plane, measured as ``sync`` does (:func:`bench._sync.sync_once`: seconds from start to the
handler having seen every object; cache RSS = RSS after sync minus before, each after a
GC and ``malloc_trim``), by:

- kube-informer with the runner's defaults: watch-list, managedFields stripped, GC off
  during the sync then collected and frozen (``--gc-freeze``);
- kube-informer by a list with the GC on (the library in a user's program);
- client-go in protobuf by a list (its fastest) and by watch-list.

Every row strips managedFields (client-go: ``-strip-managed-fields``), so the caches hold
the same data. kube-informer rows also report the event loop's longest stall
(``bench._peer --stalls``: a task sleeping 5 ms in a loop records its lateness) from the
start until the handler saw every object, and including the runner's post-sync GC work
(``gc.freeze()``), whose own duration is reported as well, with what the
``gc.collect()`` the runner ran before it until issue 13 costs (timed afterwards).

The data set grows in place, one namespace (``bench-scale``), smallest size first: each
size adds the missing ConfigMaps (same shape as the ``cm`` data sets) and then every
client syncs ``repeat`` times (sizes above :data:`LARGE` at most ``cfg.scale_large_repeat``
times: they are long). For each client: the per-object slopes between consecutive sizes,
a growth check (``f(n2) / f(n1)`` against ``n2 / n1``: superlinear beyond
:data:`TOLERANCE`), and a projected 1M-object row from a least-squares line through
every size (a projection, not a measurement).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import anyio

from bench._cluster import Cluster, DataSet
from bench._config import Config
from bench._objects import configmap_spec
from bench._outcome import Outcome
from bench._proc import CLIENTGO_LIST_MODE, CLIENTGO_PROTOBUF, clientgo_binary, run_peer
from bench._report import fmt_num, median, table
from bench._sync import SyncClient, sync_once

MB = 1 << 20
KEY = "scale"
LARGE = 100_000
"""Sizes above this run at most ``cfg.scale_large_repeat`` rounds."""
TOLERANCE = 0.15
"""Growth check: ``f(n2) / f(n1) > (n2 / n1) * (1 + TOLERANCE)`` is superlinear."""
STALL_LIMIT_MS = 100.0
"""Issue 13: the event loop's longest stall during a sync stays under this."""
PROJECT_TO = 1_000_000
STALLS = "--stalls"

SCALE_CLIENTS = (
    SyncClient(
        "kube-informer (list, --gc-freeze: runner defaults)", "ours", ("--gc", "freeze", STALLS)
    ),
    SyncClient(
        "kube-informer (watch-list, --gc-freeze)",
        "ours",
        ("--gc", "freeze", "--watch-list", STALLS),
    ),
    SyncClient("kube-informer (list, GC on)", "ours", (STALLS,)),
    SyncClient(
        "client-go (protobuf, list)", "client-go", (CLIENTGO_PROTOBUF,), env=CLIENTGO_LIST_MODE
    ),
    SyncClient("client-go (protobuf, watch-list)", "client-go", (CLIENTGO_PROTOBUF,)),
)


# --------------------------------------------------------------------------- arithmetic


def slopes(points: Sequence[tuple[int, float]], per: int = 1) -> list[tuple[int, int, float]]:
    """The slope between consecutive ``(size, figure)`` points, per ``per`` objects:
    ``[(n1, n2, (f2 - f1) / (n2 - n1) * per), ...]`` (points sorted by size)."""
    pts = sorted(points)
    return [(n1, n2, (f2 - f1) / (n2 - n1) * per) for (n1, f1), (n2, f2) in pairwise(pts)]


@dataclass(frozen=True)
class Growth:
    n1: int
    n2: int
    ratio: float
    """``f(n2) / f(n1)``."""
    linear: float
    """``n2 / n1``: the ratio of linear growth."""

    @property
    def superlinear(self) -> bool:
        return self.ratio > self.linear * (1 + TOLERANCE)

    def __str__(self) -> str:
        flag = " SUPERLINEAR" if self.superlinear else ""
        return f"{self.ratio:.2f} (linear {self.linear:.1f}){flag}"


def growth(points: Sequence[tuple[int, float]]) -> list[Growth]:
    """``f(n2) / f(n1)`` for consecutive sizes (figures <= 0 are skipped)."""
    pts = sorted(p for p in points if p[1] > 0)
    return [Growth(n1, n2, f2 / f1, n2 / n1) for (n1, f1), (n2, f2) in pairwise(pts)]


def fit(points: Sequence[tuple[int, float]]) -> tuple[float, float] | None:
    """Least-squares line ``f = a + b * n`` through the points: ``(a, b)``; ``None`` with
    fewer than two distinct sizes."""
    if len({n for n, _ in points}) < 2:
        return None
    k = len(points)
    mean_n = sum(n for n, _ in points) / k
    mean_f = sum(f for _, f in points) / k
    sxx = sum((n - mean_n) ** 2 for n, _ in points)
    sxy = sum((n - mean_n) * (f - mean_f) for n, f in points)
    b = sxy / sxx
    return mean_f - b * mean_n, b


def project(points: Sequence[tuple[int, float]], n: int = PROJECT_TO) -> float | None:
    """The figure at ``n`` objects on the :func:`fit` line (a projection)."""
    line = fit(points)
    return None if line is None else line[0] + line[1] * n


# --------------------------------------------------------------------------- the data set


async def grow(cluster: Cluster, cfg: Config, count: int, *, have: int) -> float:
    """Make ``bench-scale`` hold ConfigMaps ``cm-000000`` .. ``count - 1`` (``have``: how
    many it holds); returns the seconds it took. The first size is created by the Go peer
    when built (fastest from nothing); the next ones by Python from ``have`` on (the Go
    peer would POST every name again, the existing ones failing: twice the requests)."""
    ds = DataSet(KEY, "configmaps", count)
    start = time.perf_counter()
    print(f"  growing {ds.namespace} to {count:,} ConfigMaps ...", flush=True)
    binary = clientgo_binary(build=cfg.build_go).path
    if have == 0 and binary is not None and cfg.wants("client-go"):
        run = await run_peer(
            [str(binary), "-mode", "populate", "-kubeconfig", str(cluster.kubeconfig),
             "-resource", "configmaps", "-namespace", ds.namespace, "-count", str(count),
             "-timeout", "3600s"],
            time_limit=3600,
        )  # fmt: skip
        if not run.ok or (run.result or {}).get("failures"):
            raise RuntimeError(f"populating {ds.label} failed: {run.error or run.result}")
    else:
        await _grow_python(cluster, ds)
    took = time.perf_counter() - start
    print(f"  {ds.namespace} holds {count:,} ConfigMaps ({took:.1f} s)", flush=True)
    return took


async def _grow_python(cluster: Cluster, ds: DataSet) -> None:
    from informer import new_api_client
    from informer._rest.request import request_json

    api = await new_api_client(kubeconfig=str(cluster.kubeconfig))
    try:
        path = f"/api/v1/namespaces/{ds.namespace}/configmaps"
        namespaces = await request_json(api, "GET", "/api/v1/namespaces")
        if ds.namespace not in {n["metadata"]["name"] for n in namespaces["items"]}:
            await request_json(
                api, "POST", "/api/v1/namespaces", body={"metadata": {"name": ds.namespace}}
            )
        listed = await request_json(api, "GET", f"{path}?limit=1")
        have = len(listed["items"]) + int(listed["metadata"].get("remainingItemCount") or 0)
        next_i = have

        async def worker() -> None:
            nonlocal next_i
            while next_i < ds.count:
                i = next_i
                next_i += 1
                await request_json(api, "POST", path, body=configmap_spec(i))

        async with anyio.create_task_group() as tg:
            for _ in range(64):
                tg.start_soon(worker)
    finally:
        await api.close()


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Figures:
    """The median figures of one client at one size."""

    seconds: float
    rss_mb: float
    stall_sync_ms: float | None
    stall_sync_cpu_ms: float | None
    stall_total_ms: float | None
    stall_total_cpu_ms: float | None
    freeze_ms: float | None
    full_collect_ms: float | None
    """What the runner's former ``gc.collect()`` before the freeze took (measured after)."""
    full_collect_cpu_ms: float | None
    gc_max_ms: float | None
    rounds: int


def _median_of(results: list[dict[str, Any]], key: str, scale: float = 1.0) -> float | None:
    v = median([r[key] for r in results if r.get(key) is not None])
    return None if v is None else v * scale


def summarize(results: list[dict[str, Any]]) -> Figures | None:
    """Median figures of a client's rounds at one size."""
    if not results:
        return None
    secs = _median_of(results, "sync_seconds")
    rss = median([(r["rss_after"] - r["rss_before"]) / MB for r in results])
    assert secs is not None and rss is not None
    gc_full = [r["stall_total_gc_max_ms"][2] for r in results if "stall_total_gc_max_ms" in r]
    return Figures(
        seconds=secs,
        rss_mb=rss,
        stall_sync_ms=_median_of(results, "stall_sync_max_ms"),
        stall_sync_cpu_ms=_median_of(results, "stall_sync_max_cpu_ms"),
        stall_total_ms=_median_of(results, "stall_total_max_ms"),
        stall_total_cpu_ms=_median_of(results, "stall_total_max_cpu_ms"),
        freeze_ms=_median_of(results, "freeze_seconds", 1000),
        full_collect_ms=_median_of(results, "full_collect_seconds", 1000),
        full_collect_cpu_ms=_median_of(results, "full_collect_cpu_seconds", 1000),
        gc_max_ms=median(gc_full),
        rounds=len(results),
    )


def rounds_for(size: int, cfg: Config) -> int:
    return cfg.repeat if size <= LARGE else max(1, min(cfg.repeat, cfg.scale_large_repeat))


async def run_scale(cluster: Cluster, cfg: Config, outcome: Outcome) -> str:
    """Grow the data set through ``cfg.scale_sizes`` and sync it with every client."""
    clients = [c for c in SCALE_CLIENTS if cfg.wants(c.peer)]
    sizes = sorted(set(cfg.scale_sizes))
    figures: dict[str, dict[int, Figures]] = {c.name: {} for c in clients}
    failed: dict[str, str] = {}
    grown: dict[int, float] = {}
    loads: list[str] = []
    have = 0
    for size in sizes:
        ds = DataSet(KEY, "configmaps", size)
        try:
            grown[size] = await grow(cluster, cfg, size, have=have)
        except Exception as exc:  # report the sizes measured so far
            for c in clients:
                if c.name not in failed:
                    outcome.failed("scale", ds.label, c.name, c.peer, f"not measured: {exc}")
            print(f"  scale: stopped at {ds.label}: {exc}", flush=True)
            break
        have = size
        results: dict[str, list[dict[str, Any]]] = {c.name: [] for c in clients}
        rounds = rounds_for(size, cfg)
        for round_ in range(rounds):
            loads.append(_loadavg())
            for c in clients:
                if c.name in failed:
                    continue
                run = await sync_once(cluster, ds, c, cfg, strip=True)
                if not run.ok or run.result is None:
                    failed[c.name] = outcome.failed(
                        "scale", ds.label, c.name, c.peer, run.error or "failed"
                    )
                    print(f"  scale {ds.label}: {c.name}: {failed[c.name]}", flush=True)
                    continue
                r = run.result
                results[c.name].append(r)
                print(
                    f"  scale {ds.label} round {round_ + 1}/{rounds}: {c.name}: "
                    f"{r['sync_seconds']:.2f} s, {(r['rss_after'] - r['rss_before']) / MB:.0f} MB"
                    + _stall_line(r),
                    flush=True,
                )
        for c in clients:
            if c.name in failed:
                continue
            f = summarize(results[c.name])
            if f is not None:
                figures[c.name][size] = f
                outcome.ok(
                    "scale",
                    ds.label,
                    c.name,
                    c.peer,
                    f.seconds,
                    "s",
                    {
                        "objects": float(size),
                        "cache_rss_mb": f.rss_mb,
                        "kb_per_object": f.rss_mb * 1024 / size,
                        "stall_wall_ms": f.stall_total_ms,
                        "stall_cpu_ms": f.stall_total_cpu_ms,
                    },
                )
    return report(clients, sizes, figures, failed, grown, loads, cfg)


def _stall_line(r: dict[str, Any]) -> str:
    if r.get("stall_total_max_ms") is None:
        return ""
    worst = ", ".join(f"{ms:.0f} ms at {at:.2f} s" for ms, at in r["stall_sync_worst_ms"][:3])
    return (
        f"; stall {r['stall_sync_max_ms']:.0f} ms wall / {r['stall_sync_max_cpu_ms']:.0f} ms "
        f"CPU in the sync (longest: {worst}), {r['stall_total_max_ms']:.0f} ms with the GC "
        f"step ({1000 * r.get('freeze_seconds', 0):.1f} ms); full GC max "
        f"{r['stall_sync_gc_max_ms'][2]:.0f} ms; former collect "
        f"{1000 * r.get('full_collect_seconds', 0):.0f} ms wall / "
        f"{1000 * r.get('full_collect_cpu_seconds', 0):.0f} ms CPU"
    )


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return fh.read().split()[0]
    except OSError:
        return "?"


def _ms(v: float | None) -> str:
    return fmt_num(None if v is None else max(v, 0.0), 0)


def _opt(f: Figures | None, name: str) -> float | None:
    return None if f is None else getattr(f, name)


STALL_COLUMNS = (
    ("stall_sync_ms", "longest stall ms (wall)"),
    ("stall_sync_cpu_ms", "longest stall ms (CPU)"),
    ("freeze_ms", "freeze ms"),
    ("full_collect_cpu_ms", "former collect ms (CPU)"),
)
"""kube-informer only: ``Figures`` field, column header."""


def report(
    clients: Sequence[SyncClient],
    sizes: Sequence[int],
    figures: dict[str, dict[int, Figures]],
    failed: dict[str, str],
    grown: dict[int, float],
    loads: Sequence[str],
    cfg: Config,
) -> str:
    """The table (one row per client and size, then a projected 1M row per client) and
    the slopes, growth checks and stall verdicts as notes."""
    rows: list[list[str]] = []
    notes: list[str] = []
    header = [
        "ConfigMaps",
        "client",
        "seconds",
        "objects/s",
        "cache RSS MB",
        "KB/object",
        *(title for _, title in STALL_COLUMNS),
        "rounds",
    ]
    for c in clients:
        if c.name in failed:
            rows.append(["", c.name, failed[c.name]] + [""] * (len(header) - 3))
            continue
        per = figures[c.name]
        for n in sizes:
            if (f := per.get(n)) is None:
                continue
            rows.append(
                [
                    f"{n:,}",
                    c.name,
                    fmt_num(f.seconds, 2),
                    fmt_num(n / f.seconds / 1000, 1, "k"),
                    fmt_num(f.rss_mb, 0),
                    fmt_num(f.rss_mb * 1024 / n, 2),
                    *(_ms(getattr(f, name)) if c.peer == "ours" else "n/a"
                      for name, _ in STALL_COLUMNS),
                    str(f.rounds),
                ]
            )  # fmt: skip
        if len(per) < 2:
            continue
        p_secs = project([(n, f.seconds) for n, f in per.items()])
        p_rss = project([(n, f.rss_mb) for n, f in per.items()])
        stall_cells = []
        for name, _ in STALL_COLUMNS:
            pts = [(n, v) for n, f in per.items() if (v := _opt(f, name)) is not None]
            stall_cells.append(_ms(project(pts)) if c.peer == "ours" and pts else "n/a")
        rows.append(
            [
                f"{PROJECT_TO:,} (projection)",
                c.name,
                fmt_num(p_secs, 1),
                fmt_num(PROJECT_TO / p_secs / 1000, 1, "k") if p_secs else "-",
                fmt_num(p_rss, 0),
                fmt_num((p_rss or 0) * 1024 / PROJECT_TO, 2),
                *stall_cells,
                "fit",
            ]
        )
        notes.extend(_notes_for(c, per))
    made = ", ".join(f"{n:,} in {s:.0f} s" for n, s in grown.items())
    intro = [
        f"Sizes {', '.join(f'{n:,}' for n in sizes)} ConfigMaps in one namespace, grown in "
        f"place ({made}); medians of {cfg.repeat} rounds up to {LARGE:,} objects, "
        f"{max(1, min(cfg.repeat, cfg.scale_large_repeat))} above. Load average at the start "
        f"of each round: {', '.join(loads)}. Every row strips managedFields. 'longest "
        "stall' (kube-informer): the event loop's longest lateness from the start to the "
        "handler having seen every object, measured by a task sleeping 5 ms in a loop: "
        "wall = how late it woke (on a loaded machine this includes waiting for a CPU), "
        "CPU = the most CPU time the loop used within one sleep (its own work without a "
        "yield). 'freeze ms': the runner's post-sync GC step (gc.freeze(), thresholds), "
        "which blocks the loop for that long; 'former collect ms': the gc.collect() the "
        "runner ran before gc.freeze() until issue 13, timed after the measured window. "
        f"Projection rows: the least-squares line through every size, evaluated at "
        f"{PROJECT_TO:,} (not measured). Growth check: f(n2)/f(n1) against n2/n1, "
        f"superlinear beyond +{TOLERANCE:.0%}.",
    ]
    return table("Scaling curve (initial sync, ConfigMaps)", header, rows, intro + notes)


def _notes_for(c: SyncClient, per: dict[int, Figures]) -> list[str]:
    secs = [(n, f.seconds) for n, f in per.items()]
    rss = [(n, f.rss_mb) for n, f in per.items()]
    kb = [(n, f.rss_mb * 1024) for n, f in per.items()]
    out = [f"- {c.name}:"]
    out.append(
        "  seconds per 10k objects "
        + ", ".join(f"{n1 // 1000}k-{n2 // 1000}k {s:.2f}" for n1, n2, s in slopes(secs, 10_000))
        + "; KB per added object "
        + ", ".join(f"{n1 // 1000}k-{n2 // 1000}k {s:.2f}" for n1, n2, s in slopes(kb))
    )
    checks = [("time", growth(secs)), ("RSS", growth(rss))]
    if c.peer == "ours":
        for name, title in (("stall_sync_cpu_ms", "stall (CPU)"), ("stall_sync_ms", "stall (wall)"),
                            ("full_collect_cpu_ms", "former collect (CPU)")):  # fmt: skip
            pts = [(n, v) for n, f in per.items() if (v := _opt(f, name)) is not None]
            checks.append((title, growth(pts)))
    out.append(
        "  growth "
        + "; ".join(
            f"{what} " + ", ".join(f"{g.n1 // 1000}k-{g.n2 // 1000}k {g}" for g in gs)
            for what, gs in checks
            if gs
        )
    )
    if c.peer == "ours":
        for name, what in (("stall_total_ms", "wall"), ("stall_total_cpu_ms", "CPU")):
            by_stall = [(v, n) for n, f in per.items() if (v := _opt(f, name)) is not None]
            if by_stall:
                worst, at = max(by_stall)
                verdict = "met" if worst < STALL_LIMIT_MS else "MISSED"
                out.append(
                    f"  longest stall ({what}, including the post-sync GC step): {worst:.0f} "
                    f"ms at {at:,} (target < {STALL_LIMIT_MS:.0f} ms: {verdict})"
                )
    return out
