"""``python -m hack.chaos [--seed N] [--duration SECONDS] [--faults a,b,...] [--sharded]``.

``--sharded`` runs the sharded soak instead (:mod:`hack.chaos.sharded`): ``--replicas``
runner processes in one shard group under the same faults plus replica kills, stops and
joins.

Exit status: 0 when every fault recovered and every check held, 1 on any divergence,
2 on a usage error or when the control plane could not be driven. Progress lines and the
final table go to stdout; the library's logs go to ``--log-file``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import anyio
import structlog

from informer import InformerError

from .faults import DEFAULT_FAULTS, FAULTS
from .report import format_table
from .sharded import REPLICA_FAULTS, SHARDED_FAULTS, ShardedConfig, run_sharded, summary
from .soak import SoakConfig, SoakResult, run_soak


def _faults(text: str) -> tuple[str, ...]:
    """Fault names (checked against the mode once it is known), or ``()`` for 'all'."""
    if text == "all":
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    known = {*FAULTS, *REPLICA_FAULTS}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown fault(s) {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join(known)}, or 'all'"
        )
    return names


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hack.chaos",
        description="Chaos soak: informers and the sample controllers against a real "
        "control plane under injected faults; exits 1 on any divergence.",
    )
    parser.add_argument(
        "--seed", type=int, help="seed of the fault and write sequences (default: random, printed)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="time spent injecting faults, after startup (default 600)",
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        default=(),
        metavar="A,B,...",
        help=f"comma list of {', '.join(FAULTS)}; with --sharded also "
        f"{', '.join(REPLICA_FAULTS)} and not token-rotation (default: all of the mode's)",
    )
    parser.add_argument(
        "--sharded",
        action="store_true",
        help="the sharded soak: runner replicas in one shard group (key mode)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=3,
        metavar="N",
        help="--sharded: replicas kept running (default 3)",
    )
    parser.add_argument(
        "--rate", type=float, default=8.0, metavar="WRITES_PER_S", help="writer rate (default 8)"
    )
    parser.add_argument(
        "--recovery-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a fault may take to converge (default 30)",
    )
    parser.add_argument(
        "--inactivity-timeout",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="the informers' watch inactivity timeout (default 3)",
    )
    parser.add_argument(
        "--log-file", type=Path, help="library logs (default: a file in the temp folder, printed)"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning"],
        help="level of the library logs (default info)",
    )
    ns = parser.parse_args(argv)
    allowed = SHARDED_FAULTS if ns.sharded else DEFAULT_FAULTS
    if not ns.faults:
        ns.faults = allowed
    elif wrong := [n for n in ns.faults if n not in allowed]:
        mode = "with" if ns.sharded else "without"
        parser.error(f"--faults: {', '.join(wrong)} not available {mode} --sharded")
    if ns.replicas < 2:
        parser.error("--replicas: at least 2")
    return ns


def _configure_logging(path: Path, level: int) -> TextIO:
    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the whole run
    # The fault proxy's TLS listener sees handshakes broken on purpose (cuts, kills):
    # anyio logs each with a traceback; they belong in the log file, not the report.
    tls = logging.getLogger("anyio.streams.tls")
    tls.propagate = False
    tls.addHandler(logging.StreamHandler(out))
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    return out


def _summary(cfg: SoakConfig, result: SoakResult) -> str:
    recovered = sum(1 for r in result.records if r.recovery is not None)
    failed = sum(1 for r in result.records if r.failures)
    verdict = "OK" if result.ok else "DIVERGED"
    w = result.writer
    parts = [
        f"chaos {verdict}: seed={cfg.seed}",
        f"{len(result.records)} faults",
        f"{recovered} recoveries",
        f"{failed} failed",
        f"{w.writes} writes ({w.failed} failed)",
    ]
    if result.resources is not None:
        parts.append(result.resources.text())
    parts.append(f"{result.elapsed:.0f}s in all")
    return ", ".join(parts)


def main_sharded(ns: argparse.Namespace, seed: int, say: Callable[[str], None]) -> int:
    cfg = ShardedConfig(
        seed=seed,
        duration=ns.duration,
        faults=ns.faults,
        replicas=ns.replicas,
        rate=ns.rate,
        recovery_timeout=max(ns.recovery_timeout, 45.0),
    )
    with tempfile.TemporaryDirectory(prefix="kube-informer-chaos-sharded-") as tmp:
        try:
            result = anyio.run(run_sharded, cfg, say, Path(tmp))
        except (InformerError, OSError) as exc:
            say(f"chaos: could not run: {type(exc).__name__}: {exc}")
            return 2
    say("")
    say(format_table(result.records, cfg.faults))
    say("(ctrl = until every live replica cleared one view of all live replicas)")
    for failure in result.failures:
        say(f"FAILED: {failure}")
    say(summary(cfg, result))
    return 0 if result.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    ns = parse_args(sys.argv[1:] if argv is None else argv)
    seed = ns.seed if ns.seed is not None else random.SystemRandom().randrange(1_000_000)
    cfg = SoakConfig(
        seed=seed,
        duration=ns.duration,
        faults=ns.faults,
        rate=ns.rate,
        recovery_timeout=ns.recovery_timeout,
        inactivity_timeout=ns.inactivity_timeout,
    )
    log_path = ns.log_file or Path(tempfile.gettempdir()) / f"kube-informer-chaos-{os.getpid()}.log"
    log_file = _configure_logging(log_path, logging.getLevelNamesMapping()[ns.log_level.upper()])

    def say(line: str) -> None:
        print(line, flush=True)

    say(f"library logs: {log_path}")
    if ns.sharded:
        try:
            return main_sharded(ns, seed, say)
        finally:
            log_file.close()
    try:
        result = anyio.run(run_soak, cfg, say)
    except (InformerError, OSError) as exc:
        say(f"chaos: could not run: {type(exc).__name__}: {exc}")
        return 2
    finally:
        log_file.close()
    say("")
    say(format_table(result.records, cfg.faults))
    for failure in result.failures:
        say(f"FAILED: {failure}")
    for name, text in result.reconciles.items():
        say(f"{name}: {text}")
    if result.writer.errors:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(result.writer.errors.items()))
        say(f"writer: {result.writer.writes} writes, failed: {errors}")
    if result.handler_events:
        say(f"handler views: {result.handler_events}")
    say(_summary(cfg, result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
