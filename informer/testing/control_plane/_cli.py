"""``python -m informer.testing.control_plane [--dir DIR] [...] [-- APISERVER_FLAGS]``.

Starts a control plane, prints ``kubeconfig: PATH``, ``apiserver: URL`` and an
``export KUBECONFIG=PATH`` line on stdout, and runs until SIGINT/SIGTERM/SIGHUP, then
stops the children and exits 0. Exits 1 when the control plane fails to start or a
child dies. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
import structlog

from ._plane import ControlPlane
from ._process import ControlPlaneError

__all__ = ["main", "run_foreground"]

log = structlog.get_logger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the command (the module docstring); returns the exit code."""
    return run_foreground(sys.argv[1:] if argv is None else argv)


def run_foreground(argv: Sequence[str]) -> int:
    """Parse ``argv``, run a control plane until a signal; return the exit code."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    ns = _parse_args(argv)
    return anyio.run(_serve, ns)


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m informer.testing.control_plane",
        description=(
            "Run a local etcd + kube-apiserver (+ kube-controller-manager) in the foreground "
            "until Ctrl-C or SIGTERM. "
            "Arguments after `--` go to kube-apiserver."
        ),
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="state folder to use (kept after exit; its kubeconfig path is stable) "
        "instead of a temporary folder",
    )
    parser.add_argument(
        "--assets-dir",
        type=Path,
        help="folder holding the binaries (default: $KUBEBUILDER_ASSETS, the user cache, "
        "this checkout's .cache/control-plane, setup-envtest's folder)",
    )
    parser.add_argument(
        "--controller-manager",
        action="store_true",
        help="also run kube-controller-manager (garbage collector, namespace and "
        "service-account controllers)",
    )
    parser.add_argument("--start-timeout", type=float, default=90.0, metavar="SECONDS")
    parser.add_argument(
        "--apiserver-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra kube-apiserver flag, e.g. --apiserver-arg=--watch-cache=false (repeatable)",
    )
    parser.add_argument(
        "--etcd-arg", action="append", default=[], metavar="FLAG", help="extra etcd flag"
    )
    parser.add_argument(
        "--controller-manager-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra kube-controller-manager flag (with --controller-manager)",
    )
    ns = parser.parse_args(argv)
    ns.apiserver_arg += passthrough
    return ns


async def _serve(ns: argparse.Namespace) -> int:
    code = 0
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                async for signum in signals:
                    log.info("control_plane.signal", signal=signal.Signals(signum).name)
                    tg.cancel_scope.cancel()
                    return

            tg.start_soon(stop_on_signal)
            cp = ControlPlane(
                apiserver_args=ns.apiserver_arg,
                etcd_args=ns.etcd_arg,
                assets_dir=ns.assets_dir,
                start_timeout=ns.start_timeout,
                state_dir=ns.dir,
                controller_manager=ns.controller_manager,
                controller_manager_args=ns.controller_manager_arg,
            )
            try:
                async with cp:
                    print(f"kubeconfig: {cp.kubeconfig_path}", flush=True)
                    print(f"apiserver: {cp.host}", flush=True)
                    print(f"export KUBECONFIG={shlex.quote(str(cp.kubeconfig_path))}", flush=True)
                    dead = await cp.wait_child_exit()
                    raise ControlPlaneError(
                        f"{dead} exited unexpectedly; last lines of its log:\n{cp.log_tail(dead)}"
                    )
            except ControlPlaneError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                code = 1
            tg.cancel_scope.cancel()
    return code
