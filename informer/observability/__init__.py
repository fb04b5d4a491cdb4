"""Metrics, health checks and probes, and the endpoints that serve them, as
controller-runtime's ``metrics`` and ``healthz``. A :class:`~informer.Manager` runs them
for you; these are for programs that assemble their own.
"""

from __future__ import annotations

from .._exceptions import BindError as BindError
from .._http.server import HttpLimits as HttpLimits
from .._observability.endpoints import Endpoints as Endpoints
from .._observability.endpoints import Observability as Observability
from .._observability.endpoints import run_observability as run_observability
from .._observability.health import HealthChecks as HealthChecks
from .._observability.health import serve_health as serve_health
from .._observability.metrics import Metrics as Metrics
from .._observability.metrics import serve_metrics as serve_metrics

__all__ = [
    "BindError",
    "Endpoints",
    "HealthChecks",
    "HttpLimits",
    "Metrics",
    "Observability",
    "run_observability",
    "serve_health",
    "serve_metrics",
]
