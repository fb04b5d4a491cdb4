"""Health probes' protocol and serving: named checks, ``/healthz`` and ``/readyz``.

:class:`HealthChecks` holds the liveness and readiness checks of one process;
:func:`health_routes` answers the probes in the format of Kubernetes' and
controller-runtime's healthz (``?verbose``, ``?exclude=NAME``, ``/healthz/NAME``), and
:func:`serve_health` serves them on :class:`~informer._http.server.HttpServer`. Which
checks exist and what they judge is :mod:`informer._observability.health`'s business.

A check that raises counts as failing (its exception is logged and becomes the reason).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import anyio
import anyio.abc
import structlog

from .._http.server import HttpHandler, HttpRequest, HttpResponse, serve_http

__all__ = ["Check", "HealthCheck", "HealthChecks", "health_routes", "serve_health"]

log = structlog.get_logger(__name__)

Check = Callable[[], str | None]
"""A health check: ``None`` when healthy, else a one-line reason. Sync, cheap, no I/O."""


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A named check (``name`` appears in the probe output and in ``/healthz/NAME``)."""

    name: str
    check: Check


@dataclass
class HealthChecks:
    """The liveness (``/healthz``) and readiness (``/readyz``) checks of one process.

    Checks may be added while the probes are served. Names must be unique per kind.
    """

    liveness: list[HealthCheck] = field(default_factory=list)
    readiness: list[HealthCheck] = field(default_factory=list)

    def add_liveness(self, name: str, check: Check) -> None:
        _add(self.liveness, name, check)

    def add_readiness(self, name: str, check: Check) -> None:
        _add(self.readiness, name, check)


def _add(checks: list[HealthCheck], name: str, check: Check) -> None:
    if not name or "/" in name or any(c.name == name for c in checks):
        raise ValueError(f"health check name {name!r} is empty, has a '/' or is taken")
    checks.append(HealthCheck(name, check))


def _run(check: HealthCheck) -> str | None:
    try:
        return check.check()
    except Exception as exc:
        log.exception("health.check_failed", check=check.name)
        return f"check raised {type(exc).__name__}: {exc}"


def _probe(kind: str, checks: Callable[[], Sequence[HealthCheck]]) -> HttpHandler:
    prefix = f"/{kind}/"

    def handler(request: HttpRequest) -> HttpResponse:
        every = checks()
        if request.path.startswith(prefix):
            name = request.path[len(prefix) :]
            found = [c for c in every if c.name == name]
            if not found:
                return HttpResponse.text(404, f"no {kind} check named {name!r}\n")
            reason = _run(found[0])
            if reason is None:
                return HttpResponse.text(200, "ok\n")
            return HttpResponse.text(500, f"[-]{name} failed: {reason}\n")
        excluded = {n for value in request.query.get("exclude", []) for n in value.split(",")}
        lines: list[str] = []
        failed = False
        for check in every:
            if check.name in excluded:
                lines.append(f"[+]{check.name} excluded: ok")
                continue
            reason = _run(check)
            if reason is None:
                lines.append(f"[+]{check.name} ok")
            else:
                failed = True
                lines.append(f"[-]{check.name} failed: {reason}")
        if failed:
            # A failing liveness probe is news (a restart may follow); readiness fails
            # routinely while the caches fill.
            level = log.warning if kind == "healthz" else log.debug
            level(
                "health.probe_failed",
                probe=kind,
                checks=[line[3:] for line in lines if line.startswith("[-]")],
            )
            return HttpResponse.text(500, "\n".join([*lines, f"{kind} check failed"]) + "\n")
        if "verbose" in request.query:
            return HttpResponse.text(200, "\n".join([*lines, f"{kind} check passed"]) + "\n")
        return HttpResponse.text(200, "ok")

    return handler


def health_routes(checks: HealthChecks) -> Mapping[str, HttpHandler]:
    """``/healthz`` and ``/readyz`` (and ``/healthz/NAME``, ``/readyz/NAME``)."""
    live = _probe("healthz", lambda: list(checks.liveness))
    ready = _probe("readyz", lambda: list(checks.readiness))
    return {"/healthz": live, "/healthz/": live, "/readyz": ready, "/readyz/": ready}


async def serve_health(
    address: str,
    checks: HealthChecks,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/healthz`` and ``/readyz`` for ``checks`` on ``address`` until cancelled.

    ``task_status.started(port)`` reports the bound port;
    :class:`~informer.observability.BindError` is raised before that when the address
    cannot be used. The checks' own tasks (the
    :class:`~informer._observability.health.EventLoopMonitor`) are the caller's to run.
    """
    await serve_http(address, health_routes(checks), name="health", task_status=task_status)
