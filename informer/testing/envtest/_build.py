"""Building the control-plane binaries from Go modules: :func:`build`.

The Go sources ship inside this package (``go/``): ``go/etcd/`` (a ``main.go``, its
``go.mod`` and ``go.sum``), ``go/kubernetes/cmd/{kube-apiserver,kube-controller-manager}/``
(thin ``main.go`` wrappers of the upstream commands) and one ``go.mod``/``go.sum`` per
supported Kubernetes version in ``go/kubernetes/<version>/``. A build copies one module
to a temporary folder next to the destination, runs ``go build`` there (``-trimpath``,
static, the version stamped as upstream does), and renames each binary into place, so a
folder never holds half a binary. Only missing binaries are built; an exclusive lock on
the destination keeps two builds from racing. Go's own caches (``GOMODCACHE``,
``GOCACHE``) make later builds fast.

While it builds it prints progress on ``stderr``: which binary, the time elapsed, and what
the first build takes (:data:`FIRST_BUILD_SECONDS`, measured on 2 cores with empty Go
caches); it ends with one summary line.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Final

from ._locate import CONTROLLER_MANAGER, BinariesNotFound, missing_binaries
from ._versions import Release

__all__ = ["FIRST_BUILD_SECONDS", "MIN_GO", "BuildFailed", "GoMissing", "build", "go_version"]

FIRST_BUILD_SECONDS: Final = {"etcd": 60, "kube-apiserver": 360, CONTROLLER_MANAGER: 150}
"""Seconds each binary takes to build the first time on 2 cores, in the order built
(kube-controller-manager reuses most of kube-apiserver's compiled packages): measured
with empty Go caches, 841 MB of modules downloaded, as 11 min of CPU in all (16 min 40 s
on a 2-core machine shared with other work)."""

PROGRESS_EVERY: Final = 30.0
"""Seconds between two progress lines while a binary builds."""

MIN_GO: Final = (1, 26)
"""The oldest Go that builds every supported release (Kubernetes 1.36's modules need it)."""

Say = Callable[[str], None]


class GoMissing(BinariesNotFound):
    """Go is needed to build the binaries and is not installed (or too old)."""


class BuildFailed(BinariesNotFound):
    """``go build`` failed; the message holds the end of its output."""


def go_version(go: str) -> tuple[int, int] | None:
    """``(major, minor)`` of the Go toolchain at ``go``, or None if it does not answer."""
    try:
        out = subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    return (int(match[1]), int(match[2])) if match else None


def build(rel: Release, folder: Path, names: Sequence[str], say: Say) -> list[str]:
    """Build the ``names`` missing from ``folder`` for ``rel``; return those built.

    Raises :class:`GoMissing` or :class:`BuildFailed`.
    """
    go = shutil.which("go")
    version = go_version(go) if go else None
    if go is None or version is None or version < MIN_GO:
        found = f"Go {version[0]}.{version[1]} is too old" if version else "Go is not installed"
        raise GoMissing(
            f"{found}, and {folder} lacks {', '.join(missing_binaries(folder, names))}: "
            f"install Go {MIN_GO[0]}.{MIN_GO[1]}+ (https://go.dev/dl/; the first build "
            f"takes about {_minutes(names)} min on 2 cores), or set KUBEBUILDER_ASSETS to "
            "a folder holding kube-apiserver and etcd (and kube-controller-manager), e.g. "
            "from another machine's `python -m informer.testing.envtest install`"
        )
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another build of this folder finishes first
        todo = missing_binaries(folder, names)
        with tempfile.TemporaryDirectory(prefix=".build-", dir=folder.parent) as tmp:
            for i, name in enumerate(todo, 1):
                _build_one(go, rel, name, Path(tmp), folder, say, f"{i}/{len(todo)}")
    return todo


def _minutes(names: Sequence[str]) -> int:
    return max(1, round(sum(FIRST_BUILD_SECONDS[n] for n in names) / 60))


def _build_one(
    go: str, rel: Release, name: str, tmp: Path, folder: Path, say: Say, step: str
) -> None:
    module = _copy_module(rel, name, tmp)
    output = tmp / f"{name}.out"
    version = rel.etcd if name == "etcd" else rel.kubernetes
    argv = [go, "build", "-trimpath", "-ldflags", _ldflags(name, rel), "-o", str(output)]
    argv.append("." if name == "etcd" else f"./cmd/{name}")
    env = {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
        "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -buildvcs=false -mod=readonly".strip(),
    }
    expected = FIRST_BUILD_SECONDS[name]
    say(
        f"building {name} {version} ({step}): the first build takes about "
        f"{_human(expected)} on 2 cores, later ones reuse Go's caches"
    )
    log_path = tmp / f"{name}.log"
    start = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, cwd=module, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            next_report = start + PROGRESS_EVERY
            while process.poll() is None:
                time.sleep(0.5)
                if time.monotonic() >= next_report:
                    elapsed = time.monotonic() - start
                    say(
                        f"building {name} {version}: {_human(elapsed)} elapsed "
                        f"(first build: ~{_human(expected)})"
                    )
                    next_report += PROGRESS_EVERY
        finally:  # interrupted (Ctrl-C, SIGTERM): the build does not outlive us
            if process.poll() is None:
                process.terminate()
                process.wait()
    if process.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise BuildFailed(
            f"`go build` of {name} {version} failed (exit {process.returncode}):\n{tail}"
        )
    os.chmod(output, 0o755)
    os.replace(output, folder / name)
    say(f"built {name} {version} in {_human(time.monotonic() - start)}")


def _copy_module(rel: Release, name: str, tmp: Path) -> Path:
    """The Go module building ``name``, copied out of the package into ``tmp``."""
    root = resources.files(__package__) / "go"
    with resources.as_file(root) as go_root:
        if name == "etcd":
            target = tmp / "etcd"
            shutil.copytree(go_root / "etcd", target, dirs_exist_ok=True)
            return target
        target = tmp / f"kubernetes-{rel.kubernetes}"
        if not target.exists():
            shutil.copytree(go_root / "kubernetes" / "cmd", target / "cmd")
            for file in ("go.mod", "go.sum"):
                shutil.copy(go_root / "kubernetes" / rel.kubernetes / file, target / file)
        return target


def _ldflags(name: str, rel: Release) -> str:
    if name == "etcd":
        return "-s -w"
    major, minor = rel.kubernetes.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return " ".join(
        [
            "-s -w",
            f"-X {pkg}.gitVersion={rel.kubernetes}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    )


def _human(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 100 else f"{seconds // 60} min {seconds % 60:02d} s"
