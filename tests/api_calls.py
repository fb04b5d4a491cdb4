"""``ApiCalls``: every request an ``informer.Client`` (and its discovery) sends, recorded
as ``(method, path)`` by wrapping ``request_json`` where those modules look it up. "Served
from the cache" and "nothing written" are then asserted as requests not sent."""

from __future__ import annotations

from typing import Any

import pytest

import informer._client.client as client_module
import informer._client.discovery as discovery_module
from informer import Obj


class ApiCalls:
    """Every request the client (and its discovery) sends: ``(method, path)``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        for module in (client_module, discovery_module):
            real = module.request_json

            async def counting(
                api: Any, method: str, path: str, _real: Any = real, **kw: Any
            ) -> Obj:
                self.calls.append((method, path))
                result: Obj = await _real(api, method, path, **kw)
                return result

            monkeypatch.setattr(module, "request_json", counting)

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] != "GET"]

    def clear(self) -> None:
        self.calls.clear()
