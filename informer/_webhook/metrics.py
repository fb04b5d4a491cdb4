"""The webhook server's Prometheus metrics, under controller-runtime's names.

=================================================== ========================== =========
name                                                labels                     type
=================================================== ========================== =========
``controller_runtime_webhook_requests_total``       webhook, code              counter
``controller_runtime_webhook_latency_seconds``      webhook                    histogram
``controller_runtime_webhook_requests_in_flight``   webhook                    gauge
=================================================== ========================== =========

``webhook`` is the webhook's path (as controller-runtime labels it), ``code`` the HTTP
status of the answer (a denial is an answer: 200; a malformed review 400). The 200 and
500 series exist from the start (zero), as controller-runtime initializes them; the
latency histogram uses Prometheus' default buckets (controller-runtime's), 5 ms to
10 s. Counting is plain arithmetic on the event loop; the families are built when
Prometheus scrapes (:class:`WebhookMetrics` is a collector the Manager registers in its
registry).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Iterator
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

__all__ = ["LATENCY_BUCKETS", "WebhookMetrics"]

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


class WebhookMetrics(Collector):
    """Counts of the webhook server's requests (module docstring). Call
    :meth:`started` when a request's body was read and :meth:`finished` with the status
    of its answer; on the event loop."""

    def __init__(self, paths: Iterable[str] = ()) -> None:
        self._requests: dict[tuple[str, str], int] = {}
        self._in_flight: dict[str, int] = {}
        self._latency: dict[str, _Histogram] = {}
        for path in paths:
            self.add(path)

    def add(self, path: str) -> None:
        """Export the series of the webhook at ``path`` (200 and 500 at zero)."""
        self._in_flight.setdefault(path, 0)
        self._latency.setdefault(path, _Histogram())
        for code in ("200", "500"):
            self._requests.setdefault((path, code), 0)

    def started(self, path: str) -> float:
        """One more request in flight at ``path``; returns its start time."""
        self._in_flight[path] = self._in_flight.get(path, 0) + 1
        return time.perf_counter()

    def finished(self, path: str, code: int, started: float) -> None:
        self._in_flight[path] -= 1
        key = (path, str(code))
        self._requests[key] = self._requests.get(key, 0) + 1
        self._latency.setdefault(path, _Histogram()).observe(time.perf_counter() - started)

    def requests(self, path: str, code: int) -> int:
        """How many requests to ``path`` were answered with ``code``."""
        return self._requests.get((path, str(code)), 0)

    def collect(self) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "controller_runtime_webhook_requests",
            "Total number of admission requests by HTTP status code.",
            labels=["webhook", "code"],
        )
        for (path, code), count in sorted(self._requests.items()):
            total.add_metric([path, code], count)
        latency = HistogramMetricFamily(
            "controller_runtime_webhook_latency_seconds",
            "Histogram of the latency of processing admission requests",
            labels=["webhook"],
        )
        for path, histogram in sorted(self._latency.items()):
            latency.add_metric([path], histogram.buckets(), histogram.total)
        in_flight = GaugeMetricFamily(
            "controller_runtime_webhook_requests_in_flight",
            "Current number of admission requests being served.",
            labels=["webhook"],
        )
        for path, count in sorted(self._in_flight.items()):
            in_flight.add_metric([path], count)
        yield from (total, latency, in_flight)
