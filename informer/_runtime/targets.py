"""Which controllers ``python -m informer.run`` runs: samples by name, or user targets.

A target is, as for ``kopf run``:

- ``path/to/file.py`` (anything ending in ``.py``, or an existing file): the file is
  imported as a fresh module (its folder is put first on ``sys.path`` so that it can
  import its siblings) and every :class:`~informer.Controller` subclass *defined in it*
  is taken;
- ``package.module:Attr`` (``Attr`` may be dotted): that one class;
- ``package.module``: every Controller subclass defined in that module.

Abstract helpers are skipped: a class is taken only if it (or a base below
``Controller``) overrides ``reconcile``. Sample controllers come from
``controllers.SAMPLE_CONTROLLERS`` (a dict name -> class), imported only when needed.

Every failure raises :class:`TargetError` with a one-line message naming the target.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType

from .._controller import Controller
from .._exceptions import TargetError

__all__ = ["TargetError", "load_samples", "load_target", "select_controllers"]

SAMPLES_MODULE = "controllers"
SAMPLES_ATTR = "SAMPLE_CONTROLLERS"


def load_samples() -> dict[str, type[Controller]]:
    """``controllers.SAMPLE_CONTROLLERS`` (name -> class), validated."""
    try:
        module = importlib.import_module(SAMPLES_MODULE)
    except ImportError as exc:
        raise TargetError(
            f"cannot import the sample controllers ({SAMPLES_MODULE}): {exc}"
        ) from exc
    samples = getattr(module, SAMPLES_ATTR, None)
    if not isinstance(samples, Mapping):
        raise TargetError(f"no sample controllers: {SAMPLES_MODULE}.{SAMPLES_ATTR} is not defined")
    result: dict[str, type[Controller]] = {}
    for name, cls in samples.items():
        if not (inspect.isclass(cls) and issubclass(cls, Controller)):
            raise TargetError(f"{SAMPLES_MODULE}.{SAMPLES_ATTR}[{name!r}] is not a Controller")
        result[str(name)] = cls
    return result


def select_controllers(
    available: Mapping[str, type[Controller]], names: Iterable[str]
) -> list[type[Controller]]:
    """The controllers called ``names`` (in that order), or :class:`TargetError`."""
    chosen: list[type[Controller]] = []
    for name in names:
        cls = available.get(name)
        if cls is None:
            known = ", ".join(sorted(available)) or "none"
            raise TargetError(f"unknown controller {name!r} (known: {known})")
        if cls not in chosen:
            chosen.append(cls)
    return chosen


def load_target(target: str) -> list[type[Controller]]:
    """The controller classes a target names (see the module docstring)."""
    if target.endswith(".py") or os.sep in target or os.path.isfile(target):
        return _from_file(target)
    module_name, sep, attr = target.partition(":")
    if not module_name or (sep and not attr):
        raise TargetError(f"invalid target {target!r}: expected module, module:Class or file.py")
    module = _import_module(module_name)
    if not sep:
        return _controllers_in(module, target)
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not (inspect.isclass(obj) and issubclass(obj, Controller)):
        raise TargetError(f"{target!r} is not a Controller subclass (got {obj!r})")
    if not _implements_reconcile(obj):
        raise TargetError(f"{target!r} does not implement reconcile()")
    return [obj]


def _from_file(target: str) -> list[type[Controller]]:
    path = Path(target).expanduser()
    if not path.is_file():
        raise TargetError(f"controller file {target!r} does not exist")
    path = path.resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    module_name = f"_informer_run_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import controller file {target!r}")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise TargetError(f"cannot import controller file {target!r}: {_describe(exc)}") from exc
    return _controllers_in(module, target)


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise TargetError(f"unknown module {name!r} (not found on sys.path)") from exc
        raise TargetError(f"cannot import module {name!r}: {_describe(exc)}") from exc
    except Exception as exc:
        raise TargetError(f"cannot import module {name!r}: {_describe(exc)}") from exc


def _controllers_in(module: ModuleType, target: str) -> list[type[Controller]]:
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Controller)
        and obj.__module__ == module.__name__
        and _implements_reconcile(obj)
    ]
    if not found:
        raise TargetError(f"no Controller subclass defined in {target!r}")
    return found


def _implements_reconcile(cls: type[Controller]) -> bool:
    return cls.reconcile is not Controller.reconcile


def _describe(exc: BaseException) -> str:
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}:{exc.lineno})"
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")
