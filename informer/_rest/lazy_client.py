"""kubernetes_asyncio's ``client`` package without its API classes and models until
something asks for one of them.

Why: ``import kubernetes_asyncio`` (which anything importing one of its modules runs)
executes ``kubernetes_asyncio/client/__init__.py``, which imports 66 API modules and
~800 model modules: ~0.8 s of a ~1.1 s ``import informer``, paid by every runner start,
CLI call and test subprocess. The library needs none of them: it sends requests through
the ``ApiClient``'s session and decodes JSON into dicts (``informer/_rest/transport.py``);
what it uses of kubernetes_asyncio is ``ApiClient``, ``Configuration``, the exceptions
and ``kubernetes_asyncio.config``.

How: :func:`install` (called once by ``informer/_rest/__init__.py``, before any
kubernetes_asyncio import) puts a finder first on ``sys.meta_path`` for the three
aggregating packages, ``kubernetes_asyncio.client``, ``.client.api`` and
``.client.models``. Each is created from its real spec (same ``__file__``, same
``__path__``: its submodules import as usual) but its ``__init__`` is not executed; a
module ``__getattr__`` answers instead:

- a name from :data:`LIGHT` (``ApiClient``, ``Configuration``, the exceptions) is taken
  from its own submodule, which is all ``kubernetes_asyncio.config`` and this library
  ask for;
- the name of a submodule imports that submodule (``from kubernetes_asyncio.client
  import rest``);
- any other name (``client.CoreV1Api``, ``client.V1Pod``, ``dir(client)``) executes the
  real ``__init__`` in the module, once, then answers from it: a program using the
  generated API classes or models gets them, at the cost it paid before, when it first
  touches one. The objects are the same either way (one class per submodule).

Nothing changes when kubernetes_asyncio was imported before informer (the finder is
never asked), or for any other package.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Final

__all__ = ["LAZY_PACKAGES", "LIGHT", "install", "loaded_whole"]

LAZY_PACKAGES: Final = (
    "kubernetes_asyncio.client",
    "kubernetes_asyncio.client.api",
    "kubernetes_asyncio.client.models",
)
"""The packages whose ``__init__`` runs only when a name it defines is asked for."""

LIGHT: Final[dict[str, dict[str, str]]] = {
    "kubernetes_asyncio.client": {
        "ApiClient": "api_client",
        "Configuration": "configuration",
        "ApiException": "exceptions",
        "ApiTypeError": "exceptions",
        "ApiValueError": "exceptions",
        "ApiKeyError": "exceptions",
        "ApiAttributeError": "exceptions",
        "OpenApiException": "exceptions",
    },
}
"""Per lazy package, names taken from one submodule (name -> submodule)."""

_lock = threading.RLock()
_whole: set[str] = set()


def loaded_whole() -> frozenset[str]:
    """The lazy packages whose real ``__init__`` has run (for tests and diagnostics)."""
    return frozenset(_whole)


class _DeferredInit(importlib.abc.Loader):
    """Creates the package module as its real loader would; runs its ``__init__`` only
    when :func:`_module_getattr` needs it."""

    def __init__(self, real: importlib.abc.Loader) -> None:
        self._real = real

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._real, attr)  # is_package, get_code, get_resource_reader...

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        real = self._real
        name = module.__name__
        light = LIGHT.get(name, {})

        def load_whole() -> None:
            with _lock:
                if name in _whole:
                    return
                _whole.add(name)
                real.exec_module(module)

        def __getattr__(attr: str) -> Any:
            sub = light.get(attr)
            if sub is not None:
                value = getattr(importlib.import_module(f"{name}.{sub}"), attr)
                setattr(module, attr, value)
                return value
            if not attr.startswith("__") and _is_submodule(module.__path__, attr):
                return importlib.import_module(f"{name}.{attr}")
            if name not in _whole:
                load_whole()
                try:
                    return module.__dict__[attr]
                except KeyError:
                    pass
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")

        def __dir__() -> list[str]:
            load_whole()
            return sorted(module.__dict__)

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        module.__dir__ = __dir__  # type: ignore[method-assign]


def _is_submodule(path: Sequence[str], attr: str) -> bool:
    return any(
        os.path.isfile(os.path.join(base, f"{attr}.py"))
        or os.path.isfile(os.path.join(base, attr, "__init__.py"))
        for base in path
    )


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the lazy packages with the other finders, and defers their ``__init__``."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in LAZY_PACKAGES:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is None or spec.submodule_search_locations is None:
                    return spec  # not a regular package: leave it alone
                spec.loader = _DeferredInit(spec.loader)
                return spec
        return None


_finder = _Finder()


def install() -> None:
    """Defer the lazy packages' ``__init__`` from now on (idempotent). No effect on those
    already imported."""
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
