"""The Python peers, each run in its own process by the benchmarks.

``python -m bench._peer PEER --mode MODE [options]`` prints one JSON line (the result);
in ``latency`` mode it first prints ``{"ready": true}``, then waits for ``stop`` on stdin.

Peers: ``ours`` (SharedIndexInformer, or Controller for latency; ``--metadata-only``: the
metadata-only informer, ``PartialObjectMetadata``), ``floor`` (aiohttp +
orjson + a dict: the decode floor), ``kubernetes_asyncio`` (list + ``watch.Watch`` with
model deserialisation), ``official`` (the official client's ``kubernetes.informer``),
``kopf`` (a no-op ``@kopf.on.event`` operator).

Throughput: every peer counts in its handler the MODIFIED events it received (kopf: see
:func:`kopf_peer`) and reports that count and the wall-clock time its handler saw the
last one; the runner checks the count against the events sent and subtracts the time the
replay server received the watch. ``BENCH_BREAK`` breaks a peer on purpose
(:mod:`bench._faults`).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import orjson

from bench import _stallattr
from bench._faults import BREAK_ENV, injected
from bench._mem import peak_rss, settle

PEERS = ("ours", "floor", "kubernetes_asyncio", "official", "kopf")
MODES = ("throughput", "sync", "latency")
GC_THRESHOLDS = (50_000, 50, 100)  # informer._manager.startup.GC_THRESHOLDS


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


def collection_path(resource: str, namespace: str | None) -> str:
    prefix = "/apis/apps/v1" if resource == "deployments" else "/api/v1"
    ns = f"/namespaces/{namespace}" if namespace else ""
    return f"{prefix}{ns}/{resource}"


def freeze_gc() -> None:
    """What ``python -m informer.run --gc-freeze`` does once synced (``GcState.freeze``:
    no collection first, it would traverse the whole cache with the loop blocked)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.enable()


def full_collect_after_freeze() -> tuple[float, float, int]:
    """What a ``gc.collect()`` right before the freeze would have cost (the runner did
    that until issue 13): unfreeze, collect, freeze again; ``(seconds, CPU seconds,
    unreachable objects found)``. Only for the report: run it outside the measured window."""
    gc.unfreeze()
    t0, c0 = time.perf_counter(), time.thread_time()
    found = gc.collect()
    took, cpu = time.perf_counter() - t0, time.thread_time() - c0
    gc.freeze()
    return took, cpu, found


class StallMonitor:
    """The event loop's lateness: a task sleeps :attr:`period` in a loop and records how
    much later than asked it woke up (what a health probe or a lease renewal would wait).

    ``max_s`` is the longest lateness observed so far, ``worst`` the longest ones as
    ``(lateness, seconds since start at wake-up)``, longest first. :meth:`gc_callback`
    (in ``gc.callbacks``) records the longest and the total time of each generation's
    collections, to tell a GC pause from the informer's own work.
    """

    KEEP = 5

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.start = time.perf_counter()
        self.max_s = 0.0
        self.max_cpu_s = 0.0
        self.worst: list[tuple[float, float]] = []
        self.gc_max_s = [0.0, 0.0, 0.0]
        self.gc_total_s = [0.0, 0.0, 0.0]
        self.gc_count = [0, 0, 0]
        self._gc_started = 0.0

    async def run(self) -> None:
        clock = time.perf_counter
        cpu = time.thread_time
        while True:
            t0, c0 = clock(), cpu()
            await anyio.sleep(self.period)
            now = clock()
            late = now - t0 - self.period
            busy = cpu() - c0
            if busy > self.max_cpu_s:
                self.max_cpu_s = busy
            if late > self.max_s:
                self.max_s = late
            if len(self.worst) < self.KEEP or late > self.worst[-1][0]:
                self.worst.append((late, now - self.start))
                self.worst.sort(reverse=True)
                del self.worst[self.KEEP :]

    def gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        took = time.perf_counter() - self._gc_started
        gen = int(info.get("generation", 2))
        self.gc_count[gen] += 1
        self.gc_total_s[gen] += took
        self.gc_max_s[gen] = max(self.gc_max_s[gen], took)

    def report(self, prefix: str) -> dict[str, Any]:
        """The figures so far, in milliseconds, keys starting with ``prefix``."""
        return {
            f"{prefix}_max_ms": self.max_s * 1000,
            f"{prefix}_max_cpu_ms": self.max_cpu_s * 1000,
            f"{prefix}_worst_ms": [[late * 1000, at] for late, at in self.worst],
            f"{prefix}_gc_max_ms": [v * 1000 for v in self.gc_max_s],
            f"{prefix}_gc_total_ms": [v * 1000 for v in self.gc_total_s],
            f"{prefix}_gc_count": list(self.gc_count),
        }


async def wait_for_stop() -> None:
    """Return once the runner writes ``stop`` (or closes stdin)."""
    while True:
        line = await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if not line or line.strip() == "stop":
            return


class Latencies:
    """Write-to-reconcile latencies: the object's ``data["t"]`` (unix ns, set by the
    writer just before its request) against the clock when reconcile runs."""

    def __init__(self) -> None:
        self.since = time.time_ns()
        self.values: list[float] = []

    def observe(self, data: Any) -> None:
        now = time.time_ns()
        try:
            t = int(data["t"])
        except (KeyError, TypeError, ValueError):
            return
        if t > self.since:
            self.values.append((now - t) / 1e6)


# --------------------------------------------------------------------------- ours


async def ours(opts: argparse.Namespace) -> dict[str, Any]:
    from informer import HandlerFuncs, SharedInformerFactory, new_api_client
    from informer.cache import share_strings, strip_managed_fields
    from informer.resources import CONFIGMAPS, DEPLOYMENTS

    resource = DEPLOYMENTS if opts.resource == "deployments" else CONFIGMAPS
    if opts.mode == "latency":
        return await ours_latency(opts)
    attribution = _stallattr.install() if opts.attribute else None
    api = await new_api_client(kubeconfig=opts.kubeconfig)
    transform: Callable[[Any], Any] | None = strip_managed_fields if opts.strip else None
    if opts.share_strings:
        transform = (
            (lambda obj: share_strings(strip_managed_fields(obj))) if opts.strip else share_strings
        )
    factory = SharedInformerFactory(
        api,
        namespace=opts.namespace or None,
        transform=transform,
        reflector_options={"use_watch_list": opts.watch_list},
    )
    informer = factory.informer_for(resource, metadata_only=opts.metadata_only)
    updates = 0
    adds = 0
    first = last = 0.0
    done = anyio.Event()
    target = opts.events

    def on_add(obj: Any) -> None:
        nonlocal adds
        adds += 1

    def on_update(old: Any, new: Any) -> None:
        nonlocal updates, first, last
        updates += 1
        if updates == 1:
            first = time.time()
        if updates == target:
            last = time.time()
            done.set()

    registration = informer.add_event_handler(HandlerFuncs(on_add, on_update))
    rss0 = settle()
    if opts.gc == "freeze":
        gc.disable()
    result: dict[str, Any] = {"peer": "ours"}
    monitor = StallMonitor() if opts.stalls else None
    async with anyio.create_task_group() as monitoring:
        if monitor is not None:
            gc.callbacks.append(monitor.gc_callback)
            monitoring.start_soon(monitor.run)
            await anyio.lowlevel.checkpoint()  # the monitor sleeps before the informer starts
            monitor.start = time.perf_counter()
        start = time.perf_counter()
        cpu_start = time.process_time()
        async with factory:
            await factory.wait_for_cache_sync()
            result["store_sync_seconds"] = time.perf_counter() - start
            await informer.wait_for_sync(registration)  # the handler saw every add
            result["handler_sync_seconds"] = time.perf_counter() - start
            result["sync_cpu_seconds"] = time.process_time() - cpu_start
            # Every peer's sync time is its handler having seen the initial list.
            result["sync_seconds"] = result["handler_sync_seconds"]
            if monitor is not None:
                result.update(monitor.report("stall_sync"))
            if opts.gc == "freeze":
                t0 = time.perf_counter()
                freeze_gc()
                result["freeze_seconds"] = time.perf_counter() - t0
            if monitor is not None:
                await anyio.sleep(4 * monitor.period)  # the monitor wakes after the freeze
                result.update(monitor.report("stall_total"))
                gc.callbacks.remove(monitor.gc_callback)
                monitoring.cancel_scope.cancel()
                if opts.gc == "freeze":
                    took, cpu, found = full_collect_after_freeze()
                    result.update(
                        full_collect_seconds=took,
                        full_collect_cpu_seconds=cpu,
                        full_collect_found=found,
                    )
            result["objects"] = len(informer.indexer)
            if attribution is not None:
                result["attribution"] = attribution.report()
            if opts.mode == "throughput":
                with anyio.move_on_after(opts.timeout):
                    await done.wait()
                if not done.is_set():
                    raise SystemExit(
                        f"ours: {updates} of {target} MODIFIED events in {opts.timeout:g} s"
                    )
                result.update(events=updates, first_event_unix=first, last_event_unix=last)
            result.update(rss_before=rss0, rss_after=settle(), peak_rss=peak_rss())
    await api.close()
    return result


async def ours_latency(opts: argparse.Namespace) -> dict[str, Any]:
    from informer import Controller, SharedInformerFactory, new_api_client
    from informer._cache.informer import SharedIndexInformer
    from informer.resources import CONFIGMAPS

    lat = Latencies()

    class LatencyProbe(Controller):
        cms: SharedIndexInformer

        def setup(self) -> None:
            self.cms = self.watch(CONFIGMAPS)

        async def reconcile(self, key: str) -> None:
            obj = self.cms.indexer.get_by_key(key)
            if obj is not None:
                lat.observe(obj.get("data"))

    api = await new_api_client(kubeconfig=opts.kubeconfig)
    factory = SharedInformerFactory(api, namespace=opts.namespace or None)
    controller = LatencyProbe(factory, api)
    async with factory, anyio.create_task_group() as tg:
        await tg.start(controller.run)
        lat.since = time.time_ns()
        emit({"ready": True})
        await wait_for_stop()
        tg.cancel_scope.cancel()
    await api.close()
    return {"peer": "ours", "latencies_ms": sorted(lat.values)}


# --------------------------------------------------------------------------- floor


async def floor(opts: argparse.Namespace) -> dict[str, Any]:
    """aiohttp stream + orjson + a dict store: the least any Python client must do."""
    from informer import new_api_client

    api = await new_api_client(kubeconfig=opts.kubeconfig)
    session = api.rest_client.pool_manager  # the same aiohttp session as ApiListerWatcher
    host = str(api.configuration.host).rstrip("/")
    url = host + collection_path(opts.resource, opts.namespace)
    store: dict[str, Any] = {}
    loads = orjson.loads
    rss0 = settle()
    if opts.gc == "freeze":
        gc.disable()
    start = time.perf_counter()
    rv = ""
    token = ""
    while True:  # paginated list, as the informers do
        params = {"limit": "500", "resourceVersion": "0"} if not token else {"limit": "500"}
        if token:
            params["continue"] = token
        async with session.get(url, params=params) as resp:
            page = loads(await resp.read())
        for obj in page["items"]:
            meta = obj["metadata"]
            store[f"{meta['namespace']}/{meta['name']}"] = obj
        token = page["metadata"].get("continue") or ""
        if not token:
            rv = page["metadata"]["resourceVersion"]
            break
    result: dict[str, Any] = {
        "peer": "floor",
        "sync_seconds": time.perf_counter() - start,
        "objects": len(store),
    }
    if opts.gc == "freeze":
        freeze_gc()
    if opts.mode == "throughput":
        target = opts.events
        n = 0
        first = last = 0.0
        params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true",
                  "timeoutSeconds": "600"}  # fmt: skip
        async with session.get(url, params=params, timeout=None) as resp:
            buf = b""
            content = resp.content
            while n < target:
                chunk = await content.readany()
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if not line:
                        continue
                    event = loads(line)
                    obj = event["object"]
                    meta = obj["metadata"]
                    store[f"{meta['namespace']}/{meta['name']}"] = obj
                    if event["type"] == "MODIFIED":
                        n += 1
                        if n == 1:
                            first = time.time()
            last = time.time()
        result.update(events=n, first_event_unix=first, last_event_unix=last)
    result.update(rss_before=rss0, rss_after=settle(), peak_rss=peak_rss())
    await api.close()
    return result


# --------------------------------------------------------------------------- kubernetes_asyncio


async def kubernetes_asyncio_peer(opts: argparse.Namespace) -> dict[str, Any]:
    """List and ``watch.Watch`` with model deserialisation (how the library is used)."""
    from kubernetes_asyncio import client, config, watch

    cfg = client.Configuration()
    await config.load_kube_config(config_file=opts.kubeconfig, client_configuration=cfg)
    api_client = client.ApiClient(configuration=cfg)
    if opts.resource == "deployments":
        apps = client.AppsV1Api(api_client)
        list_fn: Callable[..., Any] = (
            apps.list_deployment_for_all_namespaces
            if not opts.namespace
            else apps.list_namespaced_deployment
        )
    else:
        core = client.CoreV1Api(api_client)
        list_fn = (
            core.list_config_map_for_all_namespaces
            if not opts.namespace
            else core.list_namespaced_config_map
        )
    args: tuple[str, ...] = (opts.namespace,) if opts.namespace else ()
    store: dict[str, Any] = {}
    rss0 = settle()
    start = time.perf_counter()
    token: str | None = None
    kwargs: dict[str, Any] = {"limit": 500, "resource_version": "0"}
    while True:
        page = await list_fn(*args, **kwargs)
        for obj in page.items:
            store[f"{obj.metadata.namespace}/{obj.metadata.name}"] = obj
        token = page.metadata._continue
        if not token:
            rv = page.metadata.resource_version
            break
        kwargs = {"limit": 500, "_continue": token}
    result: dict[str, Any] = {
        "peer": "kubernetes_asyncio",
        "sync_seconds": time.perf_counter() - start,
        "objects": len(store),
    }
    if opts.mode == "throughput":
        n = 0
        first = last = 0.0
        w = watch.Watch()
        async with w:
            async for event in w.stream(
                list_fn, *args, resource_version=rv, timeout_seconds=600,
                allow_watch_bookmarks=True,
            ):  # fmt: skip
                obj = event["object"]
                store[f"{obj.metadata.namespace}/{obj.metadata.name}"] = obj
                if event["type"] == "MODIFIED":
                    n += 1
                    if n == 1:
                        first = time.time()
                    if n >= opts.events:
                        last = time.time()
                        break
        result.update(events=n, first_event_unix=first, last_event_unix=last)
    result.update(rss_before=rss0, rss_after=settle(), peak_rss=peak_rss())
    await api_client.close()
    return result


# --------------------------------------------------------------------------- official


async def official(opts: argparse.Namespace) -> dict[str, Any]:
    """The official client's ``kubernetes.informer.SharedInformer`` (a thread, models)."""
    return await anyio.to_thread.run_sync(_official_blocking, opts)


def _official_blocking(opts: argparse.Namespace) -> dict[str, Any]:
    from kubernetes import client, config

    try:
        from kubernetes.informer import ADDED, MODIFIED, SharedInformer
    except ImportError as exc:  # older releases have no informer
        raise SystemExit(f"skip: kubernetes.informer is not in this release ({exc})") from exc

    cfg = client.Configuration()
    config.load_kube_config(config_file=opts.kubeconfig, client_configuration=cfg)  # type: ignore[no-untyped-call]
    api_client = client.ApiClient(configuration=cfg)
    list_fn: Callable[..., Any]
    if opts.resource == "deployments":
        apps = client.AppsV1Api(api_client)
        list_fn = (
            apps.list_namespaced_deployment
            if opts.namespace
            else apps.list_deployment_for_all_namespaces
        )
    else:
        core = client.CoreV1Api(api_client)
        list_fn = (
            core.list_namespaced_config_map
            if opts.namespace
            else core.list_config_map_for_all_namespaces
        )
    counts = {"added": 0, "modified": 0}
    first = last = 0.0
    synced = threading.Event()
    done = threading.Event()
    expected = opts.objects

    def on_added(obj: Any) -> None:
        counts["added"] += 1
        if counts["added"] >= expected:
            synced.set()

    def on_modified(obj: Any) -> None:
        nonlocal first, last
        counts["modified"] += 1
        if counts["modified"] == 1:
            first = time.time()
        if counts["modified"] == opts.events:
            last = time.time()
            done.set()

    informer: Any = SharedInformer(list_func=list_fn, namespace=opts.namespace or None)  # type: ignore[no-untyped-call]
    informer.add_event_handler(ADDED, on_added)
    informer.add_event_handler(MODIFIED, on_modified)
    rss0 = settle()
    start = time.perf_counter()
    informer.start()
    if not synced.wait(opts.timeout):
        raise SystemExit(f"official informer: {counts['added']} of {expected} objects")
    result: dict[str, Any] = {
        "peer": "official",
        "sync_seconds": time.perf_counter() - start,
        "objects": len(informer.cache.list_keys()),
    }
    if opts.mode == "throughput":
        if not done.wait(opts.timeout):
            raise SystemExit(f"official informer: {counts['modified']} of {opts.events} events")
        result.update(events=counts["modified"], first_event_unix=first, last_event_unix=last)
    result.update(rss_before=rss0, rss_after=settle(), peak_rss=peak_rss())
    threading.Thread(target=informer.stop, daemon=True).start()  # may block in a read
    return result


# --------------------------------------------------------------------------- kopf


def replay_events_upto(j: int, rv: int, *, objects: int, events: int) -> int:
    """How many of the replay server's ``events`` modify object ``j`` at a
    resourceVersion ``<= rv`` (event ``i`` modifies object ``i % objects`` at
    resourceVersion ``objects + 1 + i``: see :mod:`bench._replay`)."""
    last = min(rv - objects - 1, events - 1)
    return 0 if last < j else (last - j) // objects + 1


async def kopf_peer(opts: argparse.Namespace) -> dict[str, Any]:
    """A no-op ``@kopf.on.event`` operator (kopf handles raw dicts, one task per object).

    kopf batches the events of one object (``batching.batch_window``, 0.1 s) and hands
    its handler only the latest, so the throughput run ends when the handler has seen the
    final resourceVersion of every object. Its ``events`` is counted in the handler: the
    replayed events at or below the highest resourceVersion it saw of each object (a
    call stands for the events of that object it batched); ``handler_calls`` is how many
    MODIFIED calls that took.
    """
    import logging

    import kopf

    logging.getLogger("kopf").setLevel(logging.WARNING)
    registry = kopf.OperatorRegistry()
    expected = opts.objects
    m = opts.objects
    final_rv = {}
    if opts.mode == "throughput":
        for j in range(min(m, opts.events)):  # the objects the events modify
            last_i = j + (opts.events - 1 - j) // m * m
            final_rv[j] = m + 1 + last_i
    seen: set[str] = set()
    rv_seen: dict[int, int] = {}  # object index -> highest MODIFIED resourceVersion seen
    converged: set[int] = set()
    modified_calls = 0
    synced = anyio.Event()
    done = anyio.Event()
    first = last = 0.0
    lat = Latencies()
    index_of: dict[str, int] = {}

    async def on_event(event: Any, body: Any, **_: Any) -> None:
        nonlocal modified_calls, first, last
        meta = body.get("metadata", {})
        name = meta.get("name", "")
        seen.add(name)
        if len(seen) >= expected:
            synced.set()
        if opts.mode == "latency":
            lat.observe(body.get("data"))
        elif opts.mode == "throughput" and event.get("type") == "MODIFIED":
            modified_calls += 1
            if first == 0.0:
                first = time.time()
            j = index_of.get(name)
            if j is None:
                j = index_of[name] = int(name.rsplit("-", 1)[1])
            rv = int(meta.get("resourceVersion", "0"))
            if rv > rv_seen.get(j, 0):
                rv_seen[j] = rv
            if j in final_rv and rv >= final_rv[j]:
                converged.add(j)
                if len(converged) >= len(final_rv):
                    last = time.time()
                    done.set()

    group, version = ("apps", "v1") if opts.resource == "deployments" else ("", "v1")
    kopf.on.event(group, version, opts.resource, registry=registry)(on_event)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False
        settings.watching.server_timeout = 600
        settings.scanning.disabled = True

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        return kopf.login_with_kubeconfig(**kwargs)

    os.environ["KUBECONFIG"] = opts.kubeconfig
    rss0 = settle()
    start = time.perf_counter()
    result: dict[str, Any] = {"peer": "kopf"}
    ready = threading.Event()
    stop = threading.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: kopf.operator(
                registry=registry,
                standalone=True,
                clusterwide=not opts.namespace,
                namespaces=[opts.namespace] if opts.namespace else [],
                ready_flag=ready,
                stop_flag=stop,
            )
        )
        with anyio.fail_after(opts.timeout):
            if opts.mode != "latency" or expected:
                await synced.wait()
        result.update(sync_seconds=time.perf_counter() - start, objects=len(seen))
        if opts.mode == "throughput":
            with anyio.move_on_after(opts.timeout):
                await done.wait()
            if not done.is_set():
                raise SystemExit(
                    f"kopf: {len(converged)} of {len(final_rv)} objects reached their final "
                    f"state ({modified_calls} MODIFIED handler calls) in {opts.timeout:g} s"
                )
            received = sum(
                replay_events_upto(j, rv, objects=m, events=opts.events)
                for j, rv in rv_seen.items()
            )
            result.update(
                events=received,
                handler_calls=modified_calls,
                first_event_unix=first,
                last_event_unix=last,
            )
        elif opts.mode == "latency":
            lat.since = time.time_ns()
            emit({"ready": True})
            await wait_for_stop()
            result["latencies_ms"] = sorted(lat.values)
        result.update(rss_before=rss0, rss_after=settle(), peak_rss=peak_rss())
        # kopf's operator task does not always finish on cancellation: leave from here.
        emit(result)
        _exit()
        stop.set()
        tg.cancel_scope.cancel()
    return result


# --------------------------------------------------------------------------- main


RUNNERS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "ours": ours,
    "floor": floor,
    "kubernetes_asyncio": kubernetes_asyncio_peer,
    "official": official,
    "kopf": kopf_peer,
}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench._peer")
    p.add_argument("peer", choices=PEERS)
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--resource", choices=("deployments", "configmaps"), default="configmaps")
    p.add_argument("--namespace", default="")
    p.add_argument("--events", type=int, default=0, help="throughput: MODIFIED events")
    p.add_argument("--objects", type=int, default=0, help="objects the list holds")
    p.add_argument("--strip", action="store_true", help="drop managedFields (transform)")
    p.add_argument(
        "--share-strings",
        action="store_true",
        help="ours: informer.cache.share_strings in the transform (after --strip)",
    )
    p.add_argument("--gc", choices=("default", "freeze"), default="default")
    p.add_argument("--watch-list", action="store_true", help="ours: sync by watch-list")
    p.add_argument(
        "--metadata-only",
        action="store_true",
        help="ours: a metadata-only informer (PartialObjectMetadata; sync and memory)",
    )
    p.add_argument(
        "--stalls",
        action="store_true",
        help="ours: measure the event loop's longest stall during the sync (and the freeze)",
    )
    p.add_argument(
        "--attribute",
        action="store_true",
        help="ours: time the sync's synchronous steps (list page decode, DeltaFIFO.replace)",
    )
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--profile", default="", help="write a pyinstrument profile (text) here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    opts = parse(argv)
    if injected(opts.peer) == "crash":
        raise RuntimeError(f"{BREAK_ENV} asks this peer ({opts.peer}) to crash")
    runner = RUNNERS[opts.peer]
    if not opts.profile:
        emit(anyio.run(runner, opts))
        _exit()
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    result = anyio.run(runner, opts)
    profiler.stop()
    with open(opts.profile, "w") as f:
        f.write(profiler.output_text(unicode=True, show_all=False, timeline=False))
    emit(result)
    _exit()


def _exit() -> None:
    """Leave at once: no teardown of a large cache, no join of a blocked reader thread."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
