"""What a reconcile returns (:class:`Result`) and how reconciles are counted.

:class:`ReconcileStats` (``Controller.stats``) counts reconciles by outcome
(``success``, ``error``, ``requeue``, ``requeue_after``), drops, and durations, and calls
registered observers, so a metrics exporter can publish controller-runtime's
``controller_runtime_reconcile_total``, ``..._reconcile_errors_total``,
``..._reconcile_time_seconds`` and ``..._active_workers``. Only the controller's workers
write it, on the event loop; observers are called synchronously and must not block.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ReconcileOutcome", "ReconcileStats", "Result"]

ReconcileOutcome = Literal["success", "error", "requeue", "requeue_after"]
"""The ``result`` label of ``controller_runtime_reconcile_total``."""


@dataclass(frozen=True, slots=True)
class Result:
    """What :meth:`~informer.Controller.reconcile` asks for once it succeeded.

    ``requeue_after``: reconcile the key again after this many seconds (it is forgotten
    by the rate limiter first: this is a schedule, not a failure); ``0`` or ``None``
    means no timed requeue. ``requeue``: reconcile again after the rate limiter's
    backoff (it grows the backoff like a failure, but does not spend ``max_retries``).
    ``requeue_after`` wins when both are set.
    """

    requeue: bool = False
    requeue_after: float | None = None

    def __post_init__(self) -> None:
        after = self.requeue_after
        if after is not None and not (after >= 0 and math.isfinite(after)):
            raise ValueError(f"requeue_after must be a finite number >= 0, got {after!r}")


@dataclass
class ReconcileStats:
    """Counters of one controller's reconciles (read by a metrics exporter).

    ``total`` counts finished reconciles by outcome; ``errors`` equals
    ``total["error"]``; ``dropped`` counts keys given up after ``max_retries``;
    ``duration_seconds_sum`` / ``duration_seconds_count`` describe how long reconciles
    took (each observer also receives every single duration, for histograms);
    ``active_workers`` is the number of reconciles in flight; ``workers`` the configured
    maximum (``controller_runtime_max_concurrent_reconciles``).
    """

    workers: int = 1
    total: dict[ReconcileOutcome, int] = field(
        default_factory=lambda: {"success": 0, "error": 0, "requeue": 0, "requeue_after": 0}
    )
    dropped: int = 0
    active_workers: int = 0
    duration_seconds_sum: float = 0.0
    duration_seconds_count: int = 0
    observers: list[Callable[[ReconcileOutcome, float], None]] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.total["error"]

    def observe(self, outcome: ReconcileOutcome, seconds: float) -> None:
        """Record one finished reconcile; observers are called synchronously."""
        self.total[outcome] += 1
        self.duration_seconds_sum += seconds
        self.duration_seconds_count += 1
        for observer in self.observers:
            observer(outcome, seconds)
