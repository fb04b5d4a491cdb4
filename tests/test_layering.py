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


# Serving HTTP: only informer/_runtime/http.py listens on a socket or wraps one in TLS.
HTTP_SERVER = "informer/_runtime/http.py"
_SERVING_MODULES = ("http.server", "socketserver", "wsgiref", "aiohttp.web")
_SERVING_CALLS = {
    "create_tcp_listener",
    "create_unix_listener",
    "start_server",
    "start_unix_server",
    "create_server",
    "TLSListener",
    "TLSStream",
    "wrap_socket",
}


def _serving(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = [n for n in _imports(path) if n.startswith(_SERVING_MODULES)]
    for node in ast.walk(tree):
        name = (
            node.attr
            if isinstance(node, ast.Attribute)
            else node.id
            if isinstance(node, ast.Name)
            else None
        )
        if name in _SERVING_CALLS:
            found.append(name)
    return found


def _library_modules() -> list[Path]:
    """The package without its test helpers (``informer.testing`` runs fake servers)."""
    return sorted(
        p for p in (ROOT / "informer").rglob("*.py") if "testing" not in p.relative_to(ROOT).parts
    )


@pytest.mark.parametrize("path", _library_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_http_module_serves(path: Path) -> None:
    rel = str(path.relative_to(ROOT))
    if rel == HTTP_SERVER:
        assert _serving(path), "the rule below checks nothing: update _SERVING_CALLS"
        return
    bad = _serving(path)
    assert not bad, f"{rel} uses {bad}; only {HTTP_SERVER} may serve (metrics, health use it)"
