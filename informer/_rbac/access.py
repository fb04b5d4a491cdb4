"""``Access``: one grant a controller declares (``Controller.writes`` / ``reads``).

::

    class ConfigMapMirror(Controller):
        writes = (
            Access(CONFIGMAPS, "create", "update", "delete"),
            Access(MIRRORS, "patch"),                       # its finalizer
            Access(MIRRORS, "patch", subresource="status"),
        )

Verbs are RBAC's: ``writes`` holds ``create``, ``update``, ``patch`` (server-side apply
is a patch), ``delete`` and ``deletecollection``; ``reads`` holds ``get``, ``list`` and
``watch`` for reads of resources the controller does not watch (watched resources may
be read: ``get``, ``list`` and ``watch`` come with every watch). ``names`` limits the
grant to objects of those names (RBAC's ``resourceNames``; not possible for ``create``,
whose name the authorizer does not know).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .._meta.resource import Resource

__all__ = ["READ_VERBS", "WRITE_VERBS", "Access"]

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
READ_VERBS = frozenset({"get", "list", "watch"})


@dataclass(frozen=True, init=False)
class Access:
    """``verbs`` on ``resource`` (its ``subresource`` when given, e.g. ``"status"``),
    limited to ``names`` when given."""

    resource: Resource
    verbs: frozenset[str]
    subresource: str | None
    names: frozenset[str]

    def __init__(
        self,
        resource: Resource,
        *verbs: str,
        subresource: str | None = None,
        names: Iterable[str] = (),
    ) -> None:
        if not isinstance(resource, Resource):
            raise TypeError(f"Access: the first argument is a Resource, got {resource!r}")
        unknown = sorted(set(verbs) - WRITE_VERBS - READ_VERBS)
        if not verbs or unknown:
            raise ValueError(
                f"Access({resource.group_resource}): verbs must be among "
                f"{sorted(WRITE_VERBS | READ_VERBS)}, got {list(verbs)}"
            )
        names = frozenset(names)
        if names and "create" in verbs:
            raise ValueError(
                f"Access({resource.group_resource}): RBAC cannot limit create by name: "
                "declare create in an Access without names"
            )
        object.__setattr__(self, "resource", resource)
        object.__setattr__(self, "verbs", frozenset(verbs))
        object.__setattr__(self, "subresource", subresource or None)
        object.__setattr__(self, "names", names)

    @property
    def rbac_resource(self) -> str:
        """``plural`` or ``plural/subresource``, as RBAC names it."""
        plural = self.resource.plural
        return f"{plural}/{self.subresource}" if self.subresource else plural

    def covers(
        self, verb: str, resource: Resource, subresource: str | None, name: str | None
    ) -> bool:
        """Whether this grant allows ``verb`` on that resource (and object name)."""
        return (
            verb in self.verbs
            and (resource.group, resource.plural) == (self.resource.group, self.resource.plural)
            and (subresource or None) == self.subresource
            and (not self.names or name in self.names)
        )

    def __repr__(self) -> str:
        extra = f", subresource={self.subresource!r}" if self.subresource else ""
        if self.names:
            extra += f", names={sorted(self.names)!r}"
        verbs = ", ".join(repr(v) for v in sorted(self.verbs))
        return f"Access({self.resource.group_resource}, {verbs}{extra})"


def checked(grants: Iterable[Access], allowed: frozenset[str], *, where: str) -> tuple[Access, ...]:
    """``grants`` as a tuple, each an :class:`Access` with verbs among ``allowed``
    (``TypeError``/``ValueError`` naming ``where`` otherwise)."""
    out = tuple(grants)
    for grant in out:
        if not isinstance(grant, Access):
            raise TypeError(f"{where}: expected Access(...) entries, got {grant!r}")
        wrong = sorted(grant.verbs - allowed)
        if wrong:
            raise ValueError(f"{where}: {grant!r} has verbs {wrong} that belong elsewhere")
    return out
