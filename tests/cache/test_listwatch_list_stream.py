"""ApiListerWatcher.list_prepared decodes the List while its body arrives (a fake server
writes it in pieces, or stops, or writes what the real one never does); failures are
mapped as for any request (request_json). The real server's lists: test_list_decode_real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
import pytest
from fake_http import serving
from kubernetes_asyncio.client import ApiClient, Configuration
from test_listwatch import FakeApiServer

from informer._cache.list_decode import ItemFunc
from informer._cache.listwatch import ApiListerWatcher
from informer._exceptions import ApiError, ConnectionFailed, Forbidden
from informer._meta.resource import CONFIGMAPS
from informer._meta.types import Obj

pytestmark = pytest.mark.anyio


@pytest.fixture
async def server() -> AsyncIterator[FakeApiServer]:
    fake = FakeApiServer()
    async with serving(fake.dispatch) as fake.url:
        yield fake


@pytest.fixture
async def api_client(server: FakeApiServer) -> AsyncIterator[ApiClient]:
    async with ApiClient(configuration=Configuration(host=server.url)) as client:
        yield client


def page(n: int) -> Obj:
    return {
        "kind": "ConfigMapList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "42", "continue": "next"},
        "items": [
            {"metadata": {"name": f"c{i}", "namespace": "ns"}, "data": {"k": "v" * (i % 50)}}
            for i in range(n)
        ],
    }


class Names:
    """A Prepare recording the items it sees (the name replaces the item)."""

    def __init__(self, *, fail_at: str | None = None) -> None:
        self.kinds: list[str] = []
        self.names: list[str] = []
        self.fail_at = fail_at

    def __call__(self, list_: Obj) -> ItemFunc:
        self.kinds.append(list_["kind"])

        def each(obj: Obj) -> Obj:
            name = obj["metadata"]["name"]
            if name == self.fail_at:
                raise RuntimeError("transform failed")
            self.names.append(name)
            return {"name": name}

        return each


def pieces(raw: bytes, size: int) -> list[bytes]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


@pytest.mark.parametrize("size", [7, 1000, 1 << 20], ids=["tiny", "small", "whole"])
async def test_items_prepared_as_the_body_arrives(
    server: FakeApiServer, api_client: ApiClient, size: int
) -> None:
    body = page(300)
    server.stream(*pieces(orjson.dumps(body), size))
    prepare = Names()
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns")
    with anyio.fail_after(10):
        got = await lw.list_prepared(limit=500, prepare=prepare)
    assert got == {**body, "items": [{"name": f"c{i}"} for i in range(300)]}
    assert prepare.names == [f"c{i}" for i in range(300)]
    assert prepare.kinds == ["ConfigMapList"]
    assert server.query() == {"limit": "500"}


async def test_a_connection_reused_after_a_streamed_list(
    server: FakeApiServer, api_client: ApiClient
) -> None:
    """Read to its end, the connection goes back to the pool: two lists, one socket."""
    server.stream(*pieces(orjson.dumps(page(50)), 100))
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns")
    with anyio.fail_after(10):
        await lw.list_prepared(prepare=Names())
        await lw.list_prepared(prepare=Names())
    peers = {r.transport.get_extra_info("peername") for r in server.requests if r.transport}
    assert len(peers) == 1


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"kind":"ConfigMapList","items":[{"metadata":{"name":"a"}},{"meta', "not JSON"),
        (b"<html>proxy error</html>", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
    ],
    ids=["truncated", "html", "array"],
)
async def test_a_body_that_is_not_a_list_object_is_an_api_error(
    server: FakeApiServer, api_client: ApiClient, body: bytes, match: str
) -> None:
    server.stream(*pieces(body, 10))
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns")
    with anyio.fail_after(10), pytest.raises(ApiError, match=match) as info:
        await lw.list_prepared(prepare=Names())
    assert info.value.status == 200
    assert type(info.value) is ApiError


async def test_an_empty_body_is_an_empty_object(
    server: FakeApiServer, api_client: ApiClient
) -> None:
    server.stream()
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns")
    with anyio.fail_after(10):
        assert await lw.list_prepared(prepare=Names()) == {}


async def test_an_http_failure_is_its_api_error(
    server: FakeApiServer, api_client: ApiClient
) -> None:
    status = {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403}
    server.reply({**status, "message": "configmaps is forbidden"}, code=403)
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns")
    with anyio.fail_after(10), pytest.raises(Forbidden, match="configmaps is forbidden"):
        await lw.list_prepared(prepare=Names())


async def test_a_connection_lost_mid_body_is_connection_failed(
    server: FakeApiServer, api_client: ApiClient
) -> None:
    raw = orjson.dumps(page(100))
    server.stream(raw[: len(raw) // 2], abort=True)
    prepare = Names()
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns")
    with anyio.fail_after(10), pytest.raises(ConnectionFailed):
        await lw.list_prepared(prepare=prepare)
    assert prepare.names  # some were decoded before the connection broke


async def test_a_silent_server_times_out_as_connection_failed(
    server: FakeApiServer, api_client: ApiClient
) -> None:
    raw = orjson.dumps(page(100))
    server.stream(raw[:-10], hold=True)  # never ends the body
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns", request_timeout=0.5)
    with anyio.fail_after(10), pytest.raises(ConnectionFailed, match="timed out"):
        await lw.list_prepared(prepare=Names())
    with anyio.fail_after(10):
        await server.disconnected.wait()


async def test_a_failing_transform_closes_the_connection(
    server: FakeApiServer, api_client: ApiClient
) -> None:
    """The item function's exception propagates at once; the half-read connection is
    closed, not returned to the pool."""
    raw = orjson.dumps(page(100))
    server.stream(raw[:-10], hold=True)
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns")
    with anyio.fail_after(10), pytest.raises(RuntimeError, match="transform failed"):
        await lw.list_prepared(prepare=Names(fail_at="c3"))
    with anyio.fail_after(10):
        await server.disconnected.wait()


async def test_list_without_prepare_reads_whole(
    server: FakeApiServer, api_client: ApiClient
) -> None:
    body: Any = page(20)
    server.stream(*pieces(orjson.dumps(body), 33))
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns")
    with anyio.fail_after(10):
        assert await lw.list() == body
