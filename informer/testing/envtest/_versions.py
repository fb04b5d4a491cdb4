"""The Kubernetes versions the test control plane can be built for.

Each :class:`Release` pairs a Kubernetes version with the etcd built next to it, and has
its own ``go.mod``/``go.sum`` under ``go/kubernetes/<version>/`` (resolved through the Go
module proxy, so a build downloads exactly the modules pinned there). The newest is
:data:`PINNED`: what the kit, the pytest plugin and ``make test`` use. The oldest is what
``make test-compat`` runs the core of the suite against. The range covers the last four
minor versions, as users on managed clusters lag the newest release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["ETCD_VERSION", "PINNED", "RELEASES", "Release", "release"]

ETCD_VERSION: Final = "v3.6.16"
"""The etcd built for every release (etcd 3.6 serves kube-apiserver 1.33 and newer)."""


@dataclass(frozen=True)
class Release:
    """A Kubernetes version (``v1.36.3``) and the etcd version built with it."""

    kubernetes: str
    etcd: str = ETCD_VERSION

    @property
    def minor(self) -> str:
        """``1.36``."""
        return ".".join(self.kubernetes.lstrip("v").split(".")[:2])

    @property
    def folder_name(self) -> str:
        """The binaries' folder under a cache root: ``k8s-v1.36.3-etcd-v3.6.16``."""
        return f"k8s-{self.kubernetes}-etcd-{self.etcd}"

    def __str__(self) -> str:
        return f"Kubernetes {self.kubernetes} (etcd {self.etcd})"


RELEASES: Final = (
    Release("v1.33.13"),
    Release("v1.34.4"),
    Release("v1.35.4"),
    Release("v1.36.3"),
)
"""Every supported release, oldest first."""

PINNED: Final = RELEASES[-1]
"""The release used unless another is asked for."""

_SPEC = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")


def release(spec: str | None = None) -> Release:
    """The supported release ``spec`` names: ``1.33``, ``v1.33`` (that minor version's
    pinned patch), ``1.33.13`` or ``v1.33.13``; :data:`PINNED` for ``None``. Raises
    ``ValueError`` listing the supported versions otherwise."""
    if spec is None:
        return PINNED
    match = _SPEC.match(spec.strip())
    if match is not None:
        major, minor, patch = match.groups()
        for candidate in RELEASES:
            if candidate.minor == f"{major}.{minor}" and (
                patch is None or candidate.kubernetes == f"v{major}.{minor}.{patch}"
            ):
                return candidate
    supported = ", ".join(r.kubernetes for r in RELEASES)
    raise ValueError(f"unsupported Kubernetes version {spec!r}: pick one of {supported}")
