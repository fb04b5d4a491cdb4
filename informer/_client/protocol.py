"""What the Client's composite operations need of a client, as small Protocols.

The operations built on the client's primitives (``create_or_update``, finalizers,
``apply_manifests``, ``wait_cached``) are typed against these, not against
:class:`~informer.Client`, so that they depend on the methods they call and nothing
else (controller-runtime's ``client.Reader`` / ``client.Writer``); the ``Client``
satisfies all of them. Each method has the contract of the ``Client`` method of that
name: the objects passed in are not mutated, the objects returned are the caller's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

from .._meta.resource import Resource
from .._meta.types import Obj

if TYPE_CHECKING:
    from .._cache.factory import SharedInformerFactory

__all__ = ["PatchType", "ReadWriter", "Reader", "ResourceMapper", "Writer"]

PatchType = Literal["merge", "strategic", "json"]
"""``patch_type`` of :meth:`Client.patch`: JSON merge patch (RFC 7386), strategic merge
patch (built-in kinds only: custom resources answer 415), JSON patch (RFC 6902)."""


class ResourceMapper(Protocol):
    """The resource an object dict belongs to (controller-runtime's ``RESTMapper`` role)."""

    async def resource_for(self, obj: Obj, resource: Resource | None = None) -> Resource:
        """``resource`` when given, else the one serving ``obj``'s apiVersion and kind."""
        ...


class Reader(ResourceMapper, Protocol):
    """Reads, from the informer caches of ``factory`` when they cover the resource."""

    @property
    def factory(self) -> SharedInformerFactory | None:
        """The factory whose synced informers serve cached reads (never started here)."""
        ...

    async def get(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        cached: bool = True,
    ) -> Obj:
        """The object ``name``; :class:`~informer.NotFound` when it does not exist."""
        ...


class Writer(ResourceMapper, Protocol):
    """Writes to the API server; each returns the object the server answered."""

    async def create(self, obj: Obj, *, resource: Resource | None = None) -> Obj:
        """Create ``obj``."""
        ...

    async def update(
        self, obj: Obj, *, subresource: str | None = None, resource: Resource | None = None
    ) -> Obj:
        """Replace ``obj`` at its resourceVersion."""
        ...

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Obj | list[Any],
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> Obj:
        """Patch the object ``name``."""
        ...

    async def apply(
        self,
        obj: Obj,
        *,
        force: bool = False,
        subresource: str | None = None,
        field_manager: str | None = None,
        resource: Resource | None = None,
    ) -> Obj:
        """Server-side apply ``obj``."""
        ...


class ReadWriter(Reader, Writer, Protocol):
    """Both: what reads an object and writes it back."""
