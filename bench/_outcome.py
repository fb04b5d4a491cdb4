"""What each row of a run measured, or why it did not: the run's exit status.

Every benchmark records one :class:`Row` per table row (per case: kind or data set) in
the run's :class:`Outcome`. A row is

- ``ok``: it holds a figure (``value``, a positive finite number in ``unit``);
- ``failed``: the measurement went wrong (the peer raised, timed out, exited non-zero,
  received fewer events or objects than were sent, or a peer asked for by ``--peers`` is
  not available here);
- ``skipped``: a peer nobody asked for by name is not available here (not installed,
  client-go not built), or a configured limit excludes it (``--kopf-max-objects``).

``python -m bench`` exits non-zero when any row failed (:meth:`Outcome.exit_code`), and
prints :meth:`Outcome.summary` last. ``--json`` writes :meth:`Outcome.to_json`.
Only the benchmark coroutines add rows, one after another (no locking).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class Row:
    benchmark: str
    """``throughput``, ``sync``, ``memory``, ``latency``."""
    case: str
    """The input: ``deployments``/``configmaps`` (throughput), a data set label (sync),
    ``transform on``/``off`` (memory), ``""`` (latency)."""
    client: str
    """The row's label in the table."""
    peer: str
    """The peer's ``--peers`` name (``""`` for a row about the whole benchmark)."""
    status: Status
    value: float | None = None
    unit: str = ""
    reason: str = ""
    figures: dict[str, float] = field(default_factory=dict)
    """Other figures of the row, by name (``peak_rss_mb``, ``p99_ms``, ``objects``...):
    what ``python -m bench.charts`` draws besides ``value``."""


class Outcome:
    """The rows of one ``python -m bench`` run.

    ``requested``: the peers named by ``--peers`` (``None``: none named, i.e. all that
    are available). A named peer that cannot run is a failure; an unnamed one a skip.
    """

    def __init__(self, requested: Collection[str] | None = None) -> None:
        self.requested = frozenset(requested) if requested is not None else None
        self.rows: list[Row] = []

    def explicit(self, peer: str) -> bool:
        return self.requested is not None and peer in self.requested

    def ok(
        self,
        benchmark: str,
        case: str,
        client: str,
        peer: str,
        value: float | None,
        unit: str,
        figures: Mapping[str, float | None] | None = None,
    ) -> str | None:
        """Record a figure (and ``figures``, the row's others: those that are ``None`` or
        not finite are left out); a missing, zero, negative or non-finite ``value`` is a
        failure.

        Returns ``None``, or the table cell for the failure.
        """
        if value is None or not math.isfinite(value) or value <= 0:
            return self.failed(benchmark, case, client, peer, f"no usable figure ({value!r})")
        extra = {
            k: float(v) for k, v in (figures or {}).items() if v is not None and math.isfinite(v)
        }
        self.rows.append(Row(benchmark, case, client, peer, "ok", float(value), unit, "", extra))
        return None

    def failed(self, benchmark: str, case: str, client: str, peer: str, reason: str) -> str:
        """Record a failed measurement; returns the table cell (``FAILED: ...``)."""
        reason = _one_line(reason)
        self.rows.append(Row(benchmark, case, client, peer, "failed", reason=reason))
        return f"FAILED: {reason}"

    def skipped(self, benchmark: str, case: str, client: str, peer: str, reason: str) -> str:
        """Record a row left out on purpose (a configured limit); returns the cell."""
        reason = _one_line(reason)
        self.rows.append(Row(benchmark, case, client, peer, "skipped", reason=reason))
        return f"skipped: {reason}"

    def unavailable(self, benchmark: str, case: str, client: str, peer: str, why: str) -> str:
        """A peer that cannot run here: failed if ``--peers`` named it, else skipped."""
        if self.explicit(peer):
            return self.failed(benchmark, case, client, peer, f"requested but unavailable: {why}")
        return self.skipped(benchmark, case, client, peer, f"{why} (not requested by --peers)")

    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.status == "failed"]

    def exit_code(self) -> int:
        return 1 if self.failures() else 0

    def summary(self) -> str:
        """The run's verdict: every failure, and each skipped peer once per reason."""
        ok = sum(r.status == "ok" for r in self.rows)
        failures = self.failures()
        lines = []
        skips: dict[tuple[str, str], list[str]] = {}
        for r in self.rows:
            if r.status == "skipped":
                skips.setdefault((r.peer or r.benchmark, r.reason), []).append(r.benchmark)
        if failures:
            lines.append(f"FAILED: {len(failures)} of {len(self.rows)} rows")
            lines += [f"- {_where(r)}: {r.reason}" for r in failures]
        else:
            lines.append(f"OK: all {ok} measured rows hold a figure")
        if skips:
            lines.append(f"skipped ({sum(len(v) for v in skips.values())} rows):")
            for (who, reason), benches in skips.items():
                lines.append(f"- {who} in {', '.join(dict.fromkeys(benches))}: {reason}")
        return "\n".join(lines) + "\n"

    def to_json(self, **context: Any) -> dict[str, Any]:
        """The run as JSON: its verdict, every row, and ``context`` (the machine, the load
        and the time of the run)."""
        return {
            **context,
            "exit_code": self.exit_code(),
            "requested_peers": sorted(self.requested) if self.requested is not None else None,
            "rows": [asdict(r) for r in self.rows],
        }


def _where(r: Row) -> str:
    return " / ".join(p for p in (r.benchmark, r.case, r.client) if p)


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "failed")[:160]
