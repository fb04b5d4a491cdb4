"""``install``: the binaries of one release located, or built into a cache folder.

:func:`install` returns the folder holding kube-apiserver, etcd and
kube-controller-manager for a release, building what is missing (:mod:`._build`):

- ``$KUBEBUILDER_ASSETS``, when set (and no other release is asked for), is used as is,
  as by the build script it replaces: it must hold kube-apiserver and etcd; without
  kube-controller-manager a warning says that ``ControlPlane(controller_manager=True)``
  will not start;
- with ``root`` (``--dir``; ``make`` passes the checkout's ``.cache/control-plane``), the
  binaries are in, or built into, ``root/<release folder>``;
- otherwise the folders of :func:`~._locate.candidates` are searched, and missing
  binaries are built into the user cache.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from ._build import build
from ._locate import (
    ASSETS_VARIABLE,
    CONTROLLER_MANAGER,
    CORE_BINARIES,
    BinariesNotFound,
    candidates,
    missing_binaries,
    user_cache_root,
)
from ._versions import Release

__all__ = ["ALL_BINARIES", "install"]

ALL_BINARIES = (*CORE_BINARIES, CONTROLLER_MANAGER)


def install(
    rel: Release,
    *,
    root: Path | None = None,
    use_environment: bool = True,
    say: Callable[[str], None],
) -> Path:
    """The folder holding every binary of ``rel`` (see the module docstring); ``say``
    receives progress lines. Raises :class:`~._locate.BinariesNotFound` (or its
    subclasses ``GoMissing``, ``BuildFailed``)."""
    start = time.monotonic()
    assets = os.environ.get(ASSETS_VARIABLE)
    if use_environment and assets:
        folder = Path(assets)
        missing = missing_binaries(folder, ALL_BINARIES)
        if [m for m in missing if m != CONTROLLER_MANAGER]:
            raise BinariesNotFound(
                f"{ASSETS_VARIABLE}={assets} has no {' or '.join(missing)}: point it at a "
                f"folder holding {', '.join(ALL_BINARIES)}, or unset it to build them"
            )
        if missing:
            say(
                f"warning: {ASSETS_VARIABLE}={assets} has no {CONTROLLER_MANAGER}: "
                "ControlPlane(controller_manager=True) will not start (unset "
                f"{ASSETS_VARIABLE} to build one)"
            )
        say(f"using {ASSETS_VARIABLE}={assets}")
        return folder
    if root is None:
        for candidate in candidates(rel, environment=False):
            if not candidate.missing(ALL_BINARIES):
                say(f"{rel}: found in {candidate.source}, {candidate.folder}")
                return candidate.folder
        folder = user_cache_root() / rel.folder_name
    else:
        folder = root.absolute() / rel.folder_name
        if not missing_binaries(folder, ALL_BINARIES):
            say(f"{rel}: cached in {folder}")
            return folder
    built = build(rel, folder, ALL_BINARIES, say)
    seconds = round(time.monotonic() - start)
    say(f"{rel}: built {', '.join(built)} in {seconds} s into {folder}")
    return folder
