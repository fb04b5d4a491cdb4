"""Health probes: ``/healthz`` (liveness) and ``/readyz`` (readiness) for the kubelet.

A probe runs named checks; each is a plain function returning ``None`` when healthy or a
one-line reason. The endpoint answers ``200 ok`` when every check passes and ``500`` with
the list of checks otherwise, in the format of Kubernetes' and controller-runtime's healthz
(``?verbose`` lists the passing checks too; ``?exclude=NAME`` skips one;
``/healthz/NAME`` runs a single check)::

    [+]event-loop ok
    [-]watches failed: configmaps@demo: watching, but nothing received for 301s and the
    inactivity guard (180s) did not re-open the watch (limit 280s)
    healthz check failed

(the reason is one line; it is wrapped here).

Liveness (a failure makes the kubelet restart the container, so only conditions that a
restart fixes and that do not fix themselves belong here):

``event-loop``
    :class:`EventLoopMonitor`: a heartbeat task sleeps ``interval`` seconds in a loop and
    records when it woke and how late. Failing when the last heartbeat is older than
    ``interval + max_lag`` (the loop is blocked right now, or the heartbeat task died) or
    the last one woke more than ``max_lag`` late (the loop was blocked or starved). A
    loop blocked for good cannot answer at all, which the kubelet's probe timeout
    catches; this check catches a loop that is only intermittently answering.
``watches``
    :class:`WatchStallCheck` (see there): a reflector whose watch is open but silent past
    its inactivity guard's limit (the guard itself failed), or whose re-opened watches
    keep stalling while the server is known to send bookmarks.
``leader-election`` (with an elector)
    :func:`lease_check`: the elector believes it leads but its lease was not renewed for
    longer than ``renew_deadline + retry_period`` (+ 1 s slack): a working elector has
    given up by then. With the default timings that is 13 s, before the lease (15 s)
    becomes free for the others, so a stuck leader is reported before two replicas can
    both act.

Deliberately *not* liveness: an API server that cannot be reached, and credentials it
rejects. A restart fixes neither (the reflectors back off and recover by themselves once
the server is back; a restarted container reads the same token files), and restarting
every replica during a control-plane outage would add crash-loop backoff to the recovery.
They are readiness failures instead, as controller-runtime users add them: the Pod shows
``0/1`` READY, alerts on unready Pods fire, and a rollout whose new Pods cannot reach or
authenticate to the API server (a NetworkPolicy, a missing RBAC binding) stops before the
old Pods are replaced.

Readiness:

``informers``
    Every informer has synced (its first full list is in the store). Once synced, an
    informer stays ready: a relist replaces the store's content without emptying it.
``watches``
    :class:`WatchConnectCheck`: a reflector that has been trying to reach the API server
    without an answer for longer than ``unreachable_after`` (60 s): a watch open not
    answered (a stalled connection, a TLS handshake that never completes) or lists and
    watches failing with ``ConnectionFailed`` over and over. Named by informer.
``credentials`` (with an ApiClient)
    :func:`~informer._observability.credential_check.credentials_check`: every answer of the API
    server has been 401 or 403 for longer than 120 s (a revoked token, a deleted RBAC
    binding).

Checks run on the event loop when a probe arrives and must be cheap and never block.
Some keep a little state between calls (``watches`` notices progress), which is why they
are objects. Probes are answered by :mod:`informer._observability.probes` (``HealthChecks``,
``health_routes``, ``serve_health``, re-exported here) on the same tiny HTTP server as
the metrics (:class:`~informer._http.server.HttpServer`).
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

import anyio
import anyio.abc
import structlog

from .._cache.informer import SharedIndexInformer
from .._cache.reflector import Reflector
from .._cache.reflector_stats import ReflectorState
from .._exceptions import ConnectionFailed
from .._leaderelection.timings import LeaseTimings
from .._meta.types import LeaderStatus
from .probes import Check, HealthCheck, HealthChecks, health_routes, serve_health

__all__ = [
    "DEFAULT_LOOP_INTERVAL",
    "DEFAULT_MAX_LOOP_LAG",
    "DEFAULT_STALL_SLACK",
    "DEFAULT_STALL_STRIKES",
    "DEFAULT_UNREACHABLE_AFTER",
    "Check",
    "EventLoopMonitor",
    "HealthCheck",
    "HealthChecks",
    "LeaseHolder",
    "WatchConnectCheck",
    "WatchStallCheck",
    "health_routes",
    "informers_synced_check",
    "lease_check",
    "serve_health",
]

log = structlog.get_logger(__name__)

DEFAULT_LOOP_INTERVAL: Final = 1.0
DEFAULT_MAX_LOOP_LAG: Final = 5.0
DEFAULT_STALL_SLACK: Final = 10.0
DEFAULT_STALL_STRIKES: Final = 3
DEFAULT_UNREACHABLE_AFTER: Final = 60.0

_GUARDED_STATES: Final = frozenset({ReflectorState.WATCHING, ReflectorState.WATCH_LISTING})


# ------------------------------------------------------------------------- event loop


class EventLoopMonitor:
    """Measures event-loop responsiveness with a heartbeat task (the ``event-loop`` check).

    :meth:`run` (a task) sleeps ``interval`` seconds in a loop and calls :meth:`beat`
    each time it wakes. :meth:`check` fails when the last beat is older than
    ``interval + max_lag`` or woke more than ``max_lag`` late. ``clock`` is a monotonic
    clock; tests drive :meth:`beat` and the clock by hand. Before the first beat (the
    monitor not running) the check passes: nothing was measured.
    """

    def __init__(
        self,
        *,
        interval: float = DEFAULT_LOOP_INTERVAL,
        max_lag: float = DEFAULT_MAX_LOOP_LAG,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval > 0 or not max_lag > 0:
            raise ValueError("interval and max_lag must be positive")
        self.interval = interval
        self.max_lag = max_lag
        self._clock = clock
        self.last_beat: float | None = None
        self.last_lag = 0.0
        self.max_observed_lag = 0.0

    def beat(self, lag: float = 0.0) -> None:
        """Record a heartbeat now, ``lag`` seconds later than it was due."""
        self.last_beat = self._clock()
        self.last_lag = max(0.0, lag)
        self.max_observed_lag = max(self.max_observed_lag, self.last_lag)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Beat every ``interval`` seconds until cancelled (started after the first beat)."""
        self.beat()
        task_status.started()
        while True:
            due = self._clock() + self.interval
            await anyio.sleep(self.interval)
            lag = self._clock() - due
            self.beat(lag)
            if lag > self.max_lag:
                log.warning("health.event_loop_lag", lag=round(lag, 3), max_lag=self.max_lag)

    def check(self) -> str | None:
        if self.last_beat is None:
            return None
        silent = self._clock() - self.last_beat
        if silent > self.interval + self.max_lag:
            return (
                f"no heartbeat for {silent:.1f}s (beats every {self.interval:g}s, "
                f"max lag {self.max_lag:g}s): the event loop is blocked"
            )
        if self.last_lag > self.max_lag:
            return (
                f"last heartbeat {self.last_lag:.1f}s late (max lag {self.max_lag:g}s): "
                "the event loop was blocked or starved"
            )
        return None


# ----------------------------------------------------------------------------- watches


@dataclass(slots=True)
class _Progress:
    marker: tuple[int, int, int, int, ReflectorState]
    since: float
    events: int
    stalls_base: int


class WatchStallCheck:
    """The ``watches`` liveness check over the informers ``informers()`` returns.

    The Reflector's inactivity guard re-opens a watch that received nothing, not even a
    bookmark, for between 1 and 1.25 ``inactivity_timeout``. So, for a reflector with a
    guard (``inactivity_timeout`` not ``None``), a failure means one of:

    1. **the guard failed**: the reflector is in a watch (``WATCHING`` or
       ``WATCH_LISTING``) and has made no progress for longer than
       ``inactivity_timeout * 1.5 + slack``. Progress is anything the guard or the server
       does: a watch event or bookmark (``stats.last_event_monotonic``), a watch
       (re-)opened, a list, a sync, a state change. The check notices the last four when
       it runs (it keeps their counters), so it errs on the lenient side by at most one
       probe period; the first call only takes notes.
    2. **the stalls do not heal**: the guard fired ``stall_strikes`` times in a row with
       not a single event in between, on a server known to send bookmarks (the reflector
       has received at least one; a quiet resource on a server without bookmarks — the
       watch cache disabled — is silent by nature and never fails this rule).

    A reflector that cannot list or watch at all (API server unreachable, 403) backs off
    and is not reported here: a restart would not help (readiness reports it:
    :class:`WatchConnectCheck`, the ``credentials`` check).

    ``clock`` must be the reflectors' clock (``time.monotonic`` unless injected through
    ``reflector_options``).
    """

    def __init__(
        self,
        informers: Callable[[], Iterable[SharedIndexInformer]],
        *,
        slack: float = DEFAULT_STALL_SLACK,
        stall_strikes: int = DEFAULT_STALL_STRIKES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if slack < 0 or stall_strikes < 1:
            raise ValueError("slack must be >= 0 and stall_strikes >= 1")
        self._informers = informers
        self.slack = slack
        self.stall_strikes = stall_strikes
        self._clock = clock
        self._progress: weakref.WeakKeyDictionary[Reflector, _Progress] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self) -> str | None:
        now = self._clock()
        problems = [
            f"{informer.name}: {problem}"
            for informer in self._informers()
            if (problem := self._check(informer.reflector, now)) is not None
        ]
        return "; ".join(problems) or None

    def _check(self, reflector: Reflector, now: float) -> str | None:
        timeout = reflector.inactivity_timeout
        if timeout is None:
            return None
        stats = reflector.stats
        state = reflector.state
        events = stats.events
        marker = (events, stats.watches, stats.lists, stats.syncs, state)
        progress = self._progress.get(reflector)
        if progress is None:
            progress = _Progress(marker, now, events, stats.stalls)
            self._progress[reflector] = progress
        elif progress.marker != marker:
            progress.marker = marker
            progress.since = now
        if events != progress.events:
            progress.events = events
            progress.stalls_base = stats.stalls

        if state in _GUARDED_STATES:
            last_event = stats.last_event_monotonic
            last = max(progress.since, last_event if last_event is not None else -math.inf)
            limit = timeout * 1.5 + self.slack
            silent = now - last
            if silent > limit:
                return (
                    f"{state.value}, but nothing received for {silent:.0f}s and the "
                    f"inactivity guard ({timeout:g}s) did not re-open the watch "
                    f"(limit {limit:g}s)"
                )
        strikes = stats.stalls - progress.stalls_base
        if strikes >= self.stall_strikes and stats.bookmarks > 0:
            return (
                f"{strikes} watches in a row stalled (nothing received for "
                f"{timeout:g}s each, not even a bookmark)"
            )
        return None


class WatchConnectCheck:
    """The ``watches`` readiness check: no reflector tries to reach the API server
    without an answer for longer than ``unreachable_after`` seconds.

    Reads ``stats.connecting_since`` (see :class:`~informer.ReflectorStats`): set while
    a watch open waits for its answer and while lists and watch opens fail with
    ``ConnectionFailed``, cleared by any answer, an error status included (a 403 is
    the ``credentials`` check's business). So a reflector fails this check when the
    server is unreachable, refuses connections, or accepts them and never answers (a
    stalled open fails after ``RESPONSE_HEADERS_TIMEOUT``, 30 s, and is retried with
    backoff, ``connecting_since`` kept).

    The default, 60 s, is two connect timeouts (30 s): one attempt that times out in
    full, or a few refused ones with their backoff, and not a graceful API server
    restart (seconds). ``clock`` must be the reflectors' clock. Readiness, not
    liveness: see the module docstring.
    """

    def __init__(
        self,
        informers: Callable[[], Iterable[SharedIndexInformer]],
        *,
        unreachable_after: float = DEFAULT_UNREACHABLE_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not unreachable_after >= 0:
            raise ValueError("unreachable_after must be >= 0 seconds")
        self._informers = informers
        self.unreachable_after = unreachable_after
        self._clock = clock

    def __call__(self) -> str | None:
        now = self._clock()
        problems: list[str] = []
        for informer in self._informers():
            reflector = informer.reflector
            since = reflector.stats.connecting_since
            if since is None or reflector.state is ReflectorState.STOPPED:
                continue
            waited = now - since
            if waited <= self.unreachable_after:
                continue
            error = reflector.last_error
            cause = (
                f"last error {type(error).__name__}: {_one_line(error)}"
                if isinstance(error, ConnectionFailed)
                else "no answer yet"
            )
            problems.append(
                f"{informer.name}: no answer from the API server for {waited:.0f}s "
                f"(limit {self.unreachable_after:g}s; {reflector.state.value}; {cause})"
            )
        return "; ".join(problems) or None


def _one_line(error: BaseException, limit: int = 200) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------- readiness & lease


def informers_synced_check(informers: Callable[[], Iterable[SharedIndexInformer]]) -> Check:
    """The ``informers`` readiness check: every informer ``informers()`` returns synced."""

    def check() -> str | None:
        pending = [i.name for i in informers() if not i.has_synced()]
        if pending:
            return f"not synced yet: {', '.join(pending)}"
        return None

    return check


@runtime_checkable
class LeaseHolder(LeaderStatus, Protocol):
    """A leader elector the ``leader-election`` check can judge (``LeaderElector`` is one).

    ``timings`` are the elector's. ``check(max_tolerable_expired_lease)`` is client-go's
    healthz adaptor: a reason when the elector leads but has not renewed for more than
    ``lease_duration + max_tolerable_expired_lease`` seconds, else ``None``.
    """

    @property
    def timings(self) -> LeaseTimings: ...

    def check(self, max_tolerable_expired_lease: float = ...) -> str | None: ...


def lease_check(elector: LeaseHolder, *, slack: float = 1.0) -> Check:
    """The ``leader-election`` liveness check (module docstring): failing while
    ``elector`` leads without a renewal for more than
    ``renew_deadline + retry_period + slack`` seconds."""

    def check() -> str | None:
        if not elector.is_leader():
            return None
        timings = elector.timings
        limit = timings.renew_deadline + timings.retry_period + slack
        return elector.check(limit - timings.lease_duration)

    return check
