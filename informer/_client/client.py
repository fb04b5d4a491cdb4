"""``Client``: controller-runtime's client for plain dicts.

Reads (:meth:`Client.get`, :meth:`Client.list`) are served from the informer cache of the
client's factory when one covers the resource and namespace (``informer._client.
cache_reads``: no API call, a deep copy), otherwise from the API server. Writes always go
to the API server and return the object the server answered. Every request goes through
``informer._rest.request.request_json``.

Which resource a written dict belongs to comes from its ``apiVersion`` and ``kind``
through API discovery (:class:`~informer._client.discovery.Discovery`); every write
method takes ``resource=`` to skip discovery. The namespace of a written dict is its
``metadata.namespace`` (required for a namespaced resource: a ``ValueError`` otherwise,
before any request).

Every write names :attr:`Client.field_manager` as its ``fieldManager`` (controller-runtime's
``client.WithFieldOwner``), so ``managedFields`` attribute create, update, patch and apply
to one manager; :meth:`Client.apply` takes another per call.

The operations built on the primitives (``create_or_update``, ``apply_with_result``, the
finalizer methods, ``apply_manifests``, ``wait_cached``) live in a module each, typed
against the small Protocols of ``informer._client.protocol`` that this class satisfies;
the options of list and delete requests are built by ``informer._client.options``.

Contracts: the client never mutates a dict it is given and never returns one the cache
or another caller holds. A ``Client`` is used from one event loop; it holds no
connection of its own (the ``ApiClient``'s pool is used).
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal, overload

from .._cache.factory import SharedInformerFactory
from .._exceptions import NotFound
from .._meta.objects import name_of
from .._meta.resource import Resource
from .._meta.types import Obj
from .._rest.api_request import QueryParams
from .._rest.request import request_json
from . import apiutil
from . import apply_result as _apply_result
from . import finalizers as _finalizers
from . import manifests as _manifests
from . import mutate as _mutate
from . import wait as _wait
from .cache_reads import cached_get, cached_list, list_source, read_sources
from .discovery import Discovery
from .mutate import OperationResult
from .options import delete_options, list_query
from .protocol import PatchType
from .wait import DeleteLedger
from .written import WriteMemo

__all__ = ["AccessCheck", "Client", "PatchType"]

AccessCheck = Callable[..., None]
"""Called before every request with ``(verb, resource, subresource=, name=, namespace=)``;
raises to refuse it (a controller's declared-access guard, ``informer._rbac.guard``)."""

_PATCH_TYPES: Final = ("merge", "strategic", "json")


class Client:
    """Reads from the cache, writes to the API server; objects are dicts.

    ``api_client`` is a kubernetes_asyncio ``ApiClient`` (from
    :func:`~informer.new_api_client`, or the ``api_client`` fixture). ``factory`` is the
    :class:`~informer.SharedInformerFactory` whose informers serve cached reads and
    :meth:`wait_cached` (a Manager's ``manager.factory``); the client never creates nor
    starts an informer. ``field_manager`` names this client's writes in
    ``managedFields``.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        factory: SharedInformerFactory | None = None,
        field_manager: str = "kube-informer",
        discovery: Discovery | None = None,
        access_check: AccessCheck | None = None,
    ) -> None:
        if not field_manager:
            raise ValueError("field_manager must be a non-empty string")
        self.api_client = api_client
        self.factory = factory
        self.field_manager = field_manager
        self.discovery = discovery if discovery is not None else Discovery(api_client)
        self._deletes = DeleteLedger()
        self._check: AccessCheck = access_check or _no_check
        self._written = WriteMemo()

    # -- resources ------------------------------------------------------------------

    async def resource_for(self, obj: Obj, resource: Resource | None = None) -> Resource:
        """The resource of ``obj``: ``resource`` when given, else discovery of its
        ``apiVersion``/``kind`` (``ValueError`` when either is missing,
        :class:`~informer.ResourceNotServed` when the server does not serve them)."""
        return await apiutil.resource_for(self.discovery, obj, resource)

    @staticmethod
    def namespace_for(resource: Resource, obj: Obj) -> str | None:
        """``metadata.namespace`` of ``obj`` for a namespaced resource (``ValueError`` when
        absent), ``None`` for a cluster-scoped one."""
        return apiutil.namespace_for(resource, obj)

    # -- reads ----------------------------------------------------------------------

    async def get(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        cached: bool = True,
    ) -> Obj:
        """The object ``name`` (in ``namespace`` for a namespaced resource).

        With ``cached=True`` it comes from the factory's synced informers when they can
        answer and agree (no API call): the object they hold, or the ``NotFound`` of one
        without selectors; else from the API server (the table in
        :mod:`informer._client.cache_reads`). Raises :class:`~informer.NotFound` when it
        does not exist (there).
        """
        apiutil.check_namespace(resource, namespace, "get")
        if not resource.namespaced:
            namespace = None
        if cached:
            sources = read_sources(self.factory, resource, namespace)
            obj, final = cached_get(sources, name, namespace=namespace)
            if obj is not None:
                return obj
            if final:
                raise NotFound(
                    f'{resource.group_resource} "{name}" not found (informer cache)',
                    status=404,
                    reason="NotFound",
                    verb="get",
                    resource=resource.group_resource,
                    namespace=namespace,
                )
        self._check("get", resource, name=name, namespace=namespace)
        return await request_json(
            self.api_client,
            "GET",
            resource.path(name, namespace=namespace),
            verb="get",
            resource=resource.group_resource,
            namespace=namespace,
        )

    async def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        field_selector: str | None = None,
        cached: bool = True,
    ) -> builtins.list[Obj]:
        """The objects of ``resource`` in ``namespace`` (``None``: all namespaces) matching
        the selectors, each with ``apiVersion`` and ``kind``.

        With ``cached=True`` they come from the factory's synced informer whose cache holds
        every object the request selects when there is one: one without selectors, or one
        whose selectors the request's imply (the table in
        :mod:`informer._client.cache_reads`); else from the API server. A
        ``field_selector`` on anything but ``metadata.name`` / ``metadata.namespace``
        (and not the informer's own) is evaluated by the API server, so that read goes
        there. ``label_selector`` is a selector string or a mapping of labels that must
        all match.
        """
        query = list_query(label_selector, field_selector)
        if cached:
            source = list_source(
                read_sources(self.factory, resource, namespace),
                label_selector=label_selector,
                field_selector=field_selector,
            )
            if source is not None:
                informer, field_match = source
                return cached_list(
                    informer,
                    namespace=namespace if resource.namespaced else None,
                    label_selector=label_selector or None,
                    field_match=field_match,
                )
        self._check("list", resource, namespace=namespace)
        answer = await request_json(
            self.api_client,
            "GET",
            resource.path(namespace=namespace),
            query=query,
            verb="list",
            resource=resource.group_resource,
            namespace=namespace,
        )
        return apiutil.listed_items(answer, resource)

    # -- writes ---------------------------------------------------------------------

    async def create(self, obj: Obj, *, resource: Resource | None = None) -> Obj:
        """Create ``obj`` (``metadata.name`` or ``generateName``); the created object.

        Raises :class:`~informer.AlreadyExists` (a :class:`~informer.Conflict`) when the
        name is taken.
        """
        res = await self.resource_for(obj, resource)
        ns = apiutil.namespace_for(res, obj)
        self._check("create", res, namespace=ns)
        return await self._write("POST", res, res.path(namespace=ns), ns, obj)

    async def update(
        self, obj: Obj, *, subresource: str | None = None, resource: Resource | None = None
    ) -> Obj:
        """Replace ``obj`` (PUT) at its ``metadata.resourceVersion``: a
        :class:`~informer.Conflict` when the object changed since (an object without a
        resourceVersion is replaced unconditionally). ``subresource="status"`` replaces
        the status only (the server ignores the rest), as ``update_status``."""
        res = await self.resource_for(obj, resource)
        ns = apiutil.namespace_for(res, obj)
        path = res.path(name_of(obj), namespace=ns, subresource=subresource)
        self._check("update", res, subresource=subresource, name=name_of(obj), namespace=ns)
        return await self._write("PUT", res, path, ns, obj)

    async def update_status(self, obj: Obj, *, resource: Resource | None = None) -> Obj:
        """:meth:`update` of the ``status`` subresource."""
        return await self.update(obj, subresource="status", resource=resource)

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Obj | builtins.list[Any],
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> Obj:
        """Patch the object ``name``: ``patch_type`` is ``"merge"`` (a dict),
        ``"strategic"`` (a dict; built-in kinds only) or ``"json"`` (a list of
        operations; a failed ``test`` operation is rejected by the server). A merge or
        strategic patch that sets ``metadata.resourceVersion`` is applied only at that
        resourceVersion (:class:`~informer.Conflict` otherwise)."""
        if patch_type not in _PATCH_TYPES:
            raise ValueError(
                f"patch_type={patch_type!r}: pass 'merge', 'strategic' or 'json' "
                "(server-side apply is Client.apply)"
            )
        apiutil.check_namespace(resource, namespace, "patch")
        path = resource.path(name, namespace=namespace, subresource=subresource)
        self._check("patch", resource, subresource=subresource, name=name, namespace=namespace)
        return await self._write("PATCH", resource, path, namespace, patch, content_type=patch_type)

    async def apply(
        self,
        obj: Obj,
        *,
        force: bool = False,
        subresource: str | None = None,
        field_manager: str | None = None,
        resource: Resource | None = None,
    ) -> Obj:
        """Server-side apply ``obj``, the fields this manager wants to own (an apply
        configuration: ``apiVersion``, ``kind``, ``metadata.name``, and only the fields
        you set; no ``managedFields``). Creates the object when it does not exist.

        ``field_manager`` defaults to the client's. A field another manager owns with a
        different value raises :class:`~informer.Conflict` naming the fields and
        managers, unless ``force=True`` takes them over. Fields written by
        create/update/patch are owned by an ``Update`` manager, which counts as another
        manager even under the same name: to change them by apply, pass ``force=True``
        once (or manage an object by apply only). A ``metadata.resourceVersion`` in
        ``obj`` makes the apply conditional on it.
        """
        res = await self.resource_for(obj, resource)
        ns = apiutil.namespace_for(res, obj)
        path = res.path(name_of(obj), namespace=ns, subresource=subresource)
        query: dict[str, str | bool] = {"fieldManager": field_manager or self.field_manager}
        if force:
            query["force"] = True
        self._check("patch", res, subresource=subresource, name=name_of(obj), namespace=ns)
        return await self._write(
            "PATCH", res, path, ns, obj, content_type="apply", query=query, verb="apply"
        )

    async def apply_with_result(
        self,
        obj: Obj,
        *,
        force: bool = False,
        subresource: str | None = None,
        field_manager: str | None = None,
        resource: Resource | None = None,
    ) -> tuple[Obj, OperationResult]:
        """:meth:`apply`, telling what it did: ``(object, CREATED | UPDATED | UNCHANGED)``.

        Reads the object first (the cache when it covers it) and sends nothing when this
        client applied the same configuration to the object as it is now: see
        :func:`informer._client.apply_result.apply_with_result` for the rules and the
        one direction the result can err in (``UPDATED`` for a no-op racing another
        writer).
        """
        return await _apply_result.apply_with_result(
            self,
            self._written,
            obj,
            field_manager=field_manager or self.field_manager,
            force=force,
            subresource=subresource,
            resource=resource,
        )

    async def apply_status(
        self,
        obj: Obj,
        *,
        force: bool = False,
        field_manager: str | None = None,
        resource: Resource | None = None,
    ) -> Obj:
        """:meth:`apply` to the ``status`` subresource."""
        return await self.apply(
            obj, force=force, subresource="status", field_manager=field_manager, resource=resource
        )

    async def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        missing_ok: bool = False,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: Literal["Orphan", "Background", "Foreground"] | None = None,
    ) -> Obj | None:
        """Delete the object ``name``; the server's answer: the object (still there with a
        ``deletionTimestamp`` while finalizers run, or as deleted for some resources),
        or a ``Status``. ``None`` when it did not exist and ``missing_ok``, else
        :class:`~informer.NotFound`.

        ``uid`` / ``resource_version`` are preconditions: the server deletes only that
        incarnation / that version (:class:`~informer.Conflict` otherwise).
        ``propagation_policy`` decides what happens to dependents (the server's default:
        ``Background`` for most resources).
        """
        apiutil.check_namespace(resource, namespace, "delete")
        self._check("delete", resource, name=name, namespace=namespace)
        body = delete_options(
            uid=uid, resource_version=resource_version, propagation_policy=propagation_policy
        )
        try:
            answer = await request_json(
                self.api_client,
                "DELETE",
                resource.path(name, namespace=namespace),
                body=body,
                verb="delete",
                resource=resource.group_resource,
                namespace=namespace,
            )
        except NotFound:
            if missing_ok:
                return None
            raise
        self._deletes.record(resource, namespace, name, answer)
        return answer

    # -- composite operations (one module each) ------------------------------------

    async def create_or_update(
        self,
        obj: Obj,
        mutate: Callable[[Obj], Awaitable[None] | None],
        *,
        resource: Resource | None = None,
    ) -> tuple[Obj, OperationResult]:
        """controller-runtime's ``controllerutil.CreateOrUpdate``, sending nothing when
        ``mutate`` asks again for what this client last wrote (so a desired spec without
        the server's defaults is ``UNCHANGED`` from the second call on): see
        :func:`informer._client.mutate.create_or_update`."""
        return await _mutate.create_or_update(
            self, obj, mutate, resource=resource, memo=self._written
        )

    async def apply_manifests(
        self,
        text: str,
        *,
        namespace: str | None = None,
        force: bool = False,
        field_manager: str | None = None,
    ) -> builtins.list[Obj]:
        """Server-side apply every document of a multi-document YAML string, in order:
        see :func:`informer._client.manifests.apply_manifests`."""
        return await _manifests.apply_manifests(
            self, text, namespace=namespace, force=force, field_manager=field_manager
        )

    async def wait_cached(
        self,
        obj: Obj,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - the public signature
        resource: Resource | None = None,
    ) -> Obj | None:
        """Wait until the factory's informer reflects this client's write of ``obj``:
        see :func:`informer._client.wait.wait_cached`."""
        return await _wait.wait_cached(
            self, obj, timeout=timeout, resource=resource, deletes=self._deletes
        )

    async def add_finalizer(self, obj: Obj, name: str, *, resource: Resource | None = None) -> Obj:
        """Add finalizer ``name`` at ``obj``'s resourceVersion (``ValueError`` before any
        request when the API server would refuse it: an invalid name, an object being
        deleted): see :func:`informer._client.finalizers.add_finalizer`."""
        return await _finalizers.add_finalizer(self, obj, name, resource=resource)

    @overload
    async def remove_finalizer(
        self,
        obj: Obj,
        name: str,
        *,
        resource: Resource | None = ...,
        missing_ok: Literal[False] = ...,
    ) -> Obj: ...

    @overload
    async def remove_finalizer(
        self, obj: Obj, name: str, *, resource: Resource | None = ..., missing_ok: bool
    ) -> Obj | None: ...

    async def remove_finalizer(
        self, obj: Obj, name: str, *, resource: Resource | None = None, missing_ok: bool = False
    ) -> Obj | None:
        """Remove finalizer ``name`` at ``obj``'s resourceVersion (``None`` when the
        object is gone and ``missing_ok``, as :meth:`delete`): see
        :func:`informer._client.finalizers.remove_finalizer`."""
        return await _finalizers.remove_finalizer(
            self, obj, name, resource=resource, missing_ok=missing_ok
        )

    # -- internals ------------------------------------------------------------------

    async def _write(
        self,
        method: str,
        resource: Resource,
        path: str,
        namespace: str | None,
        body: Obj | builtins.list[Any],
        *,
        content_type: str | None = None,
        query: QueryParams | None = None,
        verb: str | None = None,
    ) -> Obj:
        return await request_json(
            self.api_client,
            method,
            path,
            query=query if query is not None else {"fieldManager": self.field_manager},
            body=body,
            content_type=content_type,
            verb=verb,
            resource=resource.group_resource,
            namespace=namespace,
        )


def _no_check(*args: Any, **kwargs: Any) -> None:
    """The access check of a client that has none."""
