"""Benchmarks 2 and 3 on the local control plane (see :mod:`bench._cluster`).

- ``sync``: seconds from start to ``has_synced`` and peak RSS, per peer and data set.
- ``memory``: RSS added by the cache per object (after a GC and ``malloc_trim``; Go:
  after ``runtime.GC`` and ``FreeOSMemory``), with and without dropping managedFields.

client-go runs in JSON and in protobuf (``-protobuf``: ``application/vnd.kubernetes.protobuf``,
as in-tree controllers), each by watch-list (its default) and by a paginated list; "vs
client-go" and the targets compare with the fastest (sync) / smallest (memory) of them.

Both have kube-informer ``metadata-only`` rows (``informer_for(..., metadata_only=True)``,
``PartialObjectMetadata``): they cache less than the other rows, so they are compared
with client-go's whole-object informer for information only and never count towards the
targets (client-go's metadatainformer is not a peer yet).

A run fails unless the client synced every object of the data set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bench._cluster import Cluster, DataSet, datasets
from bench._config import Config
from bench._outcome import Outcome
from bench._proc import (
    CLIENTGO_LIST_MODE,
    CLIENTGO_PROTOBUF,
    PeerRun,
    clientgo_format_problem,
    clientgo_run,
    python_peer,
    run_peer,
    unavailable_python_peer,
)
from bench._report import fmt_num, fmt_ratio, median, table

MB = 1 << 20


@dataclass(frozen=True)
class SyncClient:
    name: str
    peer: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    @property
    def metadata_only(self) -> bool:
        """A metadata-only informer: less work than a whole-object one (no targets)."""
        return METADATA_ONLY in self.args


METADATA_ONLY = "--metadata-only"
SHARE_STRINGS = "--share-strings"


DEFAULTS = "kube-informer defaults (list, GC frozen, strip)"
"""The row of what a program gets from the library's defaults (the Manager's and the
runner's: a list, the GC frozen around the sync, managedFields stripped)."""
SHARED = "kube-informer defaults + share_strings"
"""The defaults with ``share_strings`` after the strip (opt-in: see its cost below)."""

DEFAULTS_TARGET = 1.2
"""Issue 23: a program with the library's defaults syncs within 1.2x client-go's fastest."""
SHARE_COST_TARGET = 0.10
"""Issue 23: sharing strings costs at most 10% of the sync."""

SYNC_CLIENTS = (
    SyncClient(DEFAULTS, "ours", ("--gc", "freeze", "--strip")),
    SyncClient(SHARED, "ours", ("--gc", "freeze", "--strip", SHARE_STRINGS)),
    SyncClient("kube-informer (list, GC on)", "ours"),
    SyncClient("kube-informer (list, --gc-freeze)", "ours", ("--gc", "freeze")),
    SyncClient(
        "kube-informer (watch-list, --gc-freeze)", "ours", ("--gc", "freeze", "--watch-list")
    ),
    SyncClient(
        "kube-informer metadata-only (list, --gc-freeze)",
        "ours",
        ("--gc", "freeze", METADATA_ONLY),
    ),
    SyncClient(
        "kube-informer metadata-only (watch-list, --gc-freeze)",
        "ours",
        ("--gc", "freeze", "--watch-list", METADATA_ONLY),
    ),
    SyncClient("client-go (watch-list, its default)", "client-go"),
    SyncClient("client-go (list)", "client-go", env=CLIENTGO_LIST_MODE),
    SyncClient("client-go (protobuf, watch-list)", "client-go", (CLIENTGO_PROTOBUF,)),
    SyncClient(
        "client-go (protobuf, list)", "client-go", (CLIENTGO_PROTOBUF,), env=CLIENTGO_LIST_MODE
    ),
    SyncClient("decode floor (aiohttp + orjson + dict)", "floor"),
    SyncClient("kubernetes_asyncio list (models)", "kubernetes_asyncio"),
    SyncClient("official kubernetes.informer", "official"),
    SyncClient("kopf @on.event", "kopf"),
)


async def sync_once(
    cluster: Cluster, ds: DataSet, client: SyncClient, cfg: Config, *, strip: bool = False
) -> PeerRun:
    """One sync of ``ds`` by ``client``; fails unless it holds every object of ``ds``.

    A configured limit (``--kopf-max-objects``) returns an error starting ``skipped:``.
    """
    kubeconfig = str(cluster.kubeconfig)
    if client.peer == "client-go":
        binary, why_not = clientgo_run(build=cfg.build_go)
        if binary is None:
            assert why_not is not None
            return why_not
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
            *client.args,
        ]
        if strip:
            argv.append("-strip-managed-fields")
    else:
        if (missing := unavailable_python_peer(client.peer)) is not None:
            return missing
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
    run = await run_peer(argv, time_limit=cfg.timeout + 30, env=dict(client.env))
    got = run.result.get("objects") if run.result is not None else None
    if run.result is not None and (not isinstance(got, int) or got < ds.count):
        return PeerRun(error=f"synced {got} of the {ds.count} objects", stderr=run.stderr)
    if (
        run.result is not None
        and client.peer == "client-go"
        and (problem := clientgo_format_problem(argv, run.result)) is not None
    ):
        return PeerRun(error=problem, stderr=run.stderr)
    return run


def _record(
    outcome: Outcome, benchmark: str, case: str, client: str, peer: str, run: PeerRun
) -> str:
    """Record a run that has no result; returns its table cell."""
    why = run.error or "failed"
    if run.unavailable:
        return outcome.unavailable(benchmark, case, client, peer, why)
    if why.startswith("skipped: "):
        return outcome.skipped(benchmark, case, client, peer, why.removeprefix("skipped: "))
    return outcome.failed(benchmark, case, client, peer, why)


def _med(runs: list[PeerRun], field: str) -> float | None:
    return median([r.result[field] for r in runs if r.result and field in r.result])


async def run_sync(cluster: Cluster, cfg: Config, outcome: Outcome) -> str:
    """Sync every data set with every wanted client; one row each in ``outcome``."""
    rows: list[list[str]] = []
    notes: list[str] = []
    target_lines: list[str] = []
    clients = [c for c in SYNC_CLIENTS if cfg.wants(c.peer)]
    for ds in datasets(cfg):
        await cluster.ensure(ds)
        results: dict[str, list[PeerRun]] = {c.name: [] for c in clients}
        errors: dict[str, str] = {}  # the table cell of a row with no figure
        for round_ in range(cfg.repeat):
            for c in clients:
                if c.name in errors:
                    continue
                run = await sync_once(cluster, ds, c, cfg)
                if run.ok:
                    results[c.name].append(run)
                else:
                    errors[c.name] = _record(outcome, "sync", ds.label, c.name, c.peer, run)
                secs = (run.result or {}).get("sync_seconds")
                print(
                    f"  sync {ds.label} round {round_ + 1}: {c.name}: "
                    f"{fmt_num(secs, 2, ' s') if run.ok else errors[c.name]}",
                    flush=True,
                )
        go_name, go_best = _fastest(
            (c.name, _med(results.get(c.name, []), "sync_seconds"))
            for c in clients
            if c.peer == "client-go" and c.name not in errors
        )
        ours_best = min(
            (
                v
                for v in (
                    _med(results.get(c.name, []), "sync_seconds")
                    for c in clients
                    if c.peer == "ours" and not c.metadata_only and c.name not in errors
                )
                if v is not None
            ),
            default=None,
        )
        for c in clients:
            runs = results[c.name]
            secs = _med(runs, "sync_seconds")
            peak = _med(runs, "peak_rss")
            delta = median(
                [(r.result["rss_after"] - r.result["rss_before"]) for r in runs if r.result]
            )
            figures = {
                "objects": float(ds.count),
                "peak_rss_mb": None if peak is None else peak / MB,
                "cache_rss_mb": None if delta is None else delta / MB,
            }
            if c.name not in errors and (
                cell := outcome.ok("sync", ds.label, c.name, c.peer, secs, "s", figures)
            ):
                errors[c.name] = cell
            if c.name in errors or secs is None:
                rows.append([ds.label, c.name, errors.get(c.name, "-"), "", "", "", ""])
                continue
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
                f"client-go, {go_name}, {go_best:.2f} s (target <= 1.5x: {verdict})"
            )
        defaults = _med(results.get(DEFAULTS, []), "sync_seconds")
        if go_best and defaults and DEFAULTS not in errors:
            ratio = defaults / go_best
            line = (
                f"- {ds.label}: the library's defaults {defaults:.2f} s = {ratio:.2f}x "
                f"{go_name} (target <= {DEFAULTS_TARGET:g}x: "
                f"{'met' if ratio <= DEFAULTS_TARGET else 'MISSED'})"
            )
            shared = _med(results.get(SHARED, []), "sync_seconds")
            if shared:
                cost = shared / defaults - 1
                line += (
                    f"; with share_strings {shared:.2f} s, {cost:+.0%} (target for making it "
                    f"the default <= {SHARE_COST_TARGET:.0%}: "
                    f"{'met' if cost <= SHARE_COST_TARGET else 'MISSED'})"
                )
            cpu = _med(results.get(DEFAULTS, []), "sync_cpu_seconds")
            cpu_shared = _med(results.get(SHARED, []), "sync_cpu_seconds")
            if cpu and cpu_shared:
                more = cpu_shared / cpu - 1
                line += (
                    f"; client CPU {cpu:.2f} s, {cpu_shared:.2f} s with share_strings "
                    f"({more:+.0%}, the load-independent figure)"
                )
            target_lines.append(line)
    notes.append(
        f"Median of {cfg.repeat} run(s); each client in its own process against the same "
        "control plane (kube-apiserver + etcd on this machine, so the server's own work is "
        "part of every figure). 'vs client-go' = seconds / the fastest client-go mode's "
        "(lower is better). Peak RSS is the process's; 'cache RSS' is the RSS added by the "
        "synced cache (after a GC). --gc-freeze: gc.disable() during the initial list, then "
        "gc.freeze() without a collection (since the scaling-curve run; not counted). "
        "metadata-only rows list/watch PartialObjectMetadata: less data, not in the targets."
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


MEMORY_VARIANTS = (
    ("kube-informer", SyncClient("ours", "ours"), False),
    ("kube-informer", SyncClient("ours", "ours"), True),
    ("kube-informer, watch-list", SyncClient("ours", "ours", ("--watch-list",)), True),
    ("kube-informer + share_strings", SyncClient("ours", "ours", (SHARE_STRINGS,)), True),
    (
        "kube-informer + share_strings, watch-list",
        SyncClient("ours", "ours", ("--watch-list", SHARE_STRINGS)),
        True,
    ),
    ("kube-informer metadata-only", SyncClient("ours", "ours", (METADATA_ONLY,)), False),
    ("kube-informer metadata-only", SyncClient("ours", "ours", (METADATA_ONLY,)), True),
    (
        "kube-informer metadata-only, watch-list",
        SyncClient("ours", "ours", ("--watch-list", METADATA_ONLY)),
        True,
    ),
    ("client-go", SyncClient("client-go", "client-go"), False),
    ("client-go", SyncClient("client-go", "client-go"), True),
    (
        "client-go (protobuf, watch-list)",
        SyncClient("client-go", "client-go", (CLIENTGO_PROTOBUF,)),
        False,
    ),
    (
        "client-go (protobuf, watch-list)",
        SyncClient("client-go", "client-go", (CLIENTGO_PROTOBUF,)),
        True,
    ),
    (
        "client-go (protobuf, list)",
        SyncClient("client-go", "client-go", (CLIENTGO_PROTOBUF,), env=CLIENTGO_LIST_MODE),
        False,
    ),
    (
        "client-go (protobuf, list)",
        SyncClient("client-go", "client-go", (CLIENTGO_PROTOBUF,), env=CLIENTGO_LIST_MODE),
        True,
    ),
    ("decode floor (dicts)", SyncClient("floor", "floor"), False),
    (
        "kubernetes_asyncio (models)",
        SyncClient("kubernetes_asyncio", "kubernetes_asyncio"),
        False,
    ),
)
"""(row name, client, transform on). The transform is strip_managed_fields (client-go:
SetTransform dropping managedFields); '+ share_strings' adds informer.cache.share_strings."""

MEMORY_TARGET = 1.0
"""Issue 13: memory per cached object with the transform <= 1.0x client-go's smallest."""


async def run_memory(cluster: Cluster, cfg: Config, outcome: Outcome) -> str:
    """Memory per object of every wanted variant, for every Deployments data set; one row
    each in ``outcome``."""
    sets = list(datasets(cfg))
    if not sets:
        outcome.failed("memory", "", "", "", "no data set (--sizes)")
        return "### Memory per cached object\n\nFAILED: no data set configured\n"
    rows: list[list[str]] = []
    lines: list[str] = []
    for ds in sets:
        await cluster.ensure(ds)
        await _memory_of(cluster, ds, cfg, outcome, rows, lines)
    labels = ", ".join(ds.label for ds in sets)
    notes = [
        f"{labels} from the control plane (Deployments with one managedFields entry, no "
        "status: nothing runs the Deployment controller). Per object = (RSS after sync - "
        "RSS before start) / objects, after a full GC and malloc_trim (Go: runtime.GC + "
        "FreeOSMemory); "
        f"median of {cfg.repeat}, each data set's rows in the same run. 'transform' drops "
        "metadata.managedFields (informer.cache.strip_managed_fields / client-go SetTransform); "
        "'+ share_strings' also holds each distinct string value once "
        "(informer.cache.share_strings). Go heap = HeapAlloc delta. "
        "metadata-only: informer_for(..., metadata_only=True) caches apiVersion, kind and "
        "metadata only (compared with client-go's whole objects, for information). "
        "client-go: JSON by watch-list (its default) unless the row says otherwise; "
        "'vs client-go' = KB / the smallest client-go mode's with the same transform.",
        *lines,
    ]
    header = [
        "data set",
        "client",
        "transform",
        "KB/object (RSS)",
        "vs client-go",
        "Go heap KB/object",
    ]
    return table("Memory per cached object", header, rows, notes)


async def _memory_of(
    cluster: Cluster,
    ds: DataSet,
    cfg: Config,
    outcome: Outcome,
    rows: list[list[str]],
    lines: list[str],
) -> None:
    """The rows of one data set (each round runs every variant once)."""
    variants = [v for v in MEMORY_VARIANTS if cfg.wants(v[1].peer)]
    per: dict[tuple[str, bool], list[float]] = {}
    heap: dict[tuple[str, bool], list[float]] = {}
    errors: dict[tuple[str, bool], str] = {}
    case = ds.label
    for round_ in range(cfg.repeat):
        for name, client, strip in variants:
            if (name, strip) in errors:
                continue
            run = await sync_once(cluster, ds, client, cfg, strip=strip)
            if not run.ok or run.result is None:
                errors[(name, strip)] = _record(
                    outcome, "memory", _case(case, strip), name, client.peer, run
                )
                print(
                    f"  memory {case} round {round_ + 1}: {name} strip={strip}: "
                    f"{errors[(name, strip)]}",
                    flush=True,
                )
                continue
            r = run.result
            objects = max(1, r["objects"])
            per.setdefault((name, strip), []).append((r["rss_after"] - r["rss_before"]) / objects)
            if "heap_after" in r:
                heap.setdefault((name, strip), []).append(
                    (r["heap_after"] - r["heap_before"]) / objects
                )
            print(
                f"  memory {case} round {round_ + 1}: {name} strip={strip}: "
                f"{per[(name, strip)][-1] / 1024:.2f} KB/object",
                flush=True,
            )
    for name, client, strip in variants:
        v = median(per.get((name, strip), []))
        kb = None if v is None else v / 1024
        h = median(heap.get((name, strip), []))
        extra = {"go_heap_kb": None if h is None else h / 1024, "objects": float(ds.count)}
        if (name, strip) not in errors and (
            cell := outcome.ok(
                "memory", _case(case, strip), name, client.peer, kb, "KB/object", extra
            )
        ):
            errors[(name, strip)] = cell
        if (name, strip) in errors or v is None:
            cell = errors.get((name, strip), "-")
            rows.append([case, name, "on" if strip else "off", cell, "", ""])
            continue
        go_name, go = _fastest(
            (n, median(per.get((n, s), [])))
            for n, c, s in variants
            if c.peer == "client-go" and s == strip and (n, s) not in errors
        )
        h = median(heap.get((name, strip), []))
        rows.append(
            [
                case,
                name,
                "on" if strip else "off",
                fmt_num(v / 1024, 2),
                "" if client.peer == "client-go" else fmt_ratio(v, go),
                fmt_num(h / 1024, 2) if h is not None else "",
            ]
        )
        if name.startswith("kube-informer") and not client.metadata_only and strip and go:
            verdict = "met" if v / go <= MEMORY_TARGET else "MISSED"
            lines.append(
                f"- {case}, with the transform, {name}: {v / 1024:.2f} KB = {v / go:.2f}x "
                f"{go_name} {go / 1024:.2f} KB per object (target <= {MEMORY_TARGET:g}x: "
                f"{verdict})"
            )


def _fastest(figures: Iterable[tuple[str, float | None]]) -> tuple[str, float | None]:
    """The row with the lowest figure (seconds, KB/object): ``(name, figure)``, or
    ``("", None)`` when none has one."""
    measured = [(v, name) for name, v in figures if v is not None]
    if not measured:
        return "", None
    v, name = min(measured)
    return name, v


def _case(label: str, strip: bool) -> str:
    return f"{label}, transform {'on' if strip else 'off'}"
