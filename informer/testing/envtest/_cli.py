"""``python -m informer.testing.envtest {install,path,versions}``.

``install [--k8s VERSION] [--dir DIR]`` locates or builds kube-apiserver, etcd and
kube-controller-manager (:func:`~._install.install`) and prints the folder as the last
line of stdout (progress goes to stderr); it exits 1 with one ``error:`` line when Go is
missing and nothing is cached, or a build fails. ``path [--k8s VERSION]
[--controller-manager]`` prints the folder the testing kit would use (or, when none holds
the binaries, where ``install`` would build them, exiting 1), and each folder searched on
stderr. ``versions`` lists the supported Kubernetes versions.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from ._install import ALL_BINARIES, install
from ._locate import (
    CONTROLLER_MANAGER,
    CORE_BINARIES,
    BinariesNotFound,
    candidates,
    find_binaries,
    user_cache_root,
)
from ._versions import PINNED, RELEASES, Release, release

__all__ = ["main"]

PROG = "python -m informer.testing.envtest"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the command; returns the exit code."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    # SIGTERM unwinds like Ctrl-C, so that a build in progress is stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        rel = release(args.k8s) if args.command != "versions" else PINNED
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "versions":
        for r in RELEASES:
            print(f"{r.kubernetes}{'  (pinned)' if r == PINNED else ''}")
        return 0
    if args.command == "path":
        return _path(rel, controller_manager=args.controller_manager, explicit=args.k8s)
    try:
        folder = install(rel, root=args.dir, use_environment=args.k8s is None, say=_say)
    except BinariesNotFound as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    print(folder, flush=True)
    return 0


def _say(line: str) -> None:
    print(f"control plane: {line}", file=sys.stderr, flush=True)


def _path(rel: Release, *, controller_manager: bool, explicit: str | None) -> int:
    names = [*CORE_BINARIES, *([CONTROLLER_MANAGER] if controller_manager else [])]
    for candidate in candidates(rel, environment=explicit is None):
        missing = candidate.missing(names)
        state = "ok" if not missing else f"no {', '.join(missing)}"
        _say(f"{candidate.source}: {candidate.folder} ({state})")
    try:
        folder = find_binaries(controller_manager=controller_manager, rel=rel)
    except BinariesNotFound:
        _say(f"not installed: `{PROG} install` builds them into the user cache")
        print(user_cache_root() / rel.folder_name, flush=True)
        return 1
    print(folder, flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    supported = ", ".join(r.kubernetes for r in RELEASES)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Get the binaries of kube-informer's test control plane (kube-apiserver, etcd, "
            "kube-controller-manager) without a checkout. They are looked for in "
            "$KUBEBUILDER_ASSETS, the user cache (~/.cache/kube-informer/control-plane), a "
            "kube-informer checkout's .cache/control-plane, then setup-envtest's folder; "
            "`install` builds missing ones from Go modules (needs Go)."
        ),
        epilog=f"supported Kubernetes versions: {supported} (default: {PINNED.kubernetes})",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    install_cmd = sub.add_parser(
        "install",
        help="locate or build the binaries; prints their folder as the last line",
        description=f"Locate or build {', '.join(ALL_BINARIES)}; the folder is printed last.",
    )
    path_cmd = sub.add_parser("path", help="print the folder the testing kit would use")
    for cmd in (install_cmd, path_cmd):
        cmd.add_argument(
            "--k8s",
            metavar="VERSION",
            help=f"Kubernetes version, e.g. 1.33 or v1.33.13 (default: {PINNED.kubernetes}); "
            "given, $KUBEBUILDER_ASSETS is not consulted",
        )
    install_cmd.add_argument(
        "--dir",
        type=Path,
        help="build into DIR/<version folder> (default: the user cache, unless the binaries "
        "are found elsewhere)",
    )
    path_cmd.add_argument(
        "--controller-manager",
        action="store_true",
        help="also require kube-controller-manager (ControlPlane(controller_manager=True))",
    )
    sub.add_parser("versions", help="list the supported Kubernetes versions")
    return parser
