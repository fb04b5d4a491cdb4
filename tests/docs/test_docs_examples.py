"""The documentation's code examples run against the current API: every Python block of
the docs pages and the README compiles and imports only names that exist where it
imports them (a name that left the root fails here: warnings are errors), and the
complete examples run as printed (the README's controller, Getting started's controller
and its test on the real control plane, the testing guide's fault-injection example)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import pytest
from docs_helpers import DOCS, README, ROOT, load_module, python_blocks

from informer import Client
from informer.resources import CONFIGMAPS
from informer.testing import eventually, run_controllers

PAGES = [README, *sorted(DOCS.rglob("*.md"))]
BLOCKS = [(page, i, code) for page in PAGES for i, code in enumerate(python_blocks(page))]
OURS = ("informer", "kube_informer_samples")


@pytest.mark.parametrize(
    ("page", "index", "code"),
    BLOCKS,
    ids=[f"{page.relative_to(ROOT)}:{index}" for page, index, _ in BLOCKS],
)
def test_block_compiles_and_its_imports_resolve(page: Path, index: int, code: str) -> None:
    tree = ast.parse(code, filename=f"{page}:{index}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(OURS):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(OURS):
                    importlib.import_module(alias.name)


def test_every_page_has_examples_checked() -> None:
    assert len(BLOCKS) >= 20, [str(p) for p in PAGES]


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_getting_started_controller_and_test(api_client: Any, namespace: str) -> None:
    page = DOCS / "getting-started.md"
    [controller] = python_blocks(page, section="A first controller")
    [test] = python_blocks(page, section="A first test")
    load_module("keycount", controller, page)  # the test imports it by that name
    module = load_module("docs_test_keycount", test, page)
    await module.test_configmaps_get_their_key_count(api_client, namespace)


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_readme_controller(api_client: Any, namespace: str) -> None:
    [code] = python_blocks(README)
    module = load_module("readme_keycount", code, README)
    client = Client(api_client)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1", "b": "2"}}
    cm["metadata"] = {"name": "settings", "namespace": namespace}
    await client.create(cm)

    async def annotated(count: str) -> None:
        obj = await client.get(CONFIGMAPS, "settings", namespace=namespace)
        assert obj["metadata"].get("annotations", {}).get("example.com/keys") == count

    async with run_controllers(api_client, module.KeyCount, namespace=namespace):
        await eventually(lambda: annotated("2"))
        await client.patch(CONFIGMAPS, "settings", {"data": {"a": None}}, namespace=namespace)
        await eventually(lambda: annotated("1"))


@pytest.mark.timeout(60)
def test_fake_lister_watcher_example() -> None:
    page = DOCS / "guides" / "testing.md"
    [code] = python_blocks(page, section="Fakes and fault injection")
    load_module("docs_fake_example", code, page)  # runs anyio.run(main): returns once synced
