"""The ``informer_*`` metric families: read from live informers when scraped.

Called by :class:`~informer._observability.metrics.Metrics` at collection time (on the event
loop's thread); the names and labels are listed in :mod:`informer._observability.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .._cache.bad_events import BAD_EVENT_CAUSES
from .._cache.informer import SharedIndexInformer
from .._cache.listener import ProcessorListener

__all__ = ["informer_families", "listener_label", "unique_label"]


def unique_label(name: str, seen: dict[str, int]) -> str:
    """``name``, or ``name#N`` for its N-th use in one family (``seen`` counts them):
    a series must be unique."""
    n = seen.get(name, 0) + 1
    seen[name] = n
    return name if n == 1 else f"{name}#{n}"


def listener_label(listener: ProcessorListener) -> str:
    """The handler's name; an object handler with its own ``__repr__`` (e.g. a
    controller's enqueue handler) is named by it, which says more than its class name."""
    handler = listener.handler
    cls = type(handler)
    if listener.name == cls.__qualname__ and cls.__repr__ is not object.__repr__:
        return repr(handler)
    return listener.name


def informer_families(informers: Iterable[SharedIndexInformer], now: float) -> Iterator[Metric]:
    """Every ``informer_*`` family for ``informers``; ``now`` is the reflectors' clock."""
    res = ("resource",)

    def counter(name: str, doc: str, labels: Sequence[str] = res) -> CounterMetricFamily:
        return CounterMetricFamily(name, doc, labels=labels)

    def gauge(name: str, doc: str, labels: Sequence[str] = res) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=labels)

    lists = counter("informer_lists_total", "Complete lists attempted by the reflector")
    watches = counter(
        "informer_watches_total", "Watches opened (attempted), watch-list syncs included"
    )
    relists = counter(
        "informer_relists_total", "Syncs (list or watch-list) after the first successful one"
    )
    expired = counter(
        "informer_expired_total",
        "410 Gone answers (resourceVersion too old) on lists, watches and ERROR events",
    )
    stalls = counter(
        "informer_watch_stalls_total",
        "Watches re-opened by the inactivity guard (nothing received for too long)",
    )
    errors = counter(
        "informer_list_watch_errors_total", "List and watch failures the reflector retried"
    )
    bad = counter(
        "informer_reflector_bad_events_total",
        "Watch events and objects skipped, and store failures, by cause (malformed_event, "
        "unknown_type, no_resource_version, invalid_object, store_failed)",
        ("resource", "cause"),
    )
    suppressed = counter(
        "informer_reflector_suppressed_logs_total",
        "Log lines about bad events not written (at most one per cause per minute)",
    )
    fallbacks = counter(
        "informer_reflector_watch_list_fallbacks_total",
        "Syncs that fell back from a watch-list stream to a list",
    )
    events = counter(
        "informer_watch_events_total",
        "Watch events received, by type (skipped: malformed or unusable events)",
        ("resource", "type"),
    )
    objects = gauge("informer_store_objects", "Objects in the informer's store")
    age = gauge(
        "informer_last_watch_event_age_seconds",
        "Seconds since the last watch event, bookmark or successful sync",
    )
    synced = gauge("informer_synced", "1 once the informer's first full list is stored")
    handler_labels = ("resource", "handler")
    buffer = gauge(
        "informer_handler_buffer_depth",
        "Notifications waiting in an event handler's buffer",
        handler_labels,
    )
    handled = counter(
        "informer_handler_notifications_total",
        "Notifications an event handler has processed",
        handler_labels,
    )
    failures = counter(
        "informer_handler_failures_total",
        "Notifications whose event handler raised",
        handler_labels,
    )
    seen: dict[str, int] = {}
    for informer in informers:
        name = unique_label(informer.name, seen)
        label = [name]
        stats = informer.reflector.stats
        lists.add_metric(label, stats.lists)
        watches.add_metric(label, stats.watches)
        relists.add_metric(label, stats.relists)
        expired.add_metric(label, stats.expired)
        stalls.add_metric(label, stats.stalls)
        errors.add_metric(label, stats.errors)
        for cause in BAD_EVENT_CAUSES:
            bad.add_metric([name, cause], stats.bad_events.get(cause, 0))
        suppressed.add_metric(label, stats.logs_suppressed)
        fallbacks.add_metric(label, stats.watch_list_fallbacks)
        for type_, count in stats.events_by_type.items():
            events.add_metric([name, type_], count)
        objects.add_metric(label, len(informer.indexer))
        if stats.last_event_monotonic is not None:
            age.add_metric(label, max(0.0, now - stats.last_event_monotonic))
        synced.add_metric(label, 1.0 if informer.has_synced() else 0.0)
        handlers: dict[str, int] = {}
        for listener in informer.listeners:
            hl = [name, unique_label(listener_label(listener), handlers)]
            buffer.add_metric(hl, listener.buffer_depth())
            handled.add_metric(hl, listener.handled)
            failures.add_metric(hl, listener.failures)
    yield from (lists, watches, relists, expired, stalls, errors, bad, suppressed, fallbacks)
    yield events
    yield from (objects, age, synced, buffer, handled, failures)
