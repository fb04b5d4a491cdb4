"""``SharedInformerFactory``: one informer per (resource, namespace, selectors, metadata
only or not), shared.

Controllers ask the factory for informers; two requests with the same resource, scope,
selectors and ``metadata_only`` get the same :class:`~informer.SharedIndexInformer`, so
a cluster object is listed, watched and cached once however many controllers look at it.
A metadata-only informer (``metadata_only=True``: ``PartialObjectMetadata``, see
:mod:`informer._cache.metadata`) is a different informer from the whole-object one of
the same resource, with its own watch and cache; both may exist at once.

``async with factory:`` runs every informer requested so far in one task group, and any
informer requested later is started at once. Leaving the block stops them all.

Factories that share informers (a Manager's: one factory per namespace). A factory built
with a ``router`` asks it, for an informer of a namespace other than its own (a
cluster-scoped resource's informers have none), which factory keeps the informers of
that namespace, and delegates to it: ``informer_for`` returns that factory's informer
(created and run there), and ``informers_covering`` / ``find_informer`` look there too.
So controllers built on different factories of one Manager share one informer per
(resource, namespace, selectors, metadata only). The router returns ``None`` (or the
factory itself) to keep an informer local; it must not route a namespace back and forth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import anyio
import anyio.abc
import structlog

from .._meta.resource import Resource
from .informer import SharedIndexInformer, Transform
from .listwatch import ApiListerWatcher, ListerWatcher
from .store import IndexFunc

__all__ = ["FactoryRouter", "InformerScope", "ListerWatcherFactory", "SharedInformerFactory"]

log = structlog.get_logger(__name__)

_DEFAULT: Any = object()


class ListerWatcherFactory(Protocol):
    """Builds the ListerWatcher of one informer (the test and benchmark seam).

    For a metadata-only informer it is also passed ``metadata_only=True`` (a factory
    that never serves one need not accept it); it must then return a ListerWatcher of
    metadata-only objects (``ApiListerWatcher(..., metadata_only=True)``).
    """

    def __call__(
        self,
        resource: Resource,
        *,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
    ) -> ListerWatcher: ...


InformerKey = tuple[Resource, str | None, str | None, str | None, bool]
"""(resource, namespace, label selector, field selector, metadata only)."""

FactoryRouter = Callable[[str | None], "SharedInformerFactory | None"]
"""The factory that keeps the informers of a namespace (``None``: cluster-wide ones)."""


@dataclass(frozen=True, slots=True)
class InformerScope:
    """An informer and what its cache holds: the objects of its resource in
    ``namespace`` (``None``: every namespace) matching both selectors (``None``: all)."""

    informer: SharedIndexInformer
    namespace: str | None
    label_selector: str | None
    field_selector: str | None

    @property
    def complete(self) -> bool:
        """Whether it caches every object of its scope (no selector): an object absent
        from it does not exist (as of the informer's resourceVersion)."""
        return self.label_selector is None and self.field_selector is None


class SharedInformerFactory:
    """Creates and runs shared informers on one API client.

    ``namespace`` is the default scope (None: all namespaces); ``resync_period`` and
    ``transform`` apply to every informer it creates; ``reflector_options`` are passed
    to each informer's Reflector. ``lister_watcher_factory`` replaces the real
    :class:`~informer.ApiListerWatcher` (tests, benchmarks); it is passed
    ``metadata_only=True`` only for metadata-only informers. ``router`` shares informers
    of other namespaces with other factories (module docstring).
    """

    def __init__(
        self,
        api_client: Any,
        *,
        namespace: str | None = None,
        resync_period: float = 0.0,
        transform: Transform | None = None,
        reflector_options: Mapping[str, Any] | None = None,
        lister_watcher_factory: ListerWatcherFactory | None = None,
        router: FactoryRouter | None = None,
    ) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.resync_period = resync_period
        self.transform = transform
        self.reflector_options = dict(reflector_options or {})
        self._lw_factory = lister_watcher_factory
        self._router = router
        self._informers: dict[InformerKey, SharedIndexInformer] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._running: set[InformerKey] = set()

    def informer_for(
        self,
        resource: Resource,
        *,
        namespace: str | None = _DEFAULT,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        metadata_only: bool = False,
    ) -> SharedIndexInformer:
        """The shared informer for this resource, scope and selectors (created if new).

        ``namespace`` defaults to the factory's; it is ignored for cluster-scoped
        resources. ``indexers`` are added to the informer's store (also when it exists
        and holds data already). ``metadata_only=True``: the informer lists and watches
        ``PartialObjectMetadata`` and caches ``{"apiVersion", "kind", "metadata"}`` objects
        (``resource`` must name its ``kind``, else ``ValueError``); it is not the
        informer of the whole objects, and its name ends in ``(metadata)``.
        """
        ns = self.namespace if namespace is _DEFAULT else namespace
        if not resource.namespaced:
            ns = None
        keeper = self._keeper(ns)
        if keeper is not None:
            return keeper.informer_for(
                resource,
                namespace=ns,
                label_selector=label_selector,
                field_selector=field_selector,
                indexers=indexers,
                metadata_only=metadata_only,
            )
        key: InformerKey = (
            resource,
            ns,
            label_selector or None,
            field_selector or None,
            metadata_only,
        )
        informer = self._informers.get(key)
        if informer is None:
            lw = self._make_lister_watcher(
                resource, ns, label_selector, field_selector, metadata_only
            )
            name = _informer_name(resource, ns, label_selector, field_selector)
            informer = SharedIndexInformer(
                lw,
                resync_period=self.resync_period,
                indexers=indexers,
                transform=self.transform,
                name=f"{name}(metadata)" if metadata_only else name,
                reflector_options=self.reflector_options,
            )
            self._informers[key] = informer
            if self._tg is not None:
                self._start(key, informer)
        elif indexers:
            informer.add_indexers(indexers)
        return informer

    def find_informer(
        self, resource: Resource, *, namespace: str | None = None, metadata_only: bool = False
    ) -> SharedIndexInformer | None:
        """An informer already requested that caches every object of ``resource`` in
        ``namespace`` (``None``: all namespaces), or ``None``; never creates one.

        Only informers without label or field selectors qualify (a selector's cache
        would miss objects), matched on group, version and plural; an all-namespaces
        informer covers every namespace. A cluster-scoped resource ignores ``namespace``.
        A metadata-only informer is found only with ``metadata_only=True``, and then only
        a metadata-only one: its objects lack everything but ``metadata``.
        """
        scopes = self.informers_covering(resource, namespace=namespace, metadata_only=metadata_only)
        return next((scope.informer for scope in scopes if scope.complete), None)

    def informers_covering(
        self, resource: Resource, *, namespace: str | None, metadata_only: bool = False
    ) -> list[InformerScope]:
        """Every informer already requested of ``resource`` (matched on group, version
        and plural) whose scope includes ``namespace`` (``None``: all namespaces, which
        only an all-namespaces informer includes), whatever its selectors; never creates
        one. Best first: those without selectors, then the rest; within each, the
        namespace's own before an all-namespaces one. ``metadata_only`` as
        :meth:`find_informer`.
        """
        ranked = self._covering(resource, namespace, metadata_only)
        for other in self._keepers(namespace):
            ranked += other._covering(resource, namespace, metadata_only)
        ranked.sort(key=lambda pair: pair[0])
        return [scope for _, scope in ranked]

    def _covering(
        self, resource: Resource, namespace: str | None, metadata_only: bool
    ) -> list[tuple[int, InformerScope]]:
        """This factory's own informers covering ``namespace``, each with its rank."""
        want = (resource.group, resource.version, resource.plural)
        ranked: list[tuple[int, InformerScope]] = []
        for (res, ns, labels, fields, meta), informer in self._informers.items():
            if (res.group, res.version, res.plural) != want or meta != metadata_only:
                continue
            everywhere = ns is None or not res.namespaced
            if not everywhere and (namespace is None or ns != namespace):
                continue
            rank = (2 if labels or fields else 0) + (1 if everywhere else 0)
            ranked.append((rank, InformerScope(informer, ns, labels, fields)))
        return ranked

    def _keeper(self, namespace: str | None) -> SharedInformerFactory | None:
        """The other factory keeping the informers of ``namespace``, or None (here)."""
        if self._router is None or namespace == self.namespace:
            return None
        keeper = self._router(namespace)
        return None if keeper is self else keeper

    def _keepers(self, namespace: str | None) -> list[SharedInformerFactory]:
        """The other factories whose informers may cover ``namespace``: the one keeping
        that namespace's, and the one keeping cluster-wide informers."""
        keepers: list[SharedInformerFactory] = []
        for ns in (namespace, None):
            keeper = self._keeper(ns)
            if keeper is not None and all(keeper is not k for k in keepers):
                keepers.append(keeper)
        return keepers

    @property
    def informers(self) -> list[SharedIndexInformer]:
        return list(self._informers.values())

    def _make_lister_watcher(
        self,
        resource: Resource,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        metadata_only: bool,
    ) -> ListerWatcher:
        if self._lw_factory is not None:
            if metadata_only:  # only then: factories without the keyword keep working
                with_metadata: Callable[..., ListerWatcher] = self._lw_factory
                return with_metadata(
                    resource,
                    namespace=namespace,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    metadata_only=True,
                )
            return self._lw_factory(
                resource,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
            )
        return ApiListerWatcher(
            self.api_client,
            resource,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            metadata_only=metadata_only,
        )

    def _start(self, key: InformerKey, informer: SharedIndexInformer) -> None:
        assert self._tg is not None
        self._running.add(key)
        self._tg.start_soon(informer.run, name=f"informer {informer.name}")

    async def __aenter__(self) -> SharedInformerFactory:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        for key, informer in self._informers.items():
            if key not in self._running:
                self._start(key, informer)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._tg = self._tg, None
        assert tg is not None
        tg.cancel_scope.cancel()
        return await tg.__aexit__(exc_type, exc, tb)

    async def wait_for_cache_sync(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until every informer requested so far has synced.

        Returns False when ``timeout`` (seconds) ran out first; :meth:`unsynced` then
        names the informers still listing, and their reflectors' ``last_error`` says why.
        """
        with anyio.move_on_after(timeout):
            for informer in list(self._informers.values()):
                await informer.wait_for_sync()
            return True
        return False

    def unsynced(self) -> list[SharedIndexInformer]:
        return [i for i in self._informers.values() if not i.has_synced()]


def _informer_name(
    resource: Resource,
    namespace: str | None,
    label_selector: str | None,
    field_selector: str | None,
) -> str:
    name = resource.group_resource
    if namespace:
        name += f"@{namespace}"
    if label_selector:
        name += f"[{label_selector}]"
    if field_selector:
        name += f"{{{field_selector}}}"
    return name
