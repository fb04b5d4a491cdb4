"""The README's "Operators" example runs as printed: its code block is executed as a
module and the operator it defines is run on the real control plane (copies, status,
an Event, the finalizer's cleanup), so the README cannot drift from the library."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from kube_informer_samples.configmap_mirror import CRD_PATH

from informer import Client, Controller, NotFound, get_condition
from informer.resources import CONFIGMAPS, EVENTS, NAMESPACES
from informer.testing import eventually, install_crds, run_controllers

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_operator() -> types.ModuleType:
    section = README.read_text().split("\n## Operators\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block in the README's Operators section"
    module = types.ModuleType("readme_operator")
    sys.modules[module.__name__] = module  # for the dataclass/typing machinery, if any
    exec(compile(match.group(1), str(README), "exec"), module.__dict__)
    return module


async def test_the_readme_operator_works(api_client: Any, namespace: str) -> None:
    module = readme_operator()
    operator = module.MiniMirror
    assert issubclass(operator, Controller)
    await install_crds(api_client, CRD_PATH)
    client = Client(api_client)
    target = f"{namespace[:40]}-target"
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target}})
    source = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}}
    source["metadata"] = {"name": "settings", "namespace": namespace}
    await client.create(source)

    async def copy_data() -> dict[str, str] | None:
        try:
            cm = await client.get(CONFIGMAPS, "settings", namespace=target, cached=False)
        except NotFound:
            return None
        return dict(cm.get("data") or {})

    async def copied(data: dict[str, str] | None) -> None:
        assert await copy_data() == data

    try:
        async with run_controllers(api_client, operator):
            mirror = {"apiVersion": "mirror.informer.dev/v1alpha1", "kind": "ConfigMapMirror"}
            mirror["metadata"] = {"name": "m", "namespace": namespace}
            mirror["spec"] = {"source": "settings", "targetNamespaces": [target]}
            await client.create(mirror)
            await eventually(lambda: copied({"a": "1"}))

            async def ready() -> None:
                m = await client.get(module.MIRRORS, "m", namespace=namespace, cached=False)
                condition = get_condition(m, "Ready")
                assert condition and condition["status"] == "True", m.get("status")
                assert m["status"]["observedGeneration"] == m["metadata"]["generation"]

            await eventually(ready)
            await client.patch(CONFIGMAPS, "settings", {"data": {"a": "2"}}, namespace=namespace)
            await eventually(lambda: copied({"a": "2"}))

            async def synced_event() -> None:
                events = await client.list(EVENTS, namespace=namespace, cached=False)
                assert [e for e in events if e["reason"] == "Synced"], events

            await eventually(synced_event)
            await client.delete(module.MIRRORS, "m", namespace=namespace)
            await eventually(lambda: copied(None))
    finally:
        await client.delete(NAMESPACES, target, missing_ok=True)
