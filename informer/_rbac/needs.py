"""What a set of controllers needs of the API server, found without one.

Each controller class is built offline (on an informer factory without an API client:
``setup()`` declares its watches, nothing is listed), then read:

- every watch (``watch``, ``owns``, metadata-only ones too): ``get``, ``list``, ``watch``
  of its resource (the informer lists and watches; the client may read it uncached);
- its declared ``writes`` and ``reads`` (:class:`~informer.rbac.Access`);
- ``create`` and ``patch`` of ``events.k8s.io`` Events (its ``recorder``).

The runner's own needs come from its flags: leader election (``create`` of Leases, and
``get``/``update`` of the one named by the election id) and sharding (``get``, ``list``,
``create``, ``update``, ``delete`` of Leases), in the namespace of the Lease.

A controller class whose ``writes`` is ``None`` (not declared) is refused with a
``ValueError``: its Role would miss what it writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._cache.factory import SharedInformerFactory
from .._cache.informer import SharedIndexInformer
from .._meta.resource import EVENTS, LEASES, Resource
from .access import READ_VERBS, WRITE_VERBS, Access, checked

__all__ = ["DeclaringController", "Need", "controller_needs", "lease_needs"]


class DeclaringController(Protocol):
    """What is read of a built controller (an ``informer.Controller``)."""

    name: str

    @property
    def informers(self) -> list[SharedIndexInformer]: ...


@dataclass(frozen=True)
class Need:
    """``verbs`` on ``resource`` (``plural`` or ``plural/subresource``) of ``group``,
    limited to ``names`` when not empty; ``namespaced`` tells whether a Role can grant
    it; ``why`` says who needs it, for people."""

    group: str
    resource: str
    verbs: frozenset[str]
    namespaced: bool
    names: frozenset[str] = frozenset()
    why: tuple[str, ...] = field(default=(), compare=False)


def _need(grant: Access, why: str) -> Need:
    return Need(
        grant.resource.group,
        grant.rbac_resource,
        grant.verbs,
        grant.resource.namespaced,
        grant.names,
        (why,),
    )


def _watched(informer: SharedIndexInformer) -> Resource:
    resource = getattr(informer.lister_watcher, "resource", None)
    if not isinstance(resource, Resource):
        raise ValueError(
            f"informer {informer.name}: its lister-watcher names no Resource, so its RBAC "
            "cannot be known: watch a Resource"
        )
    return resource


def controller_needs(cls: type[Any], *, namespace: str | None = None) -> list[Need]:
    """The needs of controller class ``cls`` (module docstring), built in ``namespace``
    (``None``: all namespaces)."""
    writes = getattr(cls, "writes", None)
    if writes is None:
        raise ValueError(
            f"{cls.__qualname__} does not declare its writes: set writes = (Access(...), ...) "
            "on the class (writes = () if it writes nothing)"
        )
    factory = SharedInformerFactory(None, namespace=namespace)
    controller: DeclaringController = cls(factory, None)
    name = controller.name
    needs = [
        Need(r.group, r.plural, READ_VERBS, r.namespaced, why=(f"{name}: watch",))
        for r in (_watched(i) for i in controller.informers)
    ]
    where = f"{cls.__qualname__}.writes"
    needs.extend(_need(g, f"{name}: writes") for g in checked(writes, WRITE_VERBS, where=where))
    reads: Sequence[Access] = getattr(cls, "reads", ())
    where = f"{cls.__qualname__}.reads"
    needs.extend(_need(g, f"{name}: reads") for g in checked(reads, READ_VERBS, where=where))
    needs.append(
        Need(
            EVENTS.group,
            EVENTS.plural,
            frozenset({"create", "patch"}),
            True,
            why=(f"{name}: Events",),
        )
    )
    return needs


def lease_needs(*, leader_election_id: str | None, sharding: bool) -> list[Need]:
    """The Leases the runner writes with leader election (``leader_election_id``: the
    Lease's name) and/or sharding."""
    needs: list[Need] = []
    group, plural = LEASES.group, LEASES.plural
    if leader_election_id:
        why = ("leader election",)
        needs.append(Need(group, plural, frozenset({"create"}), True, why=why))
        needs.append(
            Need(
                group,
                plural,
                frozenset({"get", "update"}),
                True,
                frozenset({leader_election_id}),
                why,
            )
        )
    if sharding:
        verbs = frozenset({"get", "list", "create", "update", "delete"})
        needs.append(Need(group, plural, verbs, True, why=("sharding",)))
    return needs
