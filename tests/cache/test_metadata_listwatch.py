"""Metadata-only lists and watches against a fake API server: what the real one cannot do.

The real kube-apiserver always converts to ``PartialObjectMetadata`` (that path is tested
end to end in ``test_metadata_informer.py``). A server that ignores the ``as=`` media
types and sends whole objects (aggregated API servers, old servers), or refuses them with
406, is emulated here by an ``aiohttp`` ``RawTestServer`` on 127.0.0.1
(``fake_http.serving``): whatever the server did, the cache must hold the same
metadata-only objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
import pytest
from aiohttp import web
from fake_http import serving
from kubernetes_asyncio.client import ApiClient, Configuration

from informer import Controller, HandlerFuncs, Resource, SharedInformerFactory, meta_namespace_key
from informer._cache.metadata import LIST_ACCEPT, PLAIN_JSON, WATCH_ACCEPT
from informer._exceptions import Forbidden
from informer.cache import ApiListerWatcher
from informer.resources import CONFIGMAPS

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

MODES = ("converts", "ignores", "refuses")
"""How the fake server answers the metadata media types: as kube-apiserver does, by
sending whole objects (taking the trailing ``application/json``), or with 406."""

NOT_ACCEPTABLE = {
    "kind": "Status",
    "apiVersion": "v1",
    "status": "Failure",
    "message": "only the following media types are accepted: application/json, "
    "application/yaml, application/vnd.kubernetes.protobuf",
    "reason": "NotAcceptable",
    "code": 406,
}


def meta(name: str, rv: int) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "ns",
        "uid": f"uid-{name}",
        "resourceVersion": str(rv),
        "labels": {"app": name},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}],
    }


def configmap(name: str, rv: int) -> dict[str, Any]:
    """A whole ConfigMap as a watch event carries it."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, rv), "data": {"k": "v"}}


def cached(name: str, rv: int) -> dict[str, Any]:
    """What a metadata-only informer must cache for it, however the server answered."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, rv)}


LISTED = [configmap("a", 1), configmap("b", 2)]
WATCHED = [
    ("MODIFIED", configmap("a", 3)),
    ("DELETED", configmap("b", 4)),
    ("ADDED", configmap("c", 5)),
]


class MetadataServer:
    """Serves LISTED (list) and WATCHED (the first watch; later ones stay silent) of
    ConfigMaps in ``ns``, answering the metadata media types as ``mode`` says; records
    ``(verb, Accept)`` of every request."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests: list[tuple[str, str]] = []
        self.url = ""
        self.watches = 0

    def _partial(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", **obj}

    async def dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        accept = request.headers.get("Accept", "")
        watch = request.query.get("watch") == "true"
        self.requests.append(("watch" if watch else "list", accept))
        if self.mode == "refuses" and "as=" in accept:
            return web.json_response(NOT_ACCEPTABLE, status=406)
        partial = self.mode == "converts" and "as=PartialObjectMetadata" in accept
        if not watch:
            if partial:
                page = {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "items": [self._partial({"metadata": o["metadata"]}) for o in LISTED],
                }
            else:  # a List's items carry no apiVersion/kind
                items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")}
                         for o in LISTED]  # fmt: skip
                page = {"kind": "ConfigMapList", "apiVersion": "v1", "items": items}
            page["metadata"] = {"resourceVersion": "2"}
            return web.json_response(page)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        self.watches += 1
        if self.watches == 1:
            for type_, obj in WATCHED:
                sent = self._partial({"metadata": obj["metadata"]}) if partial else obj
                await resp.write(orjson.dumps({"type": type_, "object": sent}) + b"\n")
            bookmark = {"kind": "PartialObjectMetadata" if partial else "ConfigMap",
                        "metadata": {"resourceVersion": "6"}}  # fmt: skip
            await resp.write(orjson.dumps({"type": "BOOKMARK", "object": bookmark}) + b"\n")
        await anyio.sleep_forever()
        return resp  # pragma: no cover - the client leaves first


@pytest.fixture(params=MODES)
async def server(request: pytest.FixtureRequest) -> AsyncIterator[MetadataServer]:
    fake = MetadataServer(request.param)
    async with serving(fake.dispatch) as fake.url:
        yield fake


@pytest.fixture
async def api_client(server: MetadataServer) -> AsyncIterator[ApiClient]:
    async with ApiClient(configuration=Configuration(host=server.url)) as client:
        yield client


def expected_accepts(mode: str, verbs: list[str]) -> list[tuple[str, str]]:
    """The (verb, Accept) a metadata-only lister-watcher sends for ``verbs`` in order: a
    406 is retried once as plain JSON, and plain JSON is asked for from then on."""
    if mode != "refuses":
        return [(v, LIST_ACCEPT if v == "list" else WATCH_ACCEPT) for v in verbs]
    first = verbs[0]
    return [
        (first, LIST_ACCEPT if first == "list" else WATCH_ACCEPT),
        *((v, PLAIN_JSON) for v in verbs),
    ]


async def test_list_is_metadata_only_whatever_the_server_sent(
    server: MetadataServer, api_client: ApiClient
) -> None:
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns", metadata_only=True)
    pages = [await lw.list(), await lw.list()]
    for page in pages:
        assert page["items"] == [cached("a", 1), cached("b", 2)]
        assert page["metadata"] == {"resourceVersion": "2"}
    assert server.requests == expected_accepts(server.mode, ["list", "list"])


async def test_whole_object_lister_watcher_is_unchanged(
    server: MetadataServer, api_client: ApiClient
) -> None:
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns")
    page = await lw.list()
    assert [{"apiVersion": "v1", "kind": "ConfigMap", **o} for o in page["items"]] == LISTED
    with anyio.fail_after(10):
        async with lw.watch(resource_version="2") as events:
            first = await events.__anext__()
    assert first == {"type": "MODIFIED", "object": configmap("a", 3)}
    assert server.requests == [("list", PLAIN_JSON), ("watch", PLAIN_JSON)]


async def test_watch_is_metadata_only_whatever_the_server_sent(
    server: MetadataServer, api_client: ApiClient
) -> None:
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns", metadata_only=True)
    with anyio.fail_after(10):
        async with lw.watch(resource_version="2") as events:
            got = [await events.__anext__() for _ in range(4)]
    assert [(e["type"], e["object"]) for e in got[:3]] == [
        (type_, cached(obj["metadata"]["name"], int(obj["metadata"]["resourceVersion"])))
        for type_, obj in WATCHED
    ]
    # Bookmarks are left as sent (the Reflector reads only their resourceVersion).
    assert got[3]["type"] == "BOOKMARK"
    assert got[3]["object"]["metadata"] == {"resourceVersion": "6"}
    assert server.requests == expected_accepts(server.mode, ["watch"])


async def test_informer_caches_the_same_objects_whatever_the_server_sent(
    server: MetadataServer, api_client: ApiClient
) -> None:
    factory = SharedInformerFactory(api_client, namespace="ns")
    informer = factory.informer_for(CONFIGMAPS, metadata_only=True)
    assert factory.informer_for(CONFIGMAPS, metadata_only=True) is informer
    c_added = anyio.Event()

    def on_add(obj: Any) -> None:
        if obj["metadata"]["name"] == "c":
            c_added.set()

    informer.add_event_handler(HandlerFuncs(on_add=on_add))
    with anyio.fail_after(15):
        async with factory:
            await c_added.wait()
            objs = sorted(informer.lister().list(), key=meta_namespace_key)
    assert objs == [cached("a", 3), cached("c", 5)]
    assert informer.name == "configmaps@ns(metadata)"
    assert server.requests[:2] == expected_accepts(server.mode, ["list", "watch"])[:2]


async def test_other_failures_are_not_retried_as_plain_json() -> None:
    """Only a 406 means "not these media types": a 403 is raised, nothing is retried,
    and the metadata media types are still asked for afterwards."""
    accepts: list[str] = []

    async def forbid(request: web.BaseRequest) -> web.StreamResponse:
        accepts.append(request.headers.get("Accept", ""))
        body = {**NOT_ACCEPTABLE, "code": 403, "reason": "Forbidden", "message": "no"}
        return web.json_response(body, status=403)

    async with serving(forbid) as url, ApiClient(configuration=Configuration(host=url)) as client:
        lw = ApiListerWatcher(client, CONFIGMAPS, namespace="ns", metadata_only=True)
        with pytest.raises(Forbidden):
            await lw.list()
        with pytest.raises(Forbidden):
            async with lw.watch():
                raise AssertionError("a watch answered 403 was opened")
    assert accepts == [LIST_ACCEPT, WATCH_ACCEPT]


def test_metadata_only_needs_the_kind() -> None:
    no_kind = Resource("example.com", "v1", "widgets")
    with pytest.raises(ValueError, match=r"give Resource\(\.\.\., kind=\.\.\.\)"):
        ApiListerWatcher(None, no_kind, metadata_only=True)  # type: ignore[arg-type]
    factory = SharedInformerFactory(None)
    with pytest.raises(ValueError, match=r"metadata_only needs the kind of widgets\.example\.com"):
        factory.informer_for(no_kind, metadata_only=True)


def test_factory_keys_metadata_only_informers_apart() -> None:
    factory = SharedInformerFactory(None, namespace="ns")
    full = factory.informer_for(CONFIGMAPS)
    metadata = factory.informer_for(CONFIGMAPS, metadata_only=True)
    assert metadata is not full
    assert factory.informer_for(CONFIGMAPS) is full
    assert factory.informer_for(CONFIGMAPS, metadata_only=True) is metadata
    assert (full.name, metadata.name) == ("configmaps@ns", "configmaps@ns(metadata)")
    assert metadata.lister_watcher.metadata_only  # type: ignore[attr-defined]
    assert not full.lister_watcher.metadata_only  # type: ignore[attr-defined]
    # Cached reads (the Client) need whole objects: they never get the metadata informer.
    assert factory.find_informer(CONFIGMAPS, namespace="ns") is full
    assert factory.find_informer(CONFIGMAPS, namespace="ns", metadata_only=True) is metadata
    only_metadata = SharedInformerFactory(None)
    only_metadata.informer_for(CONFIGMAPS, metadata_only=True)
    assert only_metadata.find_informer(CONFIGMAPS, namespace="ns") is None


def test_controller_watch_takes_metadata_only_for_a_resource_not_an_informer() -> None:
    factory = SharedInformerFactory(None, namespace="ns")

    class Both(Controller):
        def setup(self) -> None:
            self.meta = self.watch(CONFIGMAPS, metadata_only=True)
            self.whole = self.watch(CONFIGMAPS)

    both = Both(factory, None)
    assert both.meta is factory.informer_for(CONFIGMAPS, metadata_only=True)
    assert both.whole is factory.informer_for(CONFIGMAPS)
    assert both.informers == [both.meta, both.whole]

    class Wrong(Controller):
        def setup(self) -> None:
            self.watch(factory.informer_for(CONFIGMAPS), metadata_only=True)

    with pytest.raises(ValueError, match="metadata_only apply to a Resource, not to an informer"):
        Wrong(factory, None)
