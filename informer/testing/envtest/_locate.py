"""Where the control-plane binaries are found, in order, with no environment variable
needed:

1. ``$KUBEBUILDER_ASSETS`` (controller-runtime's envtest convention), when set: used as
   is, never passed over (it says which binaries to use);
2. the user cache, ``$XDG_CACHE_HOME/kube-informer/control-plane/<release>/``
   (``~/.cache/kube-informer/...`` by default, as platformdirs has it on Linux), where
   ``python -m informer.testing.envtest install`` builds;
3. a kube-informer checkout's ``.cache/control-plane/<release>/`` (the checkout the
   imported ``informer`` package lives in), where ``make test`` builds;
4. setup-envtest's default folder,
   ``$XDG_DATA_HOME/kubebuilder-envtest/k8s/<version>-linux-<arch>/``
   (``~/.local/share/...``): kube-apiserver and etcd only, no kube-controller-manager.

``<release>`` is :attr:`Release.folder_name` of the pinned release unless another is
asked for. A folder qualifies when it holds every binary asked for, executable.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..._exceptions import InformerError
from ._versions import Release, release

__all__ = [
    "CONTROLLER_MANAGER",
    "CORE_BINARIES",
    "BinariesNotFound",
    "Candidate",
    "candidates",
    "checkout_root",
    "find_binaries",
    "missing_binaries",
    "user_cache_root",
]

CORE_BINARIES: Final = ("kube-apiserver", "etcd")
CONTROLLER_MANAGER: Final = "kube-controller-manager"
ASSETS_VARIABLE: Final = "KUBEBUILDER_ASSETS"
INSTALL_COMMAND: Final = "python -m informer.testing.envtest install"


class BinariesNotFound(InformerError):
    """No folder holds the control-plane binaries asked for; the message says where it
    looked and how to get them."""


@dataclass(frozen=True)
class Candidate:
    """A folder the binaries may be in, and where that folder comes from (``source``)."""

    source: str
    folder: Path

    def missing(self, names: Sequence[str]) -> list[str]:
        return missing_binaries(self.folder, names)


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME/kube-informer/control-plane`` (``~/.cache/...`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "kube-informer" / "control-plane"


def checkout_root() -> Path | None:
    """The kube-informer checkout the imported ``informer`` package belongs to (an
    editable install), or ``None`` for an installed wheel."""
    root = Path(__file__).resolve().parents[3]
    pyproject = root / "pyproject.toml"
    try:
        is_ours = 'name = "kube-informer"' in pyproject.read_text()
    except OSError:
        return None
    return root if is_ours and (root / "informer" / "testing").is_dir() else None


def _setup_envtest_folder(rel: Release) -> Path:
    base = os.environ.get("XDG_DATA_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return root / "kubebuilder-envtest" / "k8s" / f"{rel.kubernetes.lstrip('v')}-linux-{arch}"


def candidates(rel: Release | None = None, *, environment: bool = True) -> list[Candidate]:
    """The folders searched for ``rel`` (default: the pinned release), in order;
    ``environment=False`` leaves ``$KUBEBUILDER_ASSETS`` out."""
    rel = rel or release()
    found: list[Candidate] = []
    assets = os.environ.get(ASSETS_VARIABLE)
    if environment and assets:
        found.append(Candidate(f"${ASSETS_VARIABLE}", Path(assets)))
    found.append(Candidate("the user cache", user_cache_root() / rel.folder_name))
    checkout = checkout_root()
    if checkout is not None:
        found.append(
            Candidate("the checkout", checkout / ".cache" / "control-plane" / rel.folder_name)
        )
    found.append(Candidate("setup-envtest's folder", _setup_envtest_folder(rel)))
    return found


def missing_binaries(folder: Path, names: Sequence[str]) -> list[str]:
    """The ``names`` that are not executable files in ``folder``."""
    return [n for n in names if not (folder / n).is_file() or not os.access(folder / n, os.X_OK)]


def find_binaries(
    *,
    controller_manager: bool = False,
    assets_dir: str | os.PathLike[str] | None = None,
    rel: Release | None = None,
) -> Path:
    """The folder holding kube-apiserver and etcd (and kube-controller-manager with
    ``controller_manager=True``): ``assets_dir`` when given, else the first qualifying
    folder of :func:`candidates`. ``$KUBEBUILDER_ASSETS``, when set, is the answer or
    the error. Raises :class:`BinariesNotFound` saying where it looked and how to get
    the binaries."""
    names = [*CORE_BINARIES, *([CONTROLLER_MANAGER] if controller_manager else [])]
    if assets_dir is not None:
        pool = [Candidate(f"assets_dir={os.fspath(assets_dir)!r}", Path(assets_dir))]
    else:
        pool = candidates(rel)
        if pool[0].source == f"${ASSETS_VARIABLE}":
            pool = pool[:1]
    for candidate in pool:
        if not candidate.missing(names):
            return candidate.folder
    raise BinariesNotFound(_not_found(pool, names, rel or release()))


def _not_found(pool: Sequence[Candidate], names: Sequence[str], rel: Release) -> str:
    looked = "; ".join(
        f"{c.source} {c.folder} has no {' or '.join(c.missing(names))}" for c in pool
    )
    wanted = ", ".join(names)
    how = f"run `{INSTALL_COMMAND}"
    how += "`" if rel == release() else f" --k8s {rel.kubernetes}`"
    how += " (builds them from Go modules, needs Go; in a kube-informer checkout, "
    how += "`make control-plane`)"
    if len(pool) == 1 and pool[0].source.startswith("$"):
        how += f", or point {ASSETS_VARIABLE} at a folder holding {wanted}, or unset it"
    return f"control-plane binaries not found ({wanted} for {rel}): {looked}; {how}"
