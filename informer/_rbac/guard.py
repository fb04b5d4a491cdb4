"""``AccessGuard``: a controller's API calls checked against what it declared.

A controller that declares ``writes`` (even an empty tuple) has every call of its
``client`` checked before it is sent: reads that reach the API server (``get``,
``list``: uncached ones) must be of a watched resource or declared in ``reads``;
writes must be declared in ``writes``. What happens to a call that is not covered
depends on the process-wide mode (:func:`set_access_mode`):

- ``"strict"``: :class:`~informer.rbac.UndeclaredAccess` is raised before the request, so the
  reconcile fails (the pytest plugin turns this mode on: an undeclared write fails the
  test that makes it);
- ``"warn"`` (the default): the call is made, and ``rbac.undeclared`` is logged at
  warning level once per controller, verb and resource (the generated Role would refuse
  it: expect a 403 in a cluster that uses it);
- ``"off"``: nothing is checked.

The environment variable ``KUBE_INFORMER_ACCESS_CHECK`` sets the initial mode (child
processes of a test run inherit it). Controllers without declarations are not checked.
Writes made outside the client (``self.api_client`` with kubernetes_asyncio's typed API)
are not seen.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Literal, cast

import structlog

from .._exceptions import UndeclaredAccess
from .._meta.resource import Resource
from .access import READ_VERBS, WRITE_VERBS, Access, checked

__all__ = [
    "ENV_VAR",
    "AccessGuard",
    "AccessMode",
    "access_mode",
    "declared_guard",
    "set_access_mode",
]

AccessMode = Literal["strict", "warn", "off"]
ENV_VAR = "KUBE_INFORMER_ACCESS_CHECK"
_MODES = ("strict", "warn", "off")

log = structlog.get_logger(__name__)

_mode: AccessMode | None = None


def access_mode() -> AccessMode:
    """The current mode (see the module docstring)."""
    if _mode is not None:
        return _mode
    value = os.environ.get(ENV_VAR, "warn").strip().lower() or "warn"
    return cast(AccessMode, value) if value in _MODES else "warn"


def set_access_mode(mode: AccessMode | None) -> AccessMode:
    """Set the process-wide mode (``None``: back to the environment's); returns the one
    in force before."""
    global _mode
    if mode is not None and mode not in _MODES:
        raise ValueError(f"access mode {mode!r}: pick one of {', '.join(_MODES)}")
    before = access_mode()
    _mode = mode
    return before


class AccessGuard:
    """The check of one controller's client calls (module docstring); the client calls
    it with every request it is about to send."""

    def __init__(
        self,
        controller: str,
        *,
        writes: Iterable[Access],
        reads: Iterable[Access] = (),
        watched: Callable[[], Iterable[Resource]],
    ) -> None:
        self.controller = controller
        self.grants = (*writes, *reads)
        self.watched = watched
        self._warned: set[tuple[str, str]] = set()

    def allows(
        self, verb: str, resource: Resource, *, subresource: str | None, name: str | None
    ) -> bool:
        if verb in READ_VERBS and not subresource:
            key = (resource.group, resource.plural)
            if any((r.group, r.plural) == key for r in self.watched()):
                return True
        return any(g.covers(verb, resource, subresource, name) for g in self.grants)

    def __call__(
        self,
        verb: str,
        resource: Resource,
        *,
        subresource: str | None = None,
        name: str | None = None,
        namespace: str | None = None,
    ) -> None:
        mode = access_mode()
        if mode == "off" or self.allows(verb, resource, subresource=subresource, name=name):
            return
        rbac = resource.group_resource
        if subresource:
            rbac = f"{resource.plural}/{subresource}" + (
                f".{resource.group}" if resource.group else ""
            )
        if mode == "strict":
            raise UndeclaredAccess(self.controller, verb, rbac, name=name, namespace=namespace)
        if (verb, rbac) not in self._warned:
            self._warned.add((verb, rbac))
            log.warning(
                "rbac.undeclared",
                controller=self.controller,
                verb=verb,
                resource=rbac,
                name=name,
                namespace=namespace,
            )


def declared_guard(
    cls: type, name: str, informers: Callable[[], Iterable[object]]
) -> AccessGuard | None:
    """The guard of a controller of class ``cls`` named ``name`` whose watched informers
    ``informers()`` returns, or ``None`` when the class declares no ``writes``.
    ``TypeError``/``ValueError`` name the class when a declaration is malformed."""
    writes = getattr(cls, "writes", None)
    if writes is None:
        return None
    reads = getattr(cls, "reads", ())
    where = cls.__qualname__

    def watched() -> list[Resource]:
        found = (getattr(i, "lister_watcher", None) for i in informers())
        return [r for lw in found if isinstance(r := getattr(lw, "resource", None), Resource)]

    return AccessGuard(
        name,
        writes=checked(writes, WRITE_VERBS, where=f"{where}.writes"),
        reads=checked(reads, READ_VERBS, where=f"{where}.reads"),
        watched=watched,
    )
