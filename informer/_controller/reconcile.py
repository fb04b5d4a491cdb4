"""What a reconcile returns (:class:`Result`), what the controller does with each outcome
(:class:`OutcomePolicy`), and how reconciles are counted (:class:`ReconcileStats`).

The outcome policy is client-go's ``handle_err`` (``examples/workqueue``): retries are not
the reconciler's business; ``reconcile(key)`` returns a :class:`Result` (or ``None``) or
raises, and this one table decides what happens to the key:

=============================== =====================================================
``reconcile`` outcome           what the controller does
=============================== =====================================================
returns ``None`` / ``Result()`` ``forget(key)`` (its failure count resets)
``Result(requeue_after=s)``     ``forget(key)``, then ``add_after(key, s)`` (``s > 0``)
``Result(requeue=True)``        ``add_rate_limited(key)`` (the limiter's backoff)
raises ``Conflict`` (409,       ``add_rate_limited(key)`` and log ``reconcile.conflict``
``AlreadyExists`` included)     (info, with the key and the error): a routine race with
                                another writer or a cache behind the server, retried on
                                the next state; it neither spends nor resets
                                ``max_retries`` and is not an absorbed failure
raises another ``Exception``    below ``max_retries`` failures in a row:
                                ``add_rate_limited(key)`` and log ``reconcile.failed``
                                (warning, with the traceback); otherwise ``forget(key)``
                                and log ``reconcile.dropped`` (error). A key is thus
                                reconciled at most ``1 + max_retries`` times in a row
                                while it keeps failing; any new event for it starts over.
not admitted by the key gate    ``forget(key)``, no reconcile (the gate re-adds it)
=============================== =====================================================

``requeue_after`` wins over ``requeue`` when both are set (as in controller-runtime).
Every exception but a ``Conflict`` reaches the failure hooks (``informer._failures``, kind
``reconcile``), so the pytest plugin fails a test on it. A ``Conflict`` is what
controller-runtime users turn into ``Result{Requeue: true}`` by hand (controller-runtime
itself counts it as an error); a reconcile that conflicts every time (writing at a
resourceVersion its cache never catches up with) is retried with the limiter's growing
backoff, and each retry is logged.

:class:`ReconcileStats` (``Controller.stats``) counts reconciles by outcome
(``success``, ``error``, ``requeue``, ``requeue_after``, and ``conflict``, a result
controller-runtime does not have: a conflict is neither an error nor asked for), drops,
and durations, and calls registered observers, so a metrics exporter can publish
controller-runtime's ``controller_runtime_reconcile_total`` (``result="conflict"`` for
conflicts; they are not in the errors total), ``..._reconcile_errors_total``,
``..._reconcile_time_seconds`` and ``..._active_workers``. Only the controller's workers
write it and call the policy, on the event loop; observers are called synchronously and
must not block.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import structlog

from .._exceptions import Conflict
from .._failures import report_failure

__all__ = ["OutcomePolicy", "ReconcileOutcome", "ReconcileStats", "RequeueQueue", "Result"]

log = structlog.get_logger(__name__)

ReconcileOutcome = Literal["success", "error", "requeue", "requeue_after", "conflict"]
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
        default_factory=lambda: {
            "success": 0,
            "error": 0,
            "requeue": 0,
            "requeue_after": 0,
            "conflict": 0,
        }
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


class RequeueQueue(Protocol):
    """What the policy uses of the work queue (a
    :class:`~informer.workqueue.RateLimitingQueue`)."""

    def forget(self, item: str, /) -> None: ...

    def add_after(self, item: str, seconds: float, /) -> None: ...

    def add_rate_limited(self, item: str, /) -> None: ...


class OutcomePolicy:
    """The table of the module docstring, applied to one controller's queue.

    It owns the count of consecutive failures per key (``Result(requeue=True)`` grows the
    limiter's backoff too, but does not spend the retry budget, so the policy counts
    errors itself). ``done(key)`` is not its business: the worker always calls it.
    """

    def __init__(self, queue: RequeueQueue, *, name: str, stats: ReconcileStats) -> None:
        self.queue = queue
        self.name = name
        self.stats = stats
        self._failures: dict[str, int] = {}

    def succeeded(self, key: str, result: Result | None) -> ReconcileOutcome:
        """``reconcile(key)`` returned ``result``: schedule what it asks for."""
        queue = self.queue
        self._failures.pop(key, None)
        if result is not None:
            if result.requeue_after:
                queue.forget(key)
                queue.add_after(key, result.requeue_after)
                return "requeue_after"
            if result.requeue:
                queue.add_rate_limited(key)
                return "requeue"
        queue.forget(key)
        return "success"

    def failed(self, key: str, exc: Exception, *, max_retries: int) -> ReconcileOutcome:
        """``reconcile(key)`` raised ``exc``: a :class:`~informer.Conflict` is retried
        rate-limited (:meth:`conflicted`); anything else is retried rate-limited, or
        dropped after ``max_retries`` failures in a row. Logs in the caller's structlog
        context."""
        if isinstance(exc, Conflict):
            return self.conflicted(key, exc)
        queue = self.queue
        failures = self._failures.get(key, 0)
        error = f"{type(exc).__name__}: {exc}"
        report_failure("reconcile", self.name, exc, key=key)
        if failures < max_retries:
            self._failures[key] = failures + 1
            queue.add_rate_limited(key)
            log.warning(
                "reconcile.failed",
                error=error,
                retry=failures + 1,
                max_retries=max_retries,
                exc_info=exc,
            )
        else:
            self._failures.pop(key, None)
            queue.forget(key)
            self.stats.dropped += 1
            log.error(
                "reconcile.dropped",
                error=error,
                retries=failures,
                max_retries=max_retries,
                exc_info=exc,
            )
        return "error"

    def conflicted(self, key: str, exc: Conflict) -> ReconcileOutcome:
        """``reconcile(key)`` raised a ``Conflict``: retry it after the limiter's backoff;
        the failure count is left as it is, no failure hook is told."""
        self.queue.add_rate_limited(key)
        log.info("reconcile.conflict", key=key, error=f"{type(exc).__name__}: {exc}")
        return "conflict"

    def not_admitted(self, key: str) -> None:
        """The key gate refused ``key``: forget it (the gate re-adds it when it admits it)."""
        self._failures.pop(key, None)
        self.queue.forget(key)
