"""Architecture contracts (docs/architecture.md, "The layers"): who may import what.

Every parametrized case checks something: the transport rule asserts that ``_rest/``
does import the transport (so the rule cannot go stale) and that nothing else does; the
layer rule runs over every module of the library against the table :data:`MAY_IMPORT`;
the circle rule over the import graph of every module.
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

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "informer"
TRANSPORT = ("kubernetes_asyncio", "aiohttp")
TRANSPORT_FOLDER = "informer/_rest/"

_BASE = frozenset({"_exceptions", "_failures", "_meta"})
MAY_IMPORT: dict[str, frozenset[str]] = {
    # the floor: no imports of the package but the error tree
    "_exceptions": frozenset(),
    "_failures": frozenset(),
    "_manifests": frozenset(),
    "_meta": frozenset({"_exceptions"}),
    # custom resources as pydantic models (the optional extra): objects, nothing else
    "_crd": frozenset({"_exceptions", "_meta"}),
    # what a controller may do: declarations, the run-time check, roles from them
    "_rbac": _BASE | {"_cache"},
    # the transport, and the two machines that need none of it
    "_rest": frozenset({"_exceptions", "_meta"}),
    "_queue": frozenset({"_exceptions"}),
    "predicates": frozenset({"_meta"}),
    # what stands on the transport
    "_cache": _BASE | {"_rest"},
    "_events": _BASE | {"_rest"},
    "_leaderelection": _BASE | {"_rest"},
    "_http": _BASE | {"_rest"},
    "_client": _BASE | {"_rest", "_cache"},
    # webhooks: object dicts served over the package's one HTTP server
    "_webhook": _BASE | {"_http"},
    # controllers, and what coordinates them
    "_controller": _BASE
    | {"_rest", "_cache", "_queue", "_events", "_client", "_rbac", "predicates"},
    "_sharding": _BASE | {"_rest", "_leaderelection", "_controller"},
    "_observability": _BASE
    | {"_rest", "_cache", "_queue", "_events", "_leaderelection", "_controller", "_http"},
    "_manager": _BASE
    | {
        "_rest", "_cache", "_queue", "_events", "_client", "_controller", "_leaderelection",
        "_sharding", "_http", "_observability", "_webhook",
    },
    # the command and the kit stand on the Manager; the public modules only re-export
    "run": _BASE
    | {
        "_rest", "_cache", "_controller", "_leaderelection", "_sharding", "_http", "_manager",
        "_webhook",
    },
    "testing": _BASE
    | {"_rest", "_cache", "_client", "_controller", "_http", "_manager", "_rbac", "_webhook"},
    "crd": _BASE | {"_crd", "_manifests"},
    "rbac": _BASE | {"_rbac", "_manifests", "run"},
}  # fmt: skip
"""Folder (or flat module) of ``informer`` -> what it may import of the package. Lower
layers never import higher ones; the public modules (``cache``, ``meta``...) and the root
re-export and may import anything below them."""
FACES = frozenset(
    {"cache", "workqueue", "meta", "resources", "observability", "leaderelection", "webhook"}
)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved;
    ``from pkg import sub`` yields ``pkg.sub``)."""
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
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names.append(module)
            names.extend(f"{module}.{alias.name}" for alias in node.names)
    return names


def _library_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "testing" not in p.parts)


def _unit(module: str) -> str | None:
    """The folder or flat module of ``informer`` that ``module`` belongs to."""
    parts = module.split(".")
    if parts[0] != "informer":
        return None
    return parts[1] if len(parts) > 1 else ""


def _existing(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@pytest.mark.parametrize("path", _library_modules(), ids=_rel)
def test_only_the_rest_folder_imports_the_transport(path: Path) -> None:
    used = [n for n in _imports(path) if n.split(".")[0] in TRANSPORT]
    if _rel(path).startswith(TRANSPORT_FOLDER):
        return
    assert not used, f"{_rel(path)} imports {used}; only {TRANSPORT_FOLDER} may"


def test_the_rest_folder_does_import_the_transport() -> None:
    used = [
        n
        for p in (PACKAGE / "_rest").rglob("*.py")
        for n in _imports(p)
        if n.split(".")[0] in TRANSPORT
    ]
    assert used, "the transport rule checks nothing: _rest/ imports no transport"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=_rel)
def test_each_folder_imports_only_the_layers_below_it(path: Path) -> None:
    own = _unit(_module_name(path))
    if own == "" or own in FACES:
        return  # the root and the public modules re-export from anywhere below
    assert own in MAY_IMPORT, f"{own}: a new folder needs its row in MAY_IMPORT"
    used = {u for n in _imports(path) if _existing(n) and (u := _unit(n)) is not None and u != own}
    bad = sorted(used - MAY_IMPORT[own])
    assert not bad, f"{_rel(path)} ({own}) imports {bad}; it may import {sorted(MAY_IMPORT[own])}"


def _graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from pkg import sub`` counts as
    ``pkg.sub``, not as ``pkg``)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        targets = set()
        for n in _imports(path):
            if n != name and _existing(n) and n.split(".")[0] == "informer":
                targets.add(n)
        # ``from .pkg import sub``: the submodule, not the package's __init__
        graph[name] = {t for t in targets if not any(o.startswith(t + ".") for o in targets)}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            circle = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                circle.append(w)
                if w == v:
                    break
            if len(circle) > 1:
                found.append(sorted(circle))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles() -> None:
    """Between any two modules of the package (type-checking imports included)."""
    assert _circles(_graph()) == []


def _all_library_modules() -> list[str]:
    names = ["informer"]
    for info in pkgutil.walk_packages(informer.__path__, "informer."):
        if not info.name.startswith("informer.testing") and not info.name.endswith("__main__"):
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
    sorted((ROOT / "controllers" / "kube_informer_samples").glob("*.py")),
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
    """Imports of the samples and string constants naming them (``import_module``)."""
    samples = ("controllers", "kube_informer_samples")
    tree = ast.parse(path.read_text(), filename=str(path))
    found = [n for n in _imports(path) if n.split(".")[0] in samples]
    for node in ast.walk(tree):
        value = node.value if isinstance(node, ast.Constant) else None
        if isinstance(value, str) and value.split(".")[0] in samples:
            found.append(repr(value))
    return found


def test_library_does_not_import_the_samples() -> None:
    """The library finds sample controllers by entry point, never by importing them."""
    bad = {_rel(p): names for p in _library_modules() if (names := _names_the_samples(p))}
    assert not bad, bad


# Serving HTTP: only informer/_http/server.py listens on a socket or wraps one in TLS.
HTTP_SERVER = "informer/_http/server.py"
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
