"""The process's own credentials as the API server judges them: the ``credentials``
readiness check and the ``informer_auth_*`` / ``informer_credential_reloads_total``
metrics.

Both read the :class:`~informer._rest.credentials.AuthStatus` the transport keeps per ApiClient
(:func:`informer._rest.transport.auth_status`): every answer is recorded there, so a credential the
server stopped accepting (a revoked or expired token, a certificate from another CA, a
deleted RBAC binding) shows as a streak of 401/403 answers that nothing breaks.

Why readiness, and why 120 s
----------------------------
A token file is re-read every 50 s and after a 401 (client-go's period), and a rotation
may cost one 401 (the request that met the revoked token) before the new token is read.
A streak longer than two re-read periods is therefore not a rotation in progress: the
file itself holds a rejected credential, or the identity lost its permissions. Then the
replica serves a cache it cannot refresh and cannot write: it is not ready. It is not a
liveness failure, because a restart reads the same files (a projected service-account
token belongs to the Pod, not to the container) and the RBAC does not change with it; it
would only add crash-loop delays to the recovery (see :mod:`informer._observability.health`).

The streak is broken by any answer proving the credentials work (any other status below
500), so a replica forbidden one resource among several that work fails this check only
while nothing else is asked of the server for the whole threshold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .._rest.credentials import AuthStatus

__all__ = ["DEFAULT_AUTH_FAILURE_THRESHOLD", "credential_families", "credentials_check"]

DEFAULT_AUTH_FAILURE_THRESHOLD: Final = 120.0
"""Seconds of 401/403 answers only after which ``credentials`` fails (module docstring)."""

_ADVICE: Final = {
    401: (
        "401 Unauthorized: the API server does not accept the credentials (a revoked or "
        "expired token, a client certificate it does not trust): check the token file or "
        "the kubeconfig user"
    ),
    403: (
        "403 Forbidden: the identity is authenticated but not authorized: check its "
        "RoleBindings and ClusterRoleBindings"
    ),
}

Clients = Callable[[], Iterable[tuple[str, AuthStatus]]]
"""The clients to judge, read at each call: ``(server address, status)`` pairs."""


def credentials_check(
    clients: Clients,
    *,
    threshold: float = DEFAULT_AUTH_FAILURE_THRESHOLD,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[], str | None]:
    """The ``credentials`` readiness check: failing while a client's answers have all
    been 401 or 403 for more than ``threshold`` seconds; the reason names the server,
    the streak and what to check. ``clock`` must read ``time.monotonic``'s timeline
    (``AuthStatus.failing_since`` is taken from it; tests shift it)."""
    if not threshold >= 0:
        raise ValueError("threshold must be >= 0 seconds")

    def check() -> str | None:
        now = clock()
        problems: list[str] = []
        for address, status in clients():
            failing = status.failing_for(now)
            if status.failing_since is None or failing <= threshold:
                continue
            last = status.last_failure_status or 401
            problems.append(
                f"{address}: every answer for {failing:.0f}s was 401/403 "
                f"({status.consecutive_failures} in a row, limit {threshold:g}s), the last "
                + _ADVICE.get(last, str(last))
            )
        return "; ".join(problems) or None

    return check


def credential_families(statuses: Sequence[AuthStatus], now: float) -> Iterator[Metric]:
    """``informer_auth_failures_total{code}``, ``informer_credential_reloads_total{kind}``
    and ``informer_auth_failing_seconds`` over ``statuses`` (summed; the gauge is the
    longest streak; nothing without a status); ``now`` is ``time.monotonic()``."""
    if not statuses:
        return
    failures = CounterMetricFamily(
        "informer_auth_failures_total",
        "401 and 403 answers of the API server to this process's requests",
        labels=("code",),
    )
    failures.add_metric(["401"], sum(s.unauthorized_total for s in statuses))
    failures.add_metric(["403"], sum(s.forbidden_total for s in statuses))
    reloads = CounterMetricFamily(
        "informer_credential_reloads_total",
        "Token and client certificate files found rotated and loaded",
        labels=("kind",),
    )
    reloads.add_metric(["token"], sum(s.token_reloads for s in statuses))
    reloads.add_metric(["certificate"], sum(s.certificate_reloads for s in statuses))
    failing = GaugeMetricFamily(
        "informer_auth_failing_seconds",
        "Seconds since the API server began answering every request with 401/403 "
        "(0 once an answer accepts the credentials)",
    )
    failing.add_metric([], max((s.failing_for(now) for s in statuses), default=0.0))
    yield from (failures, reloads, failing)
