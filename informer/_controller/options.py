"""A controller's tuning as one validated value (controller-runtime's ``controller.Options``).

:class:`ControllerOptions` is frozen: a change is a new value (``dataclasses.replace``),
validated again. Errors name the field and what is allowed; the
:class:`~informer.Controller` that builds one prefixes them with its class name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .._queue.ratelimit import RateLimiter

__all__ = ["DEFAULT_MAX_RETRIES", "DEFAULT_SHUTDOWN_GRACE", "ControllerOptions"]

DEFAULT_MAX_RETRIES: Final = 15
DEFAULT_SHUTDOWN_GRACE: Final = 5.0


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    """How one controller runs: its concurrency, retry budget, shutdown grace and retry pacing.

    Raises ``ValueError`` (``TypeError`` for ``rate_limiter``) naming the field, the value
    and what is allowed.
    """

    workers: int = 1
    """Reconciles that may run at once (never two for the same key): an int >= 1."""
    max_retries: int = DEFAULT_MAX_RETRIES
    """Consecutive failed reconciles of a key before it is dropped: an int >= 0 (a key is
    reconciled at most ``1 + max_retries`` times in a row while it keeps failing)."""
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    """Seconds the controller waits, on cancellation, for in-flight reconciles to finish
    (then they are cancelled): a number >= 0."""
    rate_limiter: Callable[[], RateLimiter] | None = None
    """A **factory** of the retry limiter, called once per controller (a limiter keeps
    per-key failure counts that controllers must not share), e.g.
    ``default_controller_rate_limiter``; ``None``: the work queue's default limiter."""

    def __post_init__(self) -> None:
        workers = self.workers
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        retries = self.max_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {retries!r}")
        grace = self.shutdown_grace
        if isinstance(grace, bool) or not isinstance(grace, int | float) or not grace >= 0:
            raise ValueError(f"shutdown_grace must be seconds >= 0, got {grace!r}")
        factory = self.rate_limiter
        if factory is not None and not callable(factory):
            raise TypeError(
                "rate_limiter must be a factory (a callable returning a RateLimiter, e.g. "
                "lambda: ExponentialFailureRateLimiter(0.01, 60)), not a limiter: "
                f"controllers must not share one; got {factory!r}"
            )

    def new_rate_limiter(self) -> RateLimiter | None:
        """A new limiter from :attr:`rate_limiter` (``None`` without a factory: the work
        queue then makes its default one)."""
        return None if self.rate_limiter is None else self.rate_limiter()
