"""One object the cache cannot hold never stops a cache: a fake API server lists (or
watch-lists) 4,000 ConfigMaps of which one cannot be keyed (no ``metadata.name``, a
``metadata`` that is not a mapping, an item that is not an object) and sends such an
object on the watch too; the informer skips it each time, counts it
(``invalid_object``; an initial event without a resourceVersion is
``no_resource_version``), logs it once, and keeps every other object converging,
deletions by relist included.

The whole route is real (``ApiListerWatcher``'s streaming list decode, the watch line
decoder, Reflector, DeltaFIFO, store); only the server is a fake, since the real one
never serves a nameless object.
"""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import pytest
import structlog
from aiohttp import web
from fake_http import serving
from kubernetes_asyncio.client import ApiClient, Configuration

from informer._cache.informer import SharedIndexInformer
from informer._cache.listwatch import ApiListerWatcher
from informer._cache.transforms import strip_managed_fields
from informer._meta.resource import CONFIGMAPS
from informer.testing import eventually

pytestmark = pytest.mark.anyio

TIMEOUT = 30.0
N = 4_000
POISON_AT = 2_000


def cm(i: int, rv: int, value: str = "v") -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"c{i}",
            "namespace": "ns",
            "uid": f"u{i}",
            "resourceVersion": str(rv),
            "managedFields": [{"manager": "test"}],
        },
        "data": {"k": value},
    }


POISONS: dict[str, Any] = {
    "nameless": {"metadata": {"namespace": "ns", "uid": "u-bad", "resourceVersion": "7"}},
    "metadata-not-a-mapping": {"metadata": "surprise", "data": {"k": "v"}},
    "not-an-object": None,
}


class PoisonedServer:
    """Lists ``objects`` with ``poison`` among them at :data:`POISON_AT` (as a List, or
    as a watch-list's initial events); each watch then streams the lines sent with
    :meth:`event` (``None`` ends the watch)."""

    def __init__(self, poison: Any) -> None:
        self.poison = poison
        self.objects = {f"c{i}": cm(i, 10) for i in range(N)}
        self.rv = 100
        self.syncs = 0
        self.watches = 0
        self.send, self.receive = anyio.create_memory_object_stream[bytes | None](100)

    def items(self) -> list[Any]:
        self.syncs += 1
        items: list[Any] = list(self.objects.values())
        items.insert(POISON_AT, self.poison)
        return items

    async def dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.query.get("watch") in ("true", "1"):
            return await self.watch(request)
        body = {
            "kind": "ConfigMapList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self.rv)},
            "items": self.items(),
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def watch(self, request: web.BaseRequest) -> web.StreamResponse:
        self.watches += 1
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        if request.query.get("sendInitialEvents") == "true":
            lines = [orjson.dumps({"type": "ADDED", "object": obj}) for obj in self.items()]
            end = {
                "metadata": {
                    "resourceVersion": str(self.rv),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                }
            }
            lines.append(orjson.dumps({"type": "BOOKMARK", "object": end}))
            await resp.write(b"\n".join(lines) + b"\n")
        async for line in self.receive:
            if line is None:
                break
            await resp.write(line)
        await resp.write_eof()
        return resp

    async def event(self, type_: str, obj: Any) -> None:
        await self.send.send(orjson.dumps({"type": type_, "object": obj}) + b"\n")


@pytest.mark.parametrize("watch_list", [False, True], ids=["list", "watch-list"])
@pytest.mark.parametrize("poison", list(POISONS), ids=list(POISONS))
async def test_one_poisoned_object_is_skipped_and_everything_else_converges(
    poison: str, watch_list: bool
) -> None:
    server = PoisonedServer(POISONS[poison])
    # An initial event must carry a resourceVersion before its object is looked at.
    sync_cause = "no_resource_version" if watch_list and poison != "nameless" else "invalid_object"
    bad_sync = int(sync_cause == "invalid_object")
    async with (
        server.send,
        server.receive,
        serving(server.dispatch) as url,
        ApiClient(configuration=Configuration(host=url)) as api_client,
    ):
        informer = SharedIndexInformer(
            ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns"),
            transform=strip_managed_fields,
            name="configmaps",
            reflector_options={
                "backoff_initial": 0.01,
                "backoff_cap": 0.05,
                "use_watch_list": watch_list,
            },
        )
        stats = informer.reflector.stats
        with structlog.testing.capture_logs() as logs, anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                await tg.start(informer.run)
                assert len(informer.indexer) == N, "every other object of the list is cached"
                assert stats.bad_events == {sync_cause: 1}
                assert server.syncs == 1

                # The watch: a nameless object among good events, then a 410 (relist).
                await eventually(lambda: server.watches == 1, timeout=TIMEOUT)
                await server.event("ADDED", POISONS["nameless"] | {"x": 1})
                server.objects["c1"] = cm(1, 101, "changed")
                await server.event("MODIFIED", server.objects["c1"])
                server.objects["c4000"] = cm(4000, 102)
                await server.event("ADDED", server.objects["c4000"])

                def watched() -> None:
                    assert informer.indexer.get_by_key("ns/c4000") is not None
                    assert informer.indexer.get_by_key("ns/c1")["data"] == {"k": "changed"}

                await eventually(watched, timeout=TIMEOUT)
                assert stats.bad_events == {sync_cause: 1} | {"invalid_object": 1 + bad_sync}

                # Deleted while the watch was down: only the relist can drop it.
                del server.objects["c5"]
                server.rv = 200
                await server.event(
                    "ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "gone"}
                )

                def relisted() -> None:
                    assert informer.indexer.get_by_key("ns/c5") is None
                    assert set(informer.indexer.list_keys()) == {
                        f"ns/{name}" for name in server.objects
                    }

                await eventually(relisted, timeout=TIMEOUT)
                assert server.syncs == 2
                assert stats.bad_events == {sync_cause: 2} | {"invalid_object": 1 + 2 * bad_sync}
                assert stats.syncs == 2
                tg.cancel_scope.cancel()
    for cause in stats.bad_events:
        lines = [
            e for e in logs if e.get("cause") == cause and not e["event"].endswith(".suppressed")
        ]
        assert len(lines) == 1, f"{cause}: logged once (then at most once a minute)"
        assert "data" not in lines[0]
    (skipped,) = [e for e in logs if e["event"] == "object.skipped"]
    assert skipped["type"] == ("ADDED" if bad_sync == 0 else "watch-list" if watch_list else "list")
