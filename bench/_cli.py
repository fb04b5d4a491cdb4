"""``python -m bench [names...] [--quick]``: run the benchmarks, print one table each.

The exit status is 0 only when every row that ran holds a figure: a peer that raised,
timed out, exited non-zero or received fewer events (objects) than were sent, a peer
named by ``--peers`` that is not available, a benchmark named on the command line that
cannot run here, and a benchmark that crashed all make it 1 (2: bad arguments). Peers
not named by ``--peers`` that are not installed (or client-go, not built) are skipped.
The run ends with a summary of what failed and what was skipped (:mod:`bench._outcome`);
``--json FILE`` writes every row's figure or failure as JSON, with the machine and the
load of the run: ``python -m bench.charts FILE DIR`` draws the docs' charts from it.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
import orjson

from bench import _faults
from bench._config import QUICK, Config
from bench._outcome import Outcome
from bench._proc import ROOT

NAMES = ("throughput", "sync", "memory", "latency", "startup")
EXTRA_NAMES = ("scale", "webhook")
"""Benchmarks run only when named (long, or needing no cluster but a quiet machine)."""
CLUSTER_NAMES = ("sync", "memory", "latency", "scale", "startup")
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


def parse_sizes(text: str) -> tuple[dict[str, int], tuple[int, ...]]:
    """``--sizes``: the sync/memory data sets (``KEY=N``; a bare ``N`` is ``cmN=N``) and
    the scale sizes (every ``N``)."""
    named: dict[str, int] = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        key, _, value = item.rpartition("=")
        n = int(value)
        if n <= 0:
            raise ValueError(f"{item!r}: sizes must be positive")
        named[key or f"cm{n}"] = n
    if not named:
        raise ValueError("no sizes given")
    return named, tuple(sorted(set(named.values())))


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
        choices=[*NAMES, *EXTRA_NAMES, []],
        metavar="NAME",
        help=f"benchmarks to run (default: {', '.join(NAMES)}); also, only when named: "
        "scale (the scaling curve, 10k-200k ConfigMaps; long), webhook (admission requests "
        "at 500/s, ours vs controller-runtime's webhook server; bench/webhook.py)",
    )
    p.add_argument("--quick", action="store_true", help="tiny inputs, one round (smoke test)")
    p.add_argument("--repeat", type=int, help="rounds per measurement (median reported)")
    p.add_argument("--events", type=int, help="throughput: MODIFIED events per kind")
    p.add_argument("--objects", type=int, help="throughput: objects the events cycle over")
    p.add_argument(
        "--sizes",
        help="sync/memory data sets, e.g. cm10k=10000,cm100k=100000,deploy20k=20000; "
        "scale: ConfigMap counts, e.g. 10000,50000 (KEY=N also accepted)",
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
    p.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="also write every row (its figure, or why it failed or was skipped) as JSON",
    )
    args = p.parse_args(argv)
    if (why := _faults.problem()) is not None:
        p.error(why)
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
        try:
            cfg.sync_sizes, cfg.scale_sizes = parse_sizes(args.sizes)
        except ValueError as exc:
            p.error(f"--sizes {args.sizes!r}: {exc}")
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
    cfg.json = args.json
    cfg.names_explicit = bool(args.names)
    return list(dict.fromkeys(args.names)) or list(NAMES), cfg


async def amain(names: list[str], cfg: Config) -> int:
    """Run ``names`` in order; returns the exit status (see the module docstring)."""
    from bench import _cluster, _latency, _scale, _startup, _sync, _throughput, webhook

    outcome = Outcome(cfg.peers)
    header = "## kube-informer benchmarks\n\n" + machine()
    print(header, flush=True)
    tables: list[str] = [header]

    def show(text: str) -> None:
        print("\n" + text, flush=True)
        tables.append(text)

    def crashed(name: str, exc: BaseException, *, trace: bool = True) -> None:
        if trace:
            traceback.print_exception(exc)
        why = f"the benchmark crashed: {type(exc).__name__}: {exc}"
        show(f"### {name}\n\n{outcome.failed(name, '', '', '', why)}\n")

    started = time.perf_counter()
    context: dict[str, Any] = {
        "machine": machine(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_at_start": list(os.getloadavg()),
        "argv": sys.argv[1:],
    }
    if "throughput" in names:
        try:
            show(await _throughput.run(cfg, outcome))
        except Exception as exc:
            crashed("throughput", exc)
    if "webhook" in names:
        try:
            show(await webhook.run(cfg, outcome))
        except Exception as exc:
            crashed("webhook", exc)
    cluster_names = [n for n in names if n in CLUSTER_NAMES]
    if cluster_names:
        why = _cluster.assets_available()
        if why is not None:
            for n in cluster_names:
                if cfg.names_explicit:
                    cell = outcome.failed(n, "", "", "", f"requested but cannot run: {why}")
                else:
                    cell = outcome.skipped(n, "", "", "", why)
                show(f"### {n}\n\n{cell}\n")
        else:
            cluster = _cluster.Cluster(cfg)
            runners: dict[str, Callable[[_cluster.Cluster, Config, Outcome], Awaitable[str]]] = {
                "sync": _sync.run_sync,
                "memory": _sync.run_memory,
                "latency": _latency.run_latency,
                "scale": _scale.run_scale,
                "startup": _startup.run_startup,
            }
            done: set[str] = set()
            try:
                async with cluster.running():
                    for n in cluster_names:
                        try:
                            show(await runners[n](cluster, cfg, outcome))
                        except Exception as exc:
                            crashed(n, exc)
                        done.add(n)
            except Exception as exc:  # the control plane failed
                for i, n in enumerate(n for n in cluster_names if n not in done):
                    crashed(n, exc, trace=i == 0)
            if cluster.populate_seconds:
                made = ", ".join(f"{k} in {v:.0f} s" for k, v in cluster.populate_seconds.items())
                show(f"(data sets created: {made})\n")
    summary = outcome.summary()
    print(f"\nbenchmarks done in {time.perf_counter() - started:.0f} s\n\n{summary}", flush=True)
    tables.append(summary)
    if cfg.output is not None:
        cfg.output.write_text("\n".join(tables))
    if cfg.json is not None:
        context["load_at_end"] = list(os.getloadavg())
        context["seconds"] = round(time.perf_counter() - started, 1)
        cfg.json.write_bytes(orjson.dumps(outcome.to_json(**context), option=orjson.OPT_INDENT_2))
    return outcome.exit_code()


def main(argv: list[str] | None = None) -> int:
    names, cfg = parse(argv if argv is not None else sys.argv[1:])
    return anyio.run(amain, names, cfg)
