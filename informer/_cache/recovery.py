"""``Recovery``: what the Reflector does after a failure.

The Reflector hands every list and watch failure (and a watch-list stream that ended
before its end bookmark) to its ``Recovery``, which reports the error, logs it, updates
the state of the retry rules and answers with a :class:`Next`: sync (list or watch-list)
or re-watch, with or without a backoff first. It implements the error rows of the
outcomes table in the Reflector's module docstring (``_cache/reflector.py``) and, before
a watch-list's end bookmark, the fallback rule of ``_cache/watch_list.py``.

- ``rv_unavailable``: set by a 410 or too-large RV on a list (``ListSync`` retries at
  ``""`` at once) or on a watch-list (retried at once at ``""``); the Reflector clears it
  on each successful sync. A 410 on a plain watch relists at the last synced RV, which
  the watch cache serves.
- A 410 relists at once; a 410 repeating with no event in between (``progressed`` not
  called since the previous one) backs off first.
- A failed list backs off and relists.
- Every error goes to ``report`` first: counted in ``stats.errors``, kept as
  ``last_error``, passed to ``on_watch_error`` (which must not block; what it raises is
  logged as ``on_watch_error.failed`` and reported to the failure hook).
- Backoffs follow :class:`~informer._cache.backoff.ExponentialBackoff`;
  ``TooManyRequests.retry_after`` raises the next one (list or watch) to at least the
  server's delay.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Any

from .._exceptions import (
    ConnectionFailed,
    InformerError,
    ResourceExpired,
    TooManyRequests,
    WatchDecodeError,
    WatchEventTooLarge,
)
from .._failures import report_failure
from .backoff import ExponentialBackoff
from .reflector_stats import ReflectorStats
from .responses import describe, is_rv_unavailable
from .watch_list import WatchListMode, WatchListUnsupported, is_rejection

__all__ = ["Next", "Recovery"]


class Next(enum.Enum):
    """What the run loop does next: (sync first?, back off first?)."""

    WATCH = (False, False)
    WATCH_BACKOFF = (False, True)
    RELIST = (True, False)
    RELIST_BACKOFF = (True, True)


class Recovery:
    """The Reflector's error path (see the module docstring).

    :param name: the reflector's name (the failure hook's ``where``).
    :param log: the reflector's logger.
    :param watch_list: the reflector's watch-list fallback state.
    :param sleep: awaited for backoffs.
    :param on_watch_error: see :class:`~informer._cache.reflector.Reflector`.
    """

    def __init__(
        self,
        name: str,
        *,
        stats: ReflectorStats,
        log: Any,
        watch_list: WatchListMode,
        backoff: ExponentialBackoff,
        sleep: Callable[[float], Awaitable[object]],
        on_watch_error: Callable[[BaseException], object] | None,
    ) -> None:
        self._name = name
        self._stats = stats
        self._log = log
        self._watch_list = watch_list
        self._backoff = backoff
        self._sleep = sleep
        self._on_watch_error = on_watch_error
        self.rv_unavailable = False
        """The last synced RV proved unavailable (410): the next sync reads at ``""``."""
        self.last_error: BaseException | None = None
        self._retry_after: float | None = None
        self._consecutive_expired = 0

    def progressed(self) -> None:
        """A watch delivered an event: a 410 after it relists at once again."""
        self._consecutive_expired = 0

    def after_list_error(self, exc: Exception) -> Next:
        self.report(exc)
        self._log.warning(
            "list.failed", exc_info=not isinstance(exc, InformerError), **describe(exc)
        )
        return Next.RELIST_BACKOFF

    def list_rv_unavailable(self, exc: Exception) -> None:
        """A list met a 410 / too-large RV: lists are at ``""`` until a sync succeeds."""
        if isinstance(exc, ResourceExpired):
            self._stats.expired += 1
        self.report(exc)
        self.rv_unavailable = True

    def after_watch_error(self, exc: Exception, *, rv: str, initial_events: bool) -> Next:
        """``rv``: the last synced RV (logged); ``initial_events``: the error came before
        a watch-list's end bookmark."""
        if initial_events:
            return self._after_watch_list_error(exc, rv=rv)
        self.report(exc)
        if isinstance(exc, ResourceExpired):
            self._stats.expired += 1
            self._log.info("watch.expired", rv=rv, **describe(exc))
            return self._after_expired()
        if isinstance(exc, WatchEventTooLarge):
            self._log.warning("watch.error", rv=rv, action="relist", **describe(exc))
            return Next.RELIST_BACKOFF
        if isinstance(exc, TooManyRequests | ConnectionFailed | WatchDecodeError):
            self._log.warning("watch.error", rv=rv, action="rewatch", **describe(exc))
            return Next.WATCH_BACKOFF
        self._log.warning(
            "watch.error",
            rv=rv,
            action="relist",
            exc_info=not isinstance(exc, InformerError),
            **describe(exc),
        )
        return Next.RELIST_BACKOFF

    def _after_watch_list_error(self, exc: Exception, *, rv: str) -> Next:
        if isinstance(exc, WatchListUnsupported):
            return self.fall_back(str(exc), permanent=exc.permanent)
        self.report(exc)
        if is_rejection(exc):
            return self.fall_back(f"rejected: {type(exc).__name__}", exc, permanent=True)
        if is_rv_unavailable(exc):
            if isinstance(exc, ResourceExpired):
                self._stats.expired += 1
            self.rv_unavailable = True
            self._log.info("watch.expired", rv=rv, watch_list=True, **describe(exc))
            return self._after_expired()
        self._log.warning(
            "watch.error",
            rv=rv,
            watch_list=True,
            exc_info=not isinstance(exc, InformerError),
            **describe(exc),
        )
        return Next.RELIST_BACKOFF

    def _after_expired(self) -> Next:
        """Relist at once after a 410; back off if 410s repeat with no event between."""
        self._consecutive_expired += 1
        return Next.RELIST if self._consecutive_expired == 1 else Next.RELIST_BACKOFF

    def fall_back(self, why: str, exc: BaseException | None = None, *, permanent: bool) -> Next:
        """Sync by a list now; for good when ``permanent``, else for this attempt only."""
        self._watch_list.fall_back(why, exc, permanent=permanent)
        return Next.RELIST

    def report(self, exc: BaseException) -> None:
        self._stats.errors += 1
        self.last_error = exc
        if isinstance(exc, TooManyRequests):
            self._retry_after = exc.retry_after  # honoured by the next backoff (list or watch)
        if self._on_watch_error is None:
            return
        try:
            self._on_watch_error(exc)
        except Exception as exc:
            report_failure("callback", f"{self._name} on_watch_error", exc)
            self._log.exception("on_watch_error.failed")

    async def back_off(self) -> None:
        delay = self._backoff.next_delay()
        if self._retry_after is not None:
            delay = max(delay, self._retry_after)
            self._retry_after = None
        self._stats.backoffs += 1
        self._stats.backoff_seconds += delay
        self._log.info("backoff", seconds=round(delay, 3))
        await self._sleep(delay)
