"""``python -m bench [names...] [--quick]``: run the benchmarks, print one table each."""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path

import anyio

from bench._config import QUICK, Config
from bench._proc import ROOT

NAMES = ("throughput", "sync", "memory", "latency")
CLUSTER_NAMES = ("sync", "memory", "latency")
PEER_NAMES = ("ours", "floor", "client-go", "kubernetes_asyncio", "official", "kopf")


def machine() -> str:
    """Machine and versions, as a Markdown list."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    try:
        go = subprocess.run(
            ["go", "version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        go = "not installed"
    gomod = (ROOT / "bench" / "clientgo" / "go.mod").read_text()
    clientgo = next((ln.split()[1] for ln in gomod.splitlines() if "k8s.io/client-go " in ln), "?")
    lines = [
        f"- machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; {go}",
        "- kube-informer {}, orjson {}, aiohttp {}, anyio {}; client-go {}; kubernetes_asyncio {}; "
        "kubernetes {}; kopf {}".format(
            version("kube-informer"),
            version("orjson"),
            version("aiohttp"),
            version("anyio"),
            clientgo,
            version("kubernetes_asyncio"),
            version("kubernetes"),
            version("kopf"),
        ),
    ]
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> tuple[list[str], Config]:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="kube-informer benchmarks: each prints one table, peers measured in "
        "the same run on the same input. Peers: pip install -e '.[bench]' (kopf, "
        "kubernetes, pyinstrument); Go builds the client-go peer into .cache/bench/.",
    )
    p.add_argument(
        "names",
        nargs="*",
        choices=[*NAMES, []],
        metavar="NAME",
        help=f"benchmarks to run (default: all): {', '.join(NAMES)}",
    )
    p.add_argument("--quick", action="store_true", help="tiny inputs, one round (smoke test)")
    p.add_argument("--repeat", type=int, help="rounds per measurement (median reported)")
    p.add_argument("--events", type=int, help="throughput: MODIFIED events per kind")
    p.add_argument("--objects", type=int, help="throughput: objects the events cycle over")
    p.add_argument(
        "--sizes", help="sync/memory data sets, e.g. cm10k=10000,cm100k=100000,deploy20k=20000"
    )
    p.add_argument("--peers", help=f"only these peers (comma-separated): {', '.join(PEER_NAMES)}")
    p.add_argument("--latency-rate", type=float, help="latency: writes per second")
    p.add_argument("--latency-seconds", type=float, help="latency: length of the write load")
    p.add_argument("--kopf-max-objects", type=int, help="sync: skip kopf above this many objects")
    p.add_argument(
        "--no-build",
        action="store_true",
        help="use the client-go peer only if already built (never run go build)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="write pyinstrument profiles of kube-informer's throughput runs here",
    )
    p.add_argument("--output", type=Path, help="also write the tables (Markdown) to this file")
    args = p.parse_args(argv)
    cfg = Config()
    if args.quick:
        for k, v in QUICK.items():
            setattr(cfg, k, v)
    for name in (
        "repeat",
        "events",
        "objects",
        "latency_rate",
        "latency_seconds",
        "kopf_max_objects",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    if args.sizes:
        cfg.sync_sizes = {k: int(v) for k, v in (kv.split("=") for kv in args.sizes.split(","))}
    if args.peers:
        cfg.peers = {p.strip() for p in args.peers.split(",") if p.strip()}
        unknown = cfg.peers - set(PEER_NAMES)
        if unknown:
            p.error(f"unknown peers {sorted(unknown)}; choose from {', '.join(PEER_NAMES)}")
    cfg.build_go = not args.no_build
    cfg.profile_dir = args.profile
    if cfg.profile_dir is not None:
        cfg.profile_dir.mkdir(parents=True, exist_ok=True)
    cfg.output = args.output
    return list(args.names) or list(NAMES), cfg


async def amain(names: list[str], cfg: Config) -> int:
    from bench import _cluster, _throughput

    header = "## kube-informer benchmarks\n\n" + machine()
    print(header, flush=True)
    tables: list[str] = [header]

    def show(text: str) -> None:
        print("\n" + text, flush=True)
        tables.append(text)

    started = time.perf_counter()
    if "throughput" in names:
        show(await _throughput.run(cfg))
    cluster_names = [n for n in names if n in CLUSTER_NAMES]
    if cluster_names:
        why = _cluster.assets_available()
        if why is not None:
            for n in cluster_names:
                show(f"### {n}\n\nskipped: {why}\n")
        else:
            cluster = _cluster.Cluster(cfg)
            runners: dict[str, Callable[[_cluster.Cluster, Config], Awaitable[str]]] = {
                "sync": _cluster.run_sync,
                "memory": _cluster.run_memory,
                "latency": _cluster.run_latency,
            }
            async with cluster.running():
                for n in cluster_names:
                    show(await runners[n](cluster, cfg))
            if cluster.populate_seconds:
                made = ", ".join(f"{k} in {v:.0f} s" for k, v in cluster.populate_seconds.items())
                show(f"(data sets created: {made})\n")
    print(f"\nbenchmarks done in {time.perf_counter() - started:.0f} s", flush=True)
    if cfg.output is not None:
        cfg.output.write_text("\n".join(tables))
    return 0


def main(argv: list[str] | None = None) -> int:
    names, cfg = parse(argv if argv is not None else sys.argv[1:])
    return anyio.run(amain, names, cfg)
