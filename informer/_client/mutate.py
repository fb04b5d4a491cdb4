"""``create_or_update``: controller-runtime's ``controllerutil.CreateOrUpdate`` on dicts.

The semantics (controller-runtime ``pkg/controller/controllerutil``):

1. get the object named by ``obj`` (its ``metadata.name`` and ``metadata.namespace``);
2. missing: call ``mutate`` on a copy of ``obj`` and create it -> ``CREATED``;
3. present: call ``mutate`` on a copy of the current object; when the result equals the
   current object (deep equality, ``equality.Semantic.DeepEqual``) nothing is written ->
   ``UNCHANGED`` (controller-runtime's ``OperationResultNone``); otherwise update it at
   the resourceVersion read -> ``UPDATED``, or ``UNCHANGED`` when the server changed
   nothing (its answer keeps the resourceVersion).

``mutate`` must set the desired state on the dict it is given (in place; it may be a
coroutine function) and must not change ``metadata.name`` or ``metadata.namespace``
(``ValueError``, as controller-runtime's "MutateFn cannot mutate object name and/or
object namespace"). It is called once per attempt, so it must be idempotent.

Fields the server defaults. A ``mutate`` that replaces a whole part of the object
(``obj["spec"] = desired_spec``) drops the fields the server filled in (a Deployment's
``strategy``, a container's ``imagePullPolicy``), so the result never equals the current
object. In controller-runtime that is an update on every call (and a false "updated");
here the client remembers what its last write of each object asked for and what the
server answered (:mod:`informer._client.written`): when the current object is still in
that state and ``mutate`` asks for the same again, nothing is sent -> ``UNCHANGED``.
So a reconcile that writes the same desired state sends nothing from its second call on
after this client created or updated the object (one no-op update the first time after
a restart, or after another writer changed the object: the server's answer keeps the
resourceVersion, and the result is ``UNCHANGED`` too). A removed field (a key deleted
from ``data``, a label) is a change like any other: the comparison never guesses which
missing fields are defaults.

Where the get reads from. controller-runtime reads through its cache, so a lagging
cache makes the write fail (``AlreadyExists`` for a create of an object the cache has
not seen yet, ``Conflict`` for an update at a stale resourceVersion) and the reconcile is
retried. Here the first get reads the cache too (when the client's factory covers the
resource: the steady state, ``UNCHANGED``, then costs no API call), and on such a
``Conflict`` (``AlreadyExists`` included) the whole sequence runs once more reading from
the API server, which is current, instead of failing the reconcile. A ``Conflict`` after
an API read is a concurrent writer: it propagates, as in controller-runtime (a
:class:`~informer.Controller` retries it as a routine requeue).
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Awaitable, Callable
from inspect import isawaitable

from .._exceptions import Conflict, NotFound
from .._meta.objects import name_of, namespace_of, resource_version
from .._meta.resource import Resource
from .._meta.types import Obj
from .apiutil import namespace_for
from .cache_reads import deep_copy, read_sources
from .protocol import ReadWriter
from .written import WriteMemo, intent_digest

__all__ = ["MutateFn", "OperationResult", "create_or_update"]

MutateFn = Callable[[Obj], Awaitable[None] | None]


class OperationResult(enum.StrEnum):
    """What :meth:`~informer.Client.create_or_update` did (controller-runtime's
    ``controllerutil.OperationResult``)."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


async def create_or_update(
    client: ReadWriter,
    obj: Obj,
    mutate: MutateFn,
    *,
    resource: Resource | None = None,
    memo: WriteMemo | None = None,
) -> tuple[Obj, OperationResult]:
    """Make the object named by ``obj`` what ``mutate`` says; ``(object, result)``, the
    object being the server's answer (or the current object when nothing was sent).

    ``obj`` is not modified. ``memo`` is the client's record of its writes (``None``:
    every difference is sent). See the module docstring for the semantics and the reads.
    """
    res = await client.resource_for(obj, resource)
    ns = namespace_for(res, obj)
    from_cache = bool(read_sources(client.factory, res, ns))
    try:
        return await _attempt(client, res, obj, mutate, ns, cached=from_cache, memo=memo)
    except Conflict:
        if not from_cache:
            raise
    return await _attempt(client, res, obj, mutate, ns, cached=False, memo=memo)


async def _attempt(
    client: ReadWriter,
    res: Resource,
    obj: Obj,
    mutate: MutateFn,
    ns: str | None,
    *,
    cached: bool,
    memo: WriteMemo | None,
) -> tuple[Obj, OperationResult]:
    name = name_of(obj)
    try:
        current = await client.get(res, name, namespace=ns, cached=cached)
    except NotFound:
        desired = deep_copy(obj)
        await _mutate(mutate, desired, name, ns)
        created = await client.create(desired, resource=res)
        if memo is not None:
            memo.remember(res, created, intent_digest(desired, None))
        return created, OperationResult.CREATED
    desired = copy.deepcopy(current)  # exact types, so equality means "unchanged"
    await _mutate(mutate, desired, name, ns)
    if desired == current:
        return current, OperationResult.UNCHANGED
    intent = intent_digest(desired, current)
    if memo is not None and memo.unchanged(res, current, intent):
        return current, OperationResult.UNCHANGED
    updated = await client.update(desired, resource=res)
    if memo is not None:
        memo.remember(res, updated, intent)
    if resource_version(updated) == resource_version(current):
        return updated, OperationResult.UNCHANGED  # the server changed nothing
    return updated, OperationResult.UPDATED


async def _mutate(mutate: MutateFn, obj: Obj, name: str, namespace: str | None) -> None:
    result = mutate(obj)
    if result is not None and isawaitable(result):
        await result
    meta = obj.get("metadata")
    after = (meta.get("name"), namespace_of(obj)) if isinstance(meta, dict) else (None, None)
    if after != (name, namespace):
        raise ValueError(
            "mutate must not change the object's name or namespace "
            f"(controller-runtime's MutateFn rule): {namespace}/{name} became "
            f"{after[1]}/{after[0]}"
        )
