"""Options shared by the benchmarks (filled from the command line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Config:
    quick: bool = False
    repeat: int = 3
    events: int = 20_000
    objects: int = 1_000
    peers: set[str] | None = None
    """Only these peers (None: all). A named peer that cannot run is a failure."""
    build_go: bool = True
    sync_sizes: dict[str, int] = field(
        default_factory=lambda: {"cm10k": 10_000, "cm100k": 100_000, "deploy20k": 20_000}
    )
    scale_sizes: tuple[int, ...] = (10_000, 50_000, 100_000, 200_000)
    """``scale``: the ConfigMap counts the data set grows through."""
    scale_large_repeat: int = 2
    """``scale``: rounds at sizes above 100k (at most ``repeat``)."""
    kopf_max_objects: int = 20_000
    latency_rate: float = 50.0
    latency_seconds: float = 20.0
    latency_peers_timeout: float = 120.0
    timeout: float = 600.0
    profile_dir: Path | None = None
    output: Path | None = None
    json: Path | None = None
    names_explicit: bool = False
    """Benchmarks were named on the command line (one that cannot run then fails)."""

    def wants(self, peer: str) -> bool:
        return self.peers is None or peer in self.peers


QUICK = {
    "repeat": 1,
    "events": 2_000,
    "objects": 200,
    "sync_sizes": {"cm10k": 200, "deploy20k": 100},
    "latency_rate": 20.0,
    "latency_seconds": 1.5,
    "timeout": 60.0,
}
