"""Records of injected faults and the final table.

Evidence counts what the informers went through during a fault and its recovery (the
reflectors' ``on_watch_error`` callbacks and stats, summed over every informer): it
shows that a fault actually bit (a compaction that caused no 410 is visible as such).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["FaultRecord", "Resources", "evidence_text", "format_table"]

# Exception class names -> short labels in the evidence column.
_LABELS = {
    "ResourceExpired": "410",
    "TooManyRequests": "429",
    "Unauthorized": "401",
    "Forbidden": "403",
    "WatchDecodeError": "decode",
    "ConnectionFailed": "conn",
    "ServerError": "5xx",
}
_ORDER = ("410", "429", "401", "decode", "conn", "stall", "skipped", "relist")


@dataclass
class FaultRecord:
    """One fault: what it did, how long it held, the recovery, what went wrong."""

    name: str
    at: float  # seconds since the soak started
    held: float
    detail: str = ""
    recovery: float | None = None  # fault end -> caches and handlers equal fresh lists
    controllers: float | None = None  # fault end -> sample controllers' invariants hold
    failures: list[str] = field(default_factory=list)
    evidence: Counter[str] = field(default_factory=Counter)


@dataclass
class Resources:
    """Task count and RSS at the baseline, their bounds and the peaks seen at checks."""

    base_tasks: int
    base_rss_mib: float
    max_tasks: int
    max_rss_mib: float
    peak_tasks: int = 0
    peak_rss_mib: float = 0.0

    def observe(self, tasks: int, rss_mib: float) -> list[str]:
        self.peak_tasks = max(self.peak_tasks, tasks)
        self.peak_rss_mib = max(self.peak_rss_mib, rss_mib)
        problems = []
        if tasks > self.max_tasks:
            problems.append(f"{tasks} tasks > bound {self.max_tasks} (baseline {self.base_tasks})")
        if rss_mib > self.max_rss_mib:
            problems.append(
                f"RSS {rss_mib:.0f} MiB > bound {self.max_rss_mib:.0f} MiB "
                f"(baseline {self.base_rss_mib:.0f} MiB)"
            )
        return problems

    def text(self) -> str:
        return (
            f"tasks {self.base_tasks} -> peak {self.peak_tasks} (bound {self.max_tasks}), "
            f"RSS {self.base_rss_mib:.0f} -> peak {self.peak_rss_mib:.0f} MiB "
            f"(bound {self.max_rss_mib:.0f} MiB)"
        )


def label(error_type: str) -> str:
    return _LABELS.get(error_type, error_type)


def evidence_text(evidence: Counter[str]) -> str:
    keys = [k for k in _ORDER if evidence.get(k)]
    keys += sorted(k for k in evidence if k not in _ORDER and evidence[k])
    return " ".join(f"{k}:{evidence[k]}" for k in keys) or "-"


def _seconds(values: Sequence[float]) -> tuple[str, str]:
    if not values:
        return "-", "-"
    return f"{statistics.median(values):.2f}", f"{max(values):.2f}"


def format_table(records: Iterable[FaultRecord], names: Sequence[str]) -> str:
    """One row per fault kind (in ``names`` order, then any other): count, recoveries,
    recovery p50/max, controllers' p50/max, failed faults, summed evidence."""
    by_name: dict[str, list[FaultRecord]] = {n: [] for n in names}
    for r in records:
        by_name.setdefault(r.name, []).append(r)
    header = (
        f"{'fault':<18} {'count':>5} {'recovered':>9} {'p50 s':>6} {'max s':>6} "
        f"{'ctrl p50':>8} {'ctrl max':>8} {'failed':>6}  evidence"
    )
    lines = [header, "-" * len(header)]
    totals = [0, 0, 0]
    for name, rs in by_name.items():
        recoveries = [r.recovery for r in rs if r.recovery is not None]
        settled = [r.controllers for r in rs if r.controllers is not None]
        failed = sum(1 for r in rs if r.failures)
        evidence: Counter[str] = Counter()
        for r in rs:
            evidence.update(r.evidence)
        p50, worst = _seconds(recoveries)
        c50, cworst = _seconds(settled)
        lines.append(
            f"{name:<18} {len(rs):>5} {len(recoveries):>9} {p50:>6} {worst:>6} "
            f"{c50:>8} {cworst:>8} {failed:>6}  {evidence_text(evidence)}"
        )
        totals[0] += len(rs)
        totals[1] += len(recoveries)
        totals[2] += failed
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<18} {totals[0]:>5} {totals[1]:>9} {'':>6} {'':>6} {'':>8} {'':>8} "
        f"{totals[2]:>6}"
    )
    return "\n".join(lines)
