"""Architecture contracts (conventions.md): who may import what."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRANSPORT = ("kubernetes_asyncio", "aiohttp")
# The transport boundary: only these core modules may import the HTTP client.
ALLOWED_TRANSPORT = {"informer/_kube.py"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.append("." * node.level + (node.module or ""))
            elif node.module:
                names.append(node.module)
    return names


def _core_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "informer").glob("*.py"))


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_kube_module_imports_the_transport(path: Path) -> None:
    rel = str(path.relative_to(ROOT))
    if rel in ALLOWED_TRANSPORT:
        return
    bad = [n for n in _imports(path) if n.split(".")[0] in TRANSPORT]
    assert not bad, f"{rel} imports {bad}; only informer/_kube.py may touch the transport"


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "controllers").glob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_controllers_use_only_the_public_api(path: Path) -> None:
    """Samples are what users copy: public ``informer`` names only (writes may use
    kubernetes_asyncio's typed API, as user reconcilers do), never aiohttp directly."""

    def private(name: str) -> bool:
        parts = name.split(".")
        return parts[0] == "informer" and any(p.startswith("_") for p in parts[1:])

    bad = [n for n in _imports(path) if private(n) or n.split(".")[0] == "aiohttp"]
    assert not bad, f"{path.name} imports private or transport modules: {bad}"
