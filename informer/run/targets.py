"""Which controllers (and webhooks) ``python -m informer.run`` runs: registered ones by
name, or targets.

Registered controllers are found by **entry point**, never by module name: a package
declares its controllers in the group :data:`ENTRY_POINT_GROUP`
(``kube_informer.controllers``), one entry per controller, named as ``--controllers``
selects it. Those run when the runner is given no target. A controller that must not run
unasked (one needing a CustomResourceDefinition a plain cluster lacks, say) is declared
in :data:`OPT_IN_GROUP` (``kube_informer.controllers.opt_in``) instead: it runs only when
``--controllers`` names it::

    [project.entry-points."kube_informer.controllers"]
    configmap-reloader = "kube_informer_samples.configmap_reloader:ConfigMapReloader"

    [project.entry-points."kube_informer.controllers.opt_in"]
    configmap-mirror = "kube_informer_samples.configmap_mirror:ConfigMapMirror"

:func:`registered_controllers` reads the entry points of both groups (installed
distributions, in discovery order; an entry listed twice with the same value, e.g. by an
editable install and a stale ``.egg-info``, counts once) **without importing anything**;
:meth:`Registration.load` imports one. The runner loads only the controllers it runs, so
an entry point it does not run can never fail it (nor can a package of the user's named
like a registered module's).

A target is, as for ``kopf run``:

- ``path/to/file.py`` (anything ending in ``.py``, or an existing file): the file is
  imported as a fresh module (its folder is put first on ``sys.path`` so that it can
  import its siblings) and every :class:`~informer.Controller` subclass *defined in it*
  is taken;
- ``package.module:Attr`` (``Attr`` may be dotted): that one class;
- ``package.module``: every Controller subclass defined in that module.

Abstract helpers are skipped: a class is taken only if it (or a base below
``Controller``) overrides ``reconcile``.

Webhooks come the same two ways (:func:`load_target_objects`): a target module's
top-level webhook objects (:class:`~informer.webhook.Webhook` instances, or lists of
them; ``module:Attr`` may name one or a list), and the entry-point group
:data:`WEBHOOK_ENTRY_POINT_GROUP` (``kube_informer.webhooks``), one entry per name, its
value a webhook or a list of webhooks::

    [project.entry-points."kube_informer.webhooks"]
    configmap-mirror = "kube_informer_samples.configmap_mirror_webhooks:WEBHOOKS"

Registered webhooks are served only when named (``--webhooks``): serving one needs a
certificate and configurations pointing at this process, which running the registered
controllers does not.

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
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from .._controller.controller import Controller
from .._exceptions import TargetError
from .._webhook.base import Webhook

__all__ = [
    "ENTRY_POINT_GROUP",
    "OPT_IN_GROUP",
    "WEBHOOK_ENTRY_POINT_GROUP",
    "Registration",
    "Target",
    "TargetError",
    "load_registered_webhooks",
    "load_target",
    "load_target_objects",
    "registered_controllers",
    "select_controllers",
    "select_webhooks",
]

ENTRY_POINT_GROUP = "kube_informer.controllers"
"""The entry-point group of controllers that run when the runner is given no target."""

OPT_IN_GROUP = "kube_informer.controllers.opt_in"
"""The entry-point group of controllers that run only when ``--controllers`` names them."""

WEBHOOK_ENTRY_POINT_GROUP = "kube_informer.webhooks"
"""The entry-point group under which packages register their webhooks."""


class Target(NamedTuple):
    """What one target holds: Controller subclasses and webhook objects."""

    controllers: list[type[Controller]]
    webhooks: list[Webhook]


@dataclass(frozen=True)
class Registration:
    """One registered controller: its entry point's ``name``, ``value``
    (``module:Class``), ``group``, and whether it is ``opt_in``. Nothing is imported
    until :meth:`load`."""

    name: str
    value: str
    group: str

    @property
    def opt_in(self) -> bool:
        return self.group == OPT_IN_GROUP

    def load(self) -> type[Controller]:
        """Import the controller class: :class:`TargetError` when the import fails, or it
        is not a Controller subclass implementing ``reconcile``."""
        where = f"{self.name!r} ({self.value}, registered under {self.group!r})"
        try:
            obj = EntryPoint(self.name, self.value, self.group).load()
        except Exception as exc:
            raise TargetError(f"cannot load controller {where}: {_describe(exc)}") from exc
        if not (inspect.isclass(obj) and issubclass(obj, Controller)):
            raise TargetError(f"controller {where} is not a Controller subclass (got {obj!r})")
        if not _implements_reconcile(obj):
            raise TargetError(f"controller {where} does not implement reconcile()")
        return obj


def registered_controllers() -> dict[str, Registration]:
    """Every controller registered under :data:`ENTRY_POINT_GROUP` or
    :data:`OPT_IN_GROUP`, by entry-point name; nothing is imported.

    Raises :class:`TargetError` when two different entries share a name.
    """
    result: dict[str, Registration] = {}
    for group in (ENTRY_POINT_GROUP, OPT_IN_GROUP):
        for entry in entry_points(group=group):
            known = result.get(entry.name)
            if known is not None:
                if (known.value, known.group) == (entry.value, group):
                    continue
                raise TargetError(
                    f"controller {entry.name!r} is registered twice: {known.value!r} "
                    f"(under {known.group!r}) and {entry.value!r} (under {group!r}); "
                    "uninstall one of them"
                )
            result[entry.name] = Registration(entry.name, entry.value, group)
    return result


def select_controllers(
    available: Mapping[str, Registration], names: Iterable[str]
) -> list[Registration]:
    """The registrations called ``names`` (in that order, once each), or
    :class:`TargetError` for a name nobody registered."""
    chosen: list[Registration] = []
    for name in names:
        registration = available.get(name)
        if registration is None:
            known = ", ".join(sorted(available)) or "none"
            raise TargetError(f"unknown controller {name!r} (known: {known})")
        if registration not in chosen:
            chosen.append(registration)
    return chosen


def load_registered_webhooks(group: str = WEBHOOK_ENTRY_POINT_GROUP) -> dict[str, list[Webhook]]:
    """Every webhook entry registered under ``group`` (name -> its webhooks), validated."""
    result: dict[str, list[Webhook]] = {}
    values: dict[str, str] = {}
    for entry in entry_points(group=group):
        if entry.name in values:
            if values[entry.name] == entry.value:
                continue
            raise TargetError(
                f"webhooks {entry.name!r} are registered twice under {group!r}: "
                f"{values[entry.name]!r} and {entry.value!r}; uninstall one of them"
            )
        values[entry.name] = entry.value
        try:
            obj = entry.load()
        except Exception as exc:
            raise TargetError(
                f"cannot load webhooks {entry.name!r} ({entry.value}, registered under "
                f"{group!r}): {_describe(exc)}"
            ) from exc
        hooks = _webhooks_of(obj)
        if not hooks:
            raise TargetError(
                f"webhooks {entry.name!r} ({entry.value}, registered under {group!r}) is not "
                f"a webhook or a list of webhooks (got {obj!r})"
            )
        result[entry.name] = hooks
    return result


def select_webhooks(available: Mapping[str, list[Webhook]], names: Iterable[str]) -> list[Webhook]:
    """The webhooks registered as ``names`` (in that order), or :class:`TargetError`."""
    chosen: list[Webhook] = []
    for name in names:
        hooks = available.get(name)
        if hooks is None:
            known = ", ".join(sorted(available)) or "none"
            raise TargetError(f"unknown webhooks {name!r} (registered: {known})")
        chosen.extend(h for h in hooks if all(h is not c for c in chosen))
    return chosen


def load_target(target: str) -> list[type[Controller]]:
    """The controller classes a target names (see the module docstring)."""
    controllers = load_target_objects(target).controllers
    if not controllers:
        raise TargetError(f"no Controller subclass defined in {target!r}")
    return controllers


def load_target_objects(target: str) -> Target:
    """The controller classes and webhooks a target names (see the module docstring);
    :class:`TargetError` when it names neither."""
    if target.endswith(".py") or os.sep in target or os.path.isfile(target):
        return _objects_in(_from_file(target), target)
    module_name, sep, attr = target.partition(":")
    if not module_name or (sep and not attr):
        raise TargetError(f"invalid target {target!r}: expected module, module:Class or file.py")
    module = _import_module(module_name)
    if not sep:
        return _objects_in(module, target)
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"module {module_name!r} has no attribute {attr!r}") from None
    hooks = _webhooks_of(obj)
    if hooks:
        return Target([], hooks)
    if not (inspect.isclass(obj) and issubclass(obj, Controller)):
        raise TargetError(f"{target!r} is not a Controller subclass or a webhook (got {obj!r})")
    if not _implements_reconcile(obj):
        raise TargetError(f"{target!r} does not implement reconcile()")
    return Target([obj], [])


def _webhooks_of(obj: object) -> list[Webhook]:
    """``obj`` as a list of webhooks: one, or a list/tuple of them; else empty."""
    if isinstance(obj, Webhook):
        return [obj]
    if isinstance(obj, list | tuple) and obj and all(isinstance(h, Webhook) for h in obj):
        return list(obj)
    return []


def _from_file(target: str) -> ModuleType:
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
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise TargetError(f"unknown module {name!r} (not found on sys.path)") from exc
        raise TargetError(f"cannot import module {name!r}: {_describe(exc)}") from exc
    except Exception as exc:
        raise TargetError(f"cannot import module {name!r}: {_describe(exc)}") from exc


def _objects_in(module: ModuleType, target: str) -> Target:
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Controller)
        and obj.__module__ == module.__name__
        and _implements_reconcile(obj)
    ]
    hooks: list[Webhook] = []
    for value in vars(module).values():
        hooks.extend(h for h in _webhooks_of(value) if all(h is not k for k in hooks))
    if not found and not hooks:
        raise TargetError(f"no Controller subclass or webhook defined in {target!r}")
    return Target(found, hooks)


def _implements_reconcile(cls: type[Controller]) -> bool:
    return cls.reconcile is not Controller.reconcile


def _describe(exc: BaseException) -> str:
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}:{exc.lineno})"
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")
