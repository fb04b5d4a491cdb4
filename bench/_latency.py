"""Benchmark 4 on the local control plane: API write to ``reconcile(key)``, p50/p99.

Each peer (its own process, one after the other) watches the ConfigMaps of one namespace
while the runner merge-patches them at a steady rate; every write stores its send time
(unix ns) in ``data.t`` and the peer's reconcile reads the object from its cache. A run
fails unless the peer reports at least one reconcile of a write made during its run.

client-go runs in JSON and in protobuf (``-protobuf``), each synced by watch-list (its
default; the sync mode does not matter once synced); "vs client-go" is against the
lower of their figures.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from bench._cluster import Cluster
from bench._config import Config
from bench._outcome import Outcome
from bench._proc import (
    CLIENTGO_PROTOBUF,
    GoBinary,
    InteractivePeer,
    clientgo_binary,
    clientgo_format_problem,
    missing_python_peer,
    python_peer,
)
from bench._report import fmt_num, fmt_ratio, percentile, table

LATENCY_KEYS = 50
NAMESPACE = "bench-latency"


async def run_latency(cluster: Cluster, cfg: Config, outcome: Outcome) -> str:
    """Measure every wanted peer; one row each in ``outcome`` (value: p50 in ms)."""
    from informer import new_api_client

    api = await new_api_client(kubeconfig=str(cluster.kubeconfig))
    rows = []
    try:
        await _populate(cluster, api)
        go = clientgo_binary(build=cfg.build_go)
        kc = str(cluster.kubeconfig)
        common = ["--mode", "latency", "--kubeconfig", kc, "--namespace", NAMESPACE]
        go_argv = (
            [str(go.path), "-mode", "latency", "-kubeconfig", kc, "-namespace", NAMESPACE]
            if go.path is not None
            else None
        )
        candidates: list[tuple[str, str, list[str] | None]] = [
            ("kube-informer Controller", "ours", python_peer("ours", *common)),
            ("client-go informer + workqueue", "client-go", go_argv),
            (
                "client-go informer + workqueue (protobuf)",
                "client-go",
                [*go_argv, CLIENTGO_PROTOBUF] if go_argv is not None else None,
            ),
            (
                "kopf @on.event",
                "kopf",
                python_peer("kopf", *common, "--objects", str(LATENCY_KEYS)),
            ),
        ]
        results: dict[str, list[float]] = {}
        writes: dict[str, int] = {}
        cells: dict[str, str] = {}  # the table cell of a row with no figure
        for name, peer, argv in candidates:
            if not cfg.wants(peer):
                continue
            cell = await _one(outcome, api, cfg, name, peer, argv, go, results, writes)
            if cell is not None:
                cells[name] = cell
            print(f"  latency: {name}: {cell or _said(results[name])}", flush=True)
        go_lats = [
            lat
            for name, peer, _ in candidates
            if peer == "client-go" and (lat := results.get(name))
        ]
        go50 = min((v for lat in go_lats if (v := percentile(lat, 50)) is not None), default=None)
        go99 = min((v for lat in go_lats if (v := percentile(lat, 99)) is not None), default=None)
        for name, peer, _ in candidates:
            if not cfg.wants(peer):
                continue
            lat = results.get(name)
            if name in cells or lat is None:
                rows.append([name, cells.get(name, "-"), "", "", "", "", "", ""])
                continue
            p50, p99 = percentile(lat, 50), percentile(lat, 99)
            rows.append(
                [
                    name,
                    str(writes.get(name, 0)),
                    str(len(lat)),
                    fmt_num(p50, 1),
                    fmt_num(p99, 1),
                    fmt_num(lat[-1], 1),
                    "" if peer == "client-go" else fmt_ratio(p50, go50),
                    "" if peer == "client-go" else fmt_ratio(p99, go99),
                ]
            )
    finally:
        await api.close()
    notes = [
        f"{cfg.latency_rate:g} merge-patches/s for {cfg.latency_seconds:g} s over "
        f"{LATENCY_KEYS} ConfigMaps; each write stores its send time (unix ns) in "
        "data.t and reconcile(key) reads the object from the cache: latency = reconcile "
        "time - send time (API server + etcd + watch + client). Peers run one after the "
        "other; kopf batches an object's events for 0.1 s (settings.batching.batch_window). "
        "'vs client-go' = the figure / the lower of the client-go rows' (JSON, protobuf)."
    ]
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


async def _one(
    outcome: Outcome,
    api: Any,
    cfg: Config,
    name: str,
    peer: str,
    argv: list[str] | None,
    go: GoBinary,
    results: dict[str, list[float]],
    writes: dict[str, int],
) -> str | None:
    """Measure one peer into ``results``/``writes`` and ``outcome``; ``None`` or the
    table cell of its failure or skip."""
    if argv is None:  # client-go without a binary
        if go.broken:
            return outcome.failed("latency", "", name, peer, go.why)
        return outcome.unavailable("latency", "", name, peer, go.why)
    if peer != "client-go" and (missing := missing_python_peer(peer)):
        return outcome.unavailable("latency", "", name, peer, missing)
    try:
        writes[name], lat = await _measure(api, argv, cfg)
    except Exception as exc:
        return outcome.failed("latency", "", name, peer, f"{type(exc).__name__}: {exc}")
    if not lat:
        return outcome.failed("latency", "", name, peer, f"no reconcile of {writes[name]} writes")
    results[name] = lat
    figures = {"p99_ms": percentile(lat, 99), "max_ms": max(lat), "reconciles": float(len(lat))}
    return outcome.ok("latency", "", name, peer, percentile(lat, 50), "ms p50", figures)


def _said(lat: list[float]) -> str:
    return f"{len(lat)} reconciles, p50 {fmt_num(percentile(lat, 50), 1)} ms"


async def _populate(cluster: Cluster, api: Any) -> None:
    from informer._rest.request import request_json

    if "latency" in cluster._populated:
        return
    await request_json(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": NAMESPACE}})
    for i in range(LATENCY_KEYS):
        await request_json(
            api,
            "POST",
            f"/api/v1/namespaces/{NAMESPACE}/configmaps",
            body={"metadata": {"name": f"lat-{i:03d}"}, "data": {"t": "0"}},
        )
    cluster._populated.add("latency")


async def _measure(api: Any, argv: list[str], cfg: Config) -> tuple[int, list[float]]:
    """Run one peer under the write load: (writes made, sorted latencies in ms).

    Raises when the peer does not get ready, or ends without a result.
    """
    proc = InteractivePeer(argv)
    try:
        try:
            await proc.start(time_limit=cfg.latency_peers_timeout)
        except anyio.EndOfStream:
            raise RuntimeError("the peer exited before it was ready") from None
        writes = await _write_load(api, cfg.latency_rate, cfg.latency_seconds)
        await anyio.sleep(2.0)
        result = await proc.stop(time_limit=30)
    except BaseException:
        await proc.kill()
        raise
    if result is None or "latencies_ms" not in result:
        raise RuntimeError("the peer printed no result")
    if result.get("peer") == "client-go" and (problem := clientgo_format_problem(argv, result)):
        raise RuntimeError(problem)
    latencies: list[float] = sorted(result["latencies_ms"])
    return writes, latencies


async def _write_load(api: Any, rate: float, seconds: float) -> int:
    from informer._rest.request import request_json

    total = int(rate * seconds)
    interval = 1.0 / rate
    sent = 0

    async def one(i: int) -> None:
        nonlocal sent
        name = f"lat-{i % LATENCY_KEYS:03d}"
        await request_json(
            api,
            "PATCH",
            f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}",
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
