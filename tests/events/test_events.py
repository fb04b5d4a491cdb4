"""``EventRecorder`` (informer._events): client-go's event recording, from Python.

Unit tests drive the recorder with a fake sink and an injected clock (the spam filter's
refill and the series windows are minutes long); the real-control-plane tests check what
lands on the API server: events.k8s.io/v1 Events, one Event with a ``series`` for repeats,
and core/v1 Events when the Events API is not served. The client-go sources matched are
``tools/events/event_broadcaster.go`` and ``event_recorder.go`` (series, names, buffer,
retries) and ``tools/record/events_cache.go`` (spam filter).
"""

from __future__ import annotations

import re
import socket
import time
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
import structlog
import structlog.testing

import informer._events.sink as sink_module
from informer import (
    BadRequest,
    ConnectionFailed,
    EventRecorder,
    Forbidden,
    NotFound,
    Obj,
    ServerError,
    request_json,
)
from informer._events.series import FINISH_TIME, REFRESH_TIME, SeriesCache
from informer._events.sink import ApiEventSink

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

COMPONENT = "test-controller"
EVENT_NAME = re.compile(r"^(?P<prefix>.+)\.(?P<hex>[0-9a-f]+)$")
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSink:
    """Stores Events by name; ``failures`` are raised by the next calls, in order."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls: list[tuple[str, Obj]] = []
        self.stored: dict[str, Obj] = {}

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    async def create(self, event: Obj) -> Obj:
        self.calls.append(("create", event))
        self._maybe_fail()
        self.stored[event["metadata"]["name"]] = event
        return event

    async def patch(self, event: Obj, patch: Obj) -> Obj:
        self.calls.append(("patch", patch))
        self._maybe_fail()
        name = event["metadata"]["name"]
        if name not in self.stored:
            raise NotFound(f"events {name} not found")
        self.stored[name] = {**self.stored[name], **patch}
        return self.stored[name]


def configmap(name: str = "web", namespace: str | None = "demo", rv: str = "7") -> Obj:
    meta: Obj = {"name": name, "uid": f"uid-{name}", "resourceVersion": rv}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def recorder(sink: Any, clock: FakeClock | None = None, **kw: Any) -> EventRecorder:
    return EventRecorder(None, COMPONENT, sink=sink, clock=clock or FakeClock(), **kw)


async def flushed(rec: EventRecorder) -> None:
    with anyio.fail_after(10):
        await rec.flush()


# --- the Event -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "event_namespace"),
    [("demo", "demo"), (None, "default")],
    ids=["namespaced", "cluster-scoped"],
)
async def test_event_is_built_as_client_go_make_event(
    namespace: str | None, event_namespace: str
) -> None:
    """client-go ``recorderImpl.makeEvent``: name ``<regarding>.<hex>``, the regarding
    object's namespace or ``default``, ``eventTime`` a MicroTime, the reference from
    ``reference.GetReference``; ``reportingInstance`` ``<controller>-<hostname>`` as
    ``NewRecorder``. ``action`` defaults to the reason (events.k8s.io requires one)."""
    sink, clock = FakeSink(), FakeClock()
    async with recorder(sink, clock) as rec:
        rec.event(configmap(namespace=namespace), reason="Synced", note="copied")
        await flushed(rec)
    [(verb, event)] = sink.calls
    assert verb == "create"
    match = EVENT_NAME.match(event["metadata"]["name"])
    assert match and match["prefix"] == "web"
    assert int(match["hex"], 16) == int(clock.now * 1e9)
    assert event["metadata"]["namespace"] == event_namespace
    assert MICRO_TIME.match(event["eventTime"])
    expected_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "web", "uid": "uid-web"}
    expected_ref["resourceVersion"] = "7"
    if namespace:
        expected_ref["namespace"] = namespace
    assert event["regarding"] == expected_ref
    assert (event["reportingController"], event["reportingInstance"]) == (
        COMPONENT,
        f"{COMPONENT}-{socket.gethostname()}",
    )
    assert (event["type"], event["reason"], event["action"], event["note"]) == (
        "Normal",
        "Synced",
        "Synced",
        "copied",
    )
    assert "series" not in event


async def test_names_are_unique_and_valid_even_at_one_instant() -> None:
    """client-go names Events ``<name>.<UnixNano hex>``; two events in the same
    nanosecond (a frozen clock here) still get distinct names, and a name that is no DNS
    subdomain (RBAC's ``system:...``) is folded into one."""
    sink = FakeSink()
    async with recorder(sink) as rec:
        role: Obj = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole"}
        role["metadata"] = {"name": "system:Controller"}
        rec.event(role, reason="A", note="")
        rec.event(role, reason="B", note="")
        await flushed(rec)
    names = [event["metadata"]["name"] for _, event in sink.calls]
    assert len(set(names)) == 2
    assert all(n.startswith("system-controller.") for n in names)


# --- aggregation into a series ---------------------------------------------------------


async def test_repeats_aggregate_into_one_event_with_a_series() -> None:
    """client-go ``recordToSink``: the first event is created; the second starts a series
    ``{count: 2, lastObservedTime}`` patched at once; later ones only count in memory;
    ``finishSeries`` writes the final count once the series is idle for 6 minutes."""
    sink, clock = FakeSink(), FakeClock()
    async with recorder(sink, clock) as rec:
        for _ in range(5):
            clock.advance(1)
            rec.event(configmap(), reason="Synced", note="same")
        await flushed(rec)
        assert [verb for verb, _ in sink.calls] == ["create", "patch"]
        assert sink.calls[1][1]["series"]["count"] == 2
        assert rec.stats.aggregated == 4
        clock.advance(FINISH_TIME + 61)
        rec.event(configmap("other"), reason="Synced", note="same")  # wakes the loop
        await flushed(rec)
    [final] = [body for verb, body in sink.calls[2:] if verb == "patch"]
    assert final["series"]["count"] == 5
    assert MICRO_TIME.match(final["series"]["lastObservedTime"])
    assert len(sink.stored) == 2


@pytest.mark.parametrize(
    ("second", "aggregates"),
    [
        ({"rv": "8"}, True),
        ({"note": "other"}, False),
        ({"type": "Warning"}, False),
        ({"action": "Copy"}, False),
        ({"name": "other"}, False),
    ],
    ids=["new-resource-version", "other-note", "other-type", "other-action", "other-object"],
)
async def test_what_counts_as_a_repeat(second: dict[str, str], aggregates: bool) -> None:
    """The key is ``tools/record``'s ``getEventKey`` (object without resourceVersion,
    type, reason, message) plus action: client-go's ``tools/events`` key would also split
    on the resourceVersion and would fold a different note into the first Event."""
    sink = FakeSink()
    async with recorder(sink) as rec:
        rec.event(configmap(), reason="Synced", note="same")
        obj = configmap(second.get("name", "web"), rv=second.get("rv", "7"))
        rec.event(
            obj,
            type=second.get("type", "Normal"),
            reason="Synced",
            note=second.get("note", "same"),
            action=second.get("action"),
        )
        await flushed(rec)
    assert [verb for verb, _ in sink.calls] == (
        ["create", "patch"] if aggregates else ["create", "create"]
    )


def test_series_refresh_and_finish_windows() -> None:
    """client-go ``refreshExistingEventSeries`` (a running series is written again every
    30 min) and ``finishSeries`` (a series idle for 6 min is written a last time and
    forgotten; a single event is forgotten 6 min after its eventTime)."""
    cache = SeriesCache()
    cache.observe(_keyed("a"), 0.0)
    _, [start] = cache.observe(_keyed("a"), 0.0)
    cache.written(start, 0.0)
    cache.observe(_keyed("b"), 0.0)
    cache.observe(_keyed("a"), 300.0)
    assert cache.due(FINISH_TIME + 1) == [] and len(cache) == 1  # "b" forgotten
    for t in range(600, 1501, 300):
        assert cache.observe(_keyed("a"), float(t)) == (True, [])  # counted in memory only
    assert cache.due(REFRESH_TIME - 1) == []
    [refresh] = cache.due(REFRESH_TIME)
    assert refresh.event["series"]["count"] == 7
    cache.written(refresh, REFRESH_TIME)
    assert cache.due(REFRESH_TIME + 1) == []
    cache.observe(_keyed("a"), REFRESH_TIME + 10)
    assert cache.due(REFRESH_TIME + 10 + FINISH_TIME) == []  # not idle for more than 6 min
    [final] = cache.due(REFRESH_TIME + 11 + FINISH_TIME)
    assert final.event["series"]["count"] == 8 and len(cache) == 0


def _keyed(name: str) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "demo"},
        "regarding": {"kind": "ConfigMap", "name": name},
        "type": "Normal",
        "reason": "R",
        "action": "R",
        "note": "",
        "reportingController": COMPONENT,
        "reportingInstance": "i",
    }


async def test_a_lost_event_is_created_again_with_its_series() -> None:
    """client-go ``recordEvent``: when the series patch finds no Event (``IsKeyNotFound``:
    TTL expiry, deleted by hand) the Event is created, series included."""
    sink = FakeSink()
    async with recorder(sink) as rec:
        rec.event(configmap(), reason="Synced", note="same")
        await flushed(rec)
        sink.stored.clear()
        rec.event(configmap(), reason="Synced", note="same")
        await flushed(rec)
    assert [verb for verb, _ in sink.calls] == ["create", "patch", "create"]
    assert sink.calls[2][1]["series"]["count"] == 2


# --- spam filter, buffer ---------------------------------------------------------------


async def test_spam_filter_burst_25_then_one_per_5_minutes() -> None:
    """client-go ``EventSourceObjectSpamFilter``: per source+object token bucket,
    ``defaultSpamBurst = 25``, ``defaultSpamQPS = 1/300``; filtered events are dropped
    before aggregation and counted; other objects have their own bucket."""
    sink, clock = FakeSink(), FakeClock()
    rec = recorder(sink, clock)
    for i in range(30):
        rec.event(configmap(), reason=f"R{i}", note="")
    assert (rec.stats.recorded, rec.stats.filtered) == (25, 5)
    rec.event(configmap("other"), reason="R", note="")
    assert rec.stats.recorded == 26
    clock.advance(299)
    rec.event(configmap(), reason="R", note="")
    assert rec.stats.filtered == 6
    clock.advance(1)
    rec.event(configmap(), reason="R", note="")
    rec.event(configmap(), reason="R", note="")
    assert (rec.stats.recorded, rec.stats.filtered) == (27, 7)


async def test_full_buffer_drops_and_counts() -> None:
    """client-go's broadcaster queue holds ``maxQueuedEvents`` (1000) and drops when full
    (``DropIfChannelFull``); the caller never waits. Buffered events are written once the
    recorder runs."""
    sink = FakeSink()
    rec = recorder(sink, buffer_size=3)
    for i in range(5):
        rec.event(configmap(f"cm-{i}"), reason="Synced", note="")
    assert (rec.stats.recorded, rec.dropped) == (3, 2)
    async with rec:
        await flushed(rec)
    assert len(sink.calls) == 3
    rec.event(configmap(), reason="Synced", note="")  # closed: dropped, counted
    assert rec.dropped == 3


async def test_a_recorder_not_running_warns_once_and_counts() -> None:
    """Events recorded while the recorder does not run wait in its buffer, lost if it
    never runs: one warning says how to run it, ``stats.not_running`` counts them."""
    sink = FakeSink()
    rec = recorder(sink)
    with structlog.testing.capture_logs() as logs:
        for i in range(3):
            rec.event(configmap(f"cm-{i}"), reason="Synced", note="")
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert warning["event"] == "event recorder not running"
    assert "async with recorder" in warning["detail"] and "recorder.run" in warning["detail"]
    assert (rec.stats.not_running, rec.stats.recorded, rec.dropped) == (3, 3, 0)
    with structlog.testing.capture_logs() as logs:
        async with rec:
            rec.event(configmap("running"), reason="Synced", note="")
            await flushed(rec)
    assert not [e for e in logs if e["log_level"] == "warning"]
    assert rec.stats.not_running == 3 and len(sink.calls) == 4


# --- failures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "attempts"),
    [
        (BadRequest("invalid"), 1),
        (Forbidden("namespace is being terminated"), 1),
        (ConnectionFailed("refused", address="https://x"), 3),
        (ServerError("etcd timeout"), 3),
    ],
    ids=["400-not-retried", "403-not-retried", "connection-retried", "5xx-retried"],
)
async def test_write_failures_are_counted_and_never_raised(
    failure: Exception, attempts: int
) -> None:
    """client-go ``recordEvent``/``attemptRecording``: a status error is given up at once,
    a transport failure retried up to ``maxTriesPerEvent`` (here 3); the recorder goes on
    with the next event. Logs name the reason and object, never the note."""
    sink = FakeSink(*[failure] * attempts)
    with structlog.testing.capture_logs() as logs:
        async with recorder(sink, max_tries=3, retry_delay=0) as rec:
            rec.event(configmap(), reason="Synced", note="secret-ish text")
            await flushed(rec)
            rec.event(configmap("next"), reason="Synced", note="")
            await flushed(rec)
    assert len(sink.calls) == attempts + 1
    assert (rec.stats.failed, rec.stats.written) == (1, 1)
    assert all("secret-ish" not in repr(entry) for entry in logs)
    assert any(e.get("reason") == "Synced" and "not written" in e["event"] for e in logs)


async def test_a_broken_sink_is_absorbed_and_reported(handler_failures: list[Any]) -> None:
    """A sink raising something other than an API error is a bug: absorbed like a
    raising handler (counted, reported to the failure hooks), never raised."""
    sink = FakeSink(RuntimeError("bug in sink"))
    async with recorder(sink) as rec:
        rec.event(configmap(), reason="Synced", note="")
        rec.event(configmap("next"), reason="Synced", note="")
        await flushed(rec)
    assert (rec.stats.failed, rec.stats.written) == (1, 1)
    assert [f.kind for f in handler_failures] == ["event"]


@pytest.mark.parametrize(
    ("regarding", "kwargs"),
    [
        (configmap(), {"type": "Info"}),
        (configmap(), {"reason": ""}),
        (configmap(), {"reason": "R" * 129}),
        ({"metadata": {"name": "x"}}, {}),
        ("demo/web", {}),
    ],
    ids=["bad-type", "empty-reason", "long-reason", "no-kind", "not-a-dict"],
)
async def test_invalid_arguments_are_reported_not_raised(
    regarding: Any, kwargs: dict[str, Any], handler_failures: list[Any]
) -> None:
    """client-go logs and drops an event it cannot build (``GetReference`` failing, an
    unsupported type); here it is also counted and reported so a test notices."""
    rec = recorder(FakeSink())
    rec.event(regarding, **({"reason": "Synced", "note": ""} | kwargs))
    assert (rec.stats.invalid, rec.stats.recorded) == (1, 0)
    assert [f.kind for f in handler_failures] == ["event"]


def test_construction_checks() -> None:
    """reportingController must be a qualified name (API validation); the client is an
    object with ``api_client`` (``informer.Client``) or an ApiClient."""
    with pytest.raises(ValueError, match="qualified name"):
        EventRecorder(None, "my controller", sink=FakeSink())
    with pytest.raises(TypeError, match="api_client"):
        EventRecorder(object(), COMPONENT)
    named = EventRecorder(None, "example.com/web", sink=FakeSink(), instance="pod-1")
    assert named.instance == "pod-1"


async def test_a_holder_without_an_api_client_fails_at_write(handler_failures: list[Any]) -> None:
    """A Controller built without an ApiClient (unit tests) can hold a recorder; only a
    write needs the client, and its absence is a reported failure, not a crash."""
    async with EventRecorder(SimpleNamespace(api_client=None), COMPONENT) as rec:
        rec.event(configmap(), reason="Synced", note="")
        await flushed(rec)
    assert rec.stats.failed == 1
    assert [type(f.error) for f in handler_failures] == [TypeError]


def test_long_notes_are_cut_to_1_kib() -> None:
    """The API rejects notes over 1 KiB (``NoteLengthLimit``); the note is cut on a
    character boundary rather than the Event lost."""
    rec = recorder(FakeSink())
    rec.event(configmap(), reason="Synced", note="é" * 1000)
    [event] = rec._buffer
    assert len(event["note"].encode()) <= 1024 and set(event["note"]) == {"é"}


# --- the real API server ---------------------------------------------------------------


async def _configmap(api: Any, namespace: str, name: str = "web") -> Obj:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    return await request_json(api, "POST", path, body=body)


async def _events(api: Any, prefix: str, namespace: str) -> list[Obj]:
    found = await request_json(api, "GET", f"{prefix}/namespaces/{namespace}/events")
    return list(found["items"])


async def test_event_lands_as_events_k8s_io_v1(api_client: Any, namespace: str) -> None:
    """client-go ``NewEventBroadcasterAdapter`` uses events.k8s.io/v1 when discovery
    serves it; the Event carries the regarding reference and reporting controller."""
    cm = await _configmap(api_client, namespace)
    async with EventRecorder(api_client, COMPONENT) as rec:
        rec.event(cm, type="Warning", reason="SourceMissing", note="no source", action="Sync")
        await flushed(rec)
    assert rec.stats.written == 1 and isinstance(rec.sink, ApiEventSink)
    assert rec.sink.api_version == "events.k8s.io/v1"
    [event] = await _events(api_client, "/apis/events.k8s.io/v1", namespace)
    meta = cm["metadata"]
    assert event["regarding"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "web",
        "namespace": namespace,
        "uid": meta["uid"],
        "resourceVersion": meta["resourceVersion"],
    }
    assert event["reportingController"] == COMPONENT
    assert (event["type"], event["reason"], event["action"], event["note"]) == (
        "Warning",
        "SourceMissing",
        "Sync",
        "no source",
    )
    assert MICRO_TIME.match(event["eventTime"]) and "deprecatedCount" not in event


async def test_cluster_scoped_object_event_goes_to_default(api_client: Any, namespace: str) -> None:
    """client-go ``makeEvent``: an Event about a cluster-scoped object lives in
    ``default`` (API validation accepts ``default`` or ``kube-system`` for those). The
    recorder is given an object holding the ApiClient, as an ``informer.Client`` does."""
    ns = await request_json(api_client, "GET", f"/api/v1/namespaces/{namespace}")
    holder = SimpleNamespace(api_client=api_client)  # as an informer.Client holds it
    async with EventRecorder(holder, COMPONENT) as rec:
        rec.event(ns, reason="Seen", note="")
        await flushed(rec)
    events = await _events(api_client, "/apis/events.k8s.io/v1", "default")
    mine = [e for e in events if e["regarding"].get("name") == namespace]
    for event in mine:
        path = f"/apis/events.k8s.io/v1/namespaces/default/events/{event['metadata']['name']}"
        await request_json(api_client, "DELETE", path)
    [event] = mine
    assert event["regarding"]["kind"] == "Namespace" and "namespace" not in event["regarding"]


async def test_repeats_are_one_event_with_series_count(api_client: Any, namespace: str) -> None:
    """client-go ``recordToSink``: repeats make one Event whose ``series.count`` is 2 at
    once and the final count after ``finishSeries`` (6 min idle: injected clock)."""
    cm = await _configmap(api_client, namespace)
    clock = FakeClock()
    clock.now = time.time()
    async with EventRecorder(api_client, COMPONENT, clock=clock) as rec:
        for _ in range(3):
            rec.event(cm, reason="Synced", note="copied")
        await flushed(rec)
        [event] = await _events(api_client, "/apis/events.k8s.io/v1", namespace)
        assert event["series"]["count"] == 2
        clock.advance(FINISH_TIME + 61)
        rec.event(cm, reason="Other", note="")  # wakes the loop: the series is finished
        await flushed(rec)
    events = await _events(api_client, "/apis/events.k8s.io/v1", namespace)
    [synced] = [e for e in events if e["reason"] == "Synced"]
    assert synced["series"]["count"] == 3 and len(events) == 2


async def test_core_v1_fallback_when_events_api_is_not_served(
    api_client: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """client-go ``NewEventBroadcasterAdapter`` falls back to ``tools/record`` (core/v1
    Events with ``count``/``firstTimestamp``/``lastTimestamp``/``source``) when discovery
    does not serve events.k8s.io/v1; discovery runs once. The server lacks the
    group-version the sink probes here, so its 404 is real."""
    probes: list[str] = []

    async def spy(api: Any, method: str, path: str, **kw: Any) -> Obj:
        if method == "GET":
            probes.append(path)
        return await request_json(api, method, path, **kw)

    monkeypatch.setattr(sink_module, "request_json", spy)
    cm = await _configmap(api_client, namespace)
    sink = ApiEventSink(api_client, group_version="events.example.invalid/v1")
    async with EventRecorder(api_client, COMPONENT, sink=sink) as rec:
        rec.event(cm, reason="Synced", note="copied")
        rec.event(cm, reason="Synced", note="copied")
        rec.event(cm, reason="Other", note="")
        await flushed(rec)
    assert probes == ["/apis/events.example.invalid/v1"] and sink.api_version == "v1"
    assert rec.stats.written == 3
    core = await _events(api_client, "/api/v1", namespace)
    [synced] = [e for e in core if e["reason"] == "Synced"]
    assert synced["count"] == 2 and synced["source"] == {"component": COMPONENT}
    assert synced["involvedObject"]["uid"] == cm["metadata"]["uid"]
    assert synced["message"] == "copied" and synced["firstTimestamp"]
    assert synced["reportingComponent"] == COMPONENT and synced["action"] == "Synced"
    [as_new] = [
        e
        for e in await _events(api_client, "/apis/events.k8s.io/v1", namespace)
        if e["reason"] == "Synced"
    ]
    assert as_new.get("eventTime") is None and as_new["deprecatedCount"] == 2
