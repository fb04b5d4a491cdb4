"""Test helpers shared by the Manager and sharding tests: scrape a plain-HTTP
``/metrics`` endpoint and read one sample from it."""

from __future__ import annotations

from typing import Any

import anyio
from prometheus_client.parser import text_string_to_metric_families


async def scrape(port: int) -> dict[str, list[Any]]:
    """``GET /metrics`` on ``127.0.0.1:port``: the families by name (asserts a 200)."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while True:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


def sample(families: dict[str, list[Any]], metric: str, **labels: str) -> float | None:
    """The value of the first sample named ``metric`` with ``labels`` (None: no such)."""
    for s in (s for samples in families.values() for s in samples):
        if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None
