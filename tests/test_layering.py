"""Architecture contracts (docs/architecture.md, "The layers"): who may import what.

Every parametrized case checks something: the transport rule asserts that ``_kube.py``
does import the transport (so the allow-list cannot go stale) and that no other module
does; the layer rules run over every module of the layer.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import informer
from informer import InformerError

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "informer"
TRANSPORT = ("kubernetes_asyncio", "aiohttp")
TRANSPORT_MODULE = "informer/_kube.py"


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names.append(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                names.append(node.module)
    return names


def _library_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "testing" not in p.parts)


def _layer(name: str) -> list[Path]:
    """The modules of a layer (its ``__init__.py`` holds only a docstring)."""
    return sorted(p for p in (PACKAGE / name).rglob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", _library_modules(), ids=_rel)
def test_only_kube_module_imports_the_transport(path: Path) -> None:
    used = [n for n in _imports(path) if n.split(".")[0] in TRANSPORT]
    if _rel(path) == TRANSPORT_MODULE:
        assert used, f"{TRANSPORT_MODULE} is the transport boundary but imports no transport"
    else:
        assert not used, f"{_rel(path)} imports {used}; only {TRANSPORT_MODULE} may"


@pytest.mark.parametrize(
    "path", [*_layer("_cache"), *_layer("_queue"), *_layer("_events")], ids=_rel
)
def test_cache_queue_and_event_layers_never_import_the_runtime(path: Path) -> None:
    imported = _imports(path)
    assert imported, f"{_rel(path)}: no imports found (parser broken?)"
    bad = [n for n in imported if n.startswith(("informer._runtime", "informer.run"))]
    assert not bad, f"{_rel(path)} imports the runtime layer: {bad}"


@pytest.mark.parametrize("path", _layer("_queue"), ids=_rel)
def test_queue_layer_does_not_import_the_cache_layer(path: Path) -> None:
    bad = [n for n in _imports(path) if n.startswith("informer._cache")]
    assert not bad, f"{_rel(path)} imports the cache layer: {bad}"


def _all_library_modules() -> list[str]:
    names = ["informer"]
    for info in pkgutil.walk_packages(informer.__path__, "informer."):
        if not info.name.startswith("informer.testing"):
            names.append(info.name)
    return names


def _error_classes() -> list[type[BaseException]]:
    for name in _all_library_modules():
        importlib.import_module(name)
    seen: list[type[BaseException]] = []
    todo: list[type[BaseException]] = [InformerError]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return [
        c for c in seen if c.__module__.startswith("informer") and "testing" not in c.__module__
    ]


def test_error_tree_is_complete() -> None:
    """Every ``InformerError`` subclass of the library is defined in ``_exceptions.py``
    and drawn in its docstring tree (and every drawn name exists)."""
    from informer import _exceptions

    tree = _exceptions.__doc__ or ""
    drawn = set(re.findall(r"[├└]── (\w+)", tree)) | {"InformerError"}
    classes = _error_classes()
    assert len(classes) > 10
    misplaced = [
        f"{c.__module__}.{c.__qualname__}" for c in classes if c.__module__ != _exceptions.__name__
    ]
    assert not misplaced, f"define these in informer/_exceptions.py: {misplaced}"
    missing = sorted(c.__name__ for c in classes if c.__name__ not in drawn)
    assert not missing, f"draw these in informer/_exceptions.py's tree: {missing}"
    stale = sorted(drawn - {c.__name__ for c in classes})
    assert not stale, f"the tree names classes that do not exist: {stale}"


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "controllers").glob("*.py")),
    ids=_rel,
)
def test_controllers_use_only_the_public_api(path: Path) -> None:
    """Samples are what users copy: public ``informer`` names only, never aiohttp."""

    def private(name: str) -> bool:
        parts = name.split(".")
        return parts[0] == "informer" and any(p.startswith("_") for p in parts[1:])

    imported = _imports(path)
    assert any(n.split(".")[0] == "informer" for n in imported) or path.name == "__init__.py"
    bad = [n for n in imported if private(n) or n.split(".")[0] == "aiohttp"]
    assert not bad, f"{path.name} imports private or transport modules: {bad}"


def _names_the_samples(path: Path) -> list[str]:
    """Imports of ``controllers`` and string constants naming it (``import_module``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = [n for n in _imports(path) if n.split(".")[0] == "controllers"]
    for node in ast.walk(tree):
        value = node.value if isinstance(node, ast.Constant) else None
        if isinstance(value, str) and value.split(".")[0] == "controllers":
            found.append(repr(value))
    return found


def test_library_does_not_import_the_samples() -> None:
    """The library finds sample controllers by entry point, never by importing them."""
    bad = {_rel(p): names for p in _library_modules() if (names := _names_the_samples(p))}
    assert not bad, bad


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


@pytest.mark.parametrize("path", _library_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_http_module_serves(path: Path) -> None:
    rel = str(path.relative_to(ROOT))
    if rel == HTTP_SERVER:
        assert _serving(path), "the rule below checks nothing: update _SERVING_CALLS"
        return
    bad = _serving(path)
    assert not bad, f"{rel} uses {bad}; only {HTTP_SERVER} may serve (metrics, health use it)"
