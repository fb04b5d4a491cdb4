"""``apply_with_result``: a server-side apply that tells what it did (created, updated,
unchanged), so an operator can drive Events from server-side apply as from
``create_or_update``.

The apply itself is :meth:`~informer.Client.apply`. Around it:

1. the object is read first, from the client's cache when an informer covers it (no
   request; a miss there is read again from the API server, so a lagging cache does not
   make an existing object "created"), else from the API server (one GET);
2. when this client's last write of the object applied the same configuration (same
   field manager, ``force`` and subresource) and the object is still in the state that
   write left it in (:mod:`informer._client.written`), nothing is sent: ``UNCHANGED``;
3. otherwise the configuration is applied: ``CREATED`` when the object did not exist,
   ``UNCHANGED`` when the answer's resourceVersion is the one read (a no-op apply
   leaves it) or the one this client's last write left, else ``UPDATED``.

The result can err in one direction only: a write by someone else between the read and
the apply (or a cache behind the server) can make an apply that changed nothing report
``UPDATED``; a change is never reported ``UNCHANGED``.

Why a read and not a dry-run. Measured on the tests' local kube-apiserver 1.36 (200
requests each, a Deployment): a GET took 2.3 ms, a server-side apply that changed
nothing 4.0-5.5 ms, the same apply with ``dryRun=All`` 4.4-4.8 ms. A dry-run first would
cost about as much as the apply, still need the live object to compare its answer with,
and send the apply twice whenever something changed; a read costs half an apply from
the API server, nothing from the cache, and the memo then saves the apply itself.
"""

from __future__ import annotations

from .._exceptions import NotFound
from .._meta.objects import name_of, resource_version
from .._meta.resource import Resource
from .._meta.types import Obj
from .apiutil import namespace_for
from .cache_reads import read_sources
from .mutate import OperationResult
from .protocol import ReadWriter
from .written import WriteMemo, apply_intent_digest

__all__ = ["apply_with_result"]


async def apply_with_result(
    client: ReadWriter,
    memo: WriteMemo,
    obj: Obj,
    *,
    field_manager: str,
    force: bool = False,
    subresource: str | None = None,
    resource: Resource | None = None,
) -> tuple[Obj, OperationResult]:
    """Server-side apply ``obj`` as ``field_manager``; ``(object, result)``: the server's
    answer, or the object read when nothing was sent. See the module docstring."""
    res = await client.resource_for(obj, resource)
    ns = namespace_for(res, obj)
    name = name_of(obj)
    before = await _read(client, res, name, ns)
    intent = apply_intent_digest(
        obj, field_manager=field_manager, force=force, subresource=subresource
    )
    last = memo.last(res, before) if before is not None else None
    if before is not None and memo.unchanged(res, before, intent):
        return before, OperationResult.UNCHANGED
    answer = await client.apply(
        obj, force=force, subresource=subresource, field_manager=field_manager, resource=res
    )
    memo.remember(res, answer, intent)
    if before is None:
        return answer, OperationResult.CREATED
    rv = resource_version(answer)
    if rv == resource_version(before) or (last is not None and rv == last.resource_version):
        return answer, OperationResult.UNCHANGED
    return answer, OperationResult.UPDATED


async def _read(client: ReadWriter, res: Resource, name: str, ns: str | None) -> Obj | None:
    """The object (cache first when it covers it, the API server on a miss), or None."""
    cached = bool(read_sources(client.factory, res, ns))
    try:
        return await client.get(res, name, namespace=ns, cached=cached)
    except NotFound:
        if not cached:
            return None
    try:
        return await client.get(res, name, namespace=ns, cached=False)
    except NotFound:
        return None
