"""A watch's TLS connection reads through a 16 KiB buffer instead of asyncio's 256 KiB
(informer/_rest/transport.py, WATCH_TLS_READ_BUFFER): what made each cached namespace
cost ~0.4 MiB in namespace-mode sharding. Requests other than streams keep asyncio's
(they read large lists; their connections are pooled, a few per client)."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import pytest

from informer._rest.request import request_json
from informer._rest.transport import WATCH_TLS_READ_BUFFER, open_response
from informer.resources import CONFIGMAPS

pytestmark = pytest.mark.anyio


def tls_buffer(response: Any) -> int:
    return len(response.connection.transport._ssl_protocol._ssl_buffer)


async def test_a_watch_reads_through_a_small_tls_buffer(api_client: Any, namespace: str) -> None:
    path = CONFIGMAPS.path(namespace=namespace)
    big = "x" * 200_000  # events larger than the buffer arrive whole
    with anyio.fail_after(30):
        async with open_response(
            api_client,
            "GET",
            path,
            query={"watch": "true"},
            verb="watch",
            resource="configmaps",
            namespace=namespace,
            read_timeout=30,
            stream=True,
        ) as (watch, _):
            assert tls_buffer(watch) == WATCH_TLS_READ_BUFFER
            for i in range(3):
                body = {"metadata": {"name": f"c{i}"}, "data": {"k": big}}
                await request_json(api_client, "POST", path, body=body)
            names = []
            while len(names) < 3:
                line = await watch.content.readline()
                event = orjson.loads(line)
                assert event["object"]["data"]["k"] == big
                names.append(event["object"]["metadata"]["name"])
        assert names == ["c0", "c1", "c2"]
