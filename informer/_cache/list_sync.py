"""``ListSync``: the Reflector's sync by list, one complete paginated list into the store.

``sync(rv)`` sends ``list(resource_version=rv, limit=page_size)`` and follows ``continue``
tokens (later pages carry no resourceVersion, as the API requires); the whole list, all
pages, goes to ``apply(items, list_rv)`` (the Reflector's ``store.replace``) in one call,
``list_rv`` being the last page's. The Reflector chooses ``rv`` (client-go's
``relistResourceVersion``): ``"0"`` for the first list (served from the watch cache,
which ignores ``limit``; a ``continue`` is followed all the same), the last synced RV
for later relists, and ``""`` (a consistent read) once the last synced RV proved
unavailable.

- ``limit``: a list at ``""`` or ``"0"`` is paginated by ``page_size``; a relist at a
  specific RV is sent without ``limit`` so that the watch cache can serve it (client-go's
  guard against a thundering herd on etcd), unless a ``"0"`` list came back paginated
  (no watch cache for this resource: from then on every list is paginated).
- A 410 (or "too large resourceVersion"), on page 1 or page N: ``on_rv_unavailable(exc)``
  (the Reflector reports it and lists at ``""`` until a sync succeeds), then one retry at
  once at ``""``; when the 410 hit a continuation page (the token expired: the list is
  slower than etcd compaction) the retry is one unpaginated read, as client-go's pager
  does. Any other error, or a failing retry, propagates (nothing was applied).
- Shape: a List's items carry no ``apiVersion``/``kind`` (watch objects do); an item
  lacking them gets the List's ``apiVersion`` and its ``kind`` minus ``List``
  (``ConfigMapList`` -> ``ConfigMap``), in the same pass that applies the transform
  (:func:`item_function`), so every cached object has one shape whichever way it
  arrived.
- An item that pass raises on (not an object; the transform failed) is left out of the
  sync and reported to ``bad_events`` (``invalid_object``, ``store_failed``): one such
  item never fails the list. Items the store cannot key are left out by the store
  (``DeltaFIFO.replace_steps``' ``skip``).
- Memory and the loop: an :class:`~informer._cache.listwatch.ItemwiseLister`
  (``ApiListerWatcher``) is asked for ``list_prepared``, which passes each item through
  that pass as soon as it is decoded (:func:`item_function`,
  :mod:`informer._cache.list_decode`): what the transform drops is freed before the next
  item is decoded, and reused by it (a List decoded whole would first hold every item at
  full size), and the decode yields to the event loop every 64 KiB (a 100,000-item page
  decoded in one call held it ~450 ms). With another lister-watcher the page is decoded
  whole, then each item goes through the same pass (as :func:`received_items` does).

Logs (on the Reflector's logger): ``list.started`` (rv, limit), ``list.expired`` (rv,
page), ``list.done`` (count, rv, pages, seconds) after ``apply``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from .._exceptions import ApiError, ConnectionFailed, InformerError
from .._meta.types import Obj
from .bad_events import BadEvents
from .list_decode import ItemFunc
from .listwatch import ItemwiseLister, ListerWatcher
from .reflector_stats import ReflectorStats
from .responses import describe, is_rv_unavailable
from .transforms import TransformFunc

__all__ = ["ListSync", "OnItemError", "item_function", "received_items"]

OnItemError = Callable[[object, Exception], Obj]
"""``on_error(item, exc)``: an item :func:`item_function`'s function raised on; returns
what to keep in its place."""


_SKIPPED: Obj = {}
"""The placeholder of an item left out (compared by identity)."""


def _item_kind(page: Obj) -> tuple[str, str] | None:
    """The ``kind`` and ``apiVersion`` the List ``page``'s items lack, or None (a List of
    an unknown kind: not ending in ``List``, or just ``List``)."""
    list_kind = page.get("kind")
    api_version = page.get("apiVersion")
    if (
        isinstance(list_kind, str)
        and len(list_kind) > 4
        and list_kind.endswith("List")
        and isinstance(api_version, str)
        and api_version
    ):
        return list_kind[:-4], api_version
    return None


def item_function(
    page: Obj, transform: TransformFunc | None, *, on_error: OnItemError | None = None
) -> ItemFunc | None:
    """What each item of the List ``page`` goes through to be cached, one at a time
    (``None``: nothing): what :func:`received_items` does to each item. Reads only the
    List's ``kind`` and ``apiVersion`` (a :data:`~informer._cache.list_decode.Prepare`
    once ``transform`` and ``on_error`` are bound). An exception on an item goes to
    ``on_error(item, exc)``, whose result replaces the item, or propagates without it."""
    gvk = _item_kind(page)
    if gvk is None:
        if transform is None or on_error is None:
            return transform

        def guarded(obj: Obj) -> Obj:
            try:
                return transform(obj)
            except Exception as exc:
                return on_error(obj, exc)

        return guarded
    kind, api_version = gvk
    if transform is None:

        def fill(obj: Obj) -> Obj:
            try:
                if "kind" not in obj:
                    obj["kind"] = kind
                if "apiVersion" not in obj:
                    obj["apiVersion"] = api_version
            except Exception as exc:
                if on_error is None:
                    raise
                return on_error(obj, exc)
            return obj

        return fill

    def fill_and_transform(obj: Obj) -> Obj:
        try:
            if "kind" not in obj:
                obj["kind"] = kind
            if "apiVersion" not in obj:
                obj["apiVersion"] = api_version
            return transform(obj)
        except Exception as exc:
            if on_error is None:
                raise
            return on_error(obj, exc)

    return fill_and_transform


def received_items(page: Obj, transform: TransformFunc | None) -> list[Obj]:
    """The items of one list page as they are cached, in one pass over them.

    A List's items carry no ``apiVersion``/``kind`` (watch objects do): each item lacking
    them gets the List's own ``apiVersion`` and its ``kind`` minus ``List``
    (``ConfigMapList`` -> ``ConfigMap``), so the cache holds one shape of object however
    it arrived. Then ``transform`` runs on each. A List of an unknown kind (not ending in
    ``List``, or just ``List``) fills nothing.
    """
    items: list[Obj] = page.get("items") or []
    gvk = _item_kind(page)
    if gvk is None:
        return items if transform is None else [transform(obj) for obj in items]
    kind, api_version = gvk
    if transform is None:
        for obj in items:
            if "kind" not in obj:
                obj["kind"] = kind
            if "apiVersion" not in obj:
                obj["apiVersion"] = api_version
        return items
    out: list[Obj] = []
    append = out.append
    for obj in items:
        if "kind" not in obj:
            obj["kind"] = kind
        if "apiVersion" not in obj:
            obj["apiVersion"] = api_version
        append(transform(obj))
    return out


class ListSync:
    """Lists a resource completely and applies it (see the module docstring).

    :param apply: ``await apply(items, list_rv)``, once per successful sync; it takes
        ownership of the list.
    :param bad_events: where an item left out is counted and logged.
    :param on_rv_unavailable: called with a 410 / too-large-RV error before the retry
        (the Reflector's ``Recovery`` counts and reports it).
    :param stats: counts ``lists`` and ``list_pages`` into the Reflector's.
    :param log: the Reflector's logger.
    """

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        *,
        apply: Callable[[list[Obj], str], Awaitable[None]],
        bad_events: BadEvents,
        on_rv_unavailable: Callable[[Exception], None],
        page_size: int | None,
        transform: TransformFunc | None,
        stats: ReflectorStats,
        log: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lw = lister_watcher
        self._apply = apply
        self._on_rv_unavailable = on_rv_unavailable
        self._page_size = page_size or None
        self._transform = transform
        self._stats = stats
        self._log = log
        self._clock = clock
        self._paginated_result = False
        self._list_page = 0
        # Item by item whenever the lister can: smaller with a transform, faster without
        # one (the working set stays in cache), and the decode yields to the loop.
        self._itemwise = lister_watcher if isinstance(lister_watcher, ItemwiseLister) else None
        self._bad_events = bad_events
        self._skipped = 0  # items of the list in progress replaced by _SKIPPED
        self._prepare = partial(item_function, transform=transform, on_error=self._skip_item)

    def _skip_item(self, obj: object, exc: Exception) -> Obj:
        """An item the preparation raised on: report it, keep a placeholder (dropped
        before the list is applied)."""
        self._skipped += 1
        if isinstance(obj, dict):
            self._bad_events.store_failed("list", obj, exc)
        else:
            self._bad_events.invalid_object("list", obj, exc)
        return _SKIPPED

    async def sync(self, rv: str) -> None:
        """List at ``rv`` (retrying once at ``""`` after a 410) and apply the result."""
        limit = self._page_size if (rv in ("", "0") or self._paginated_result) else None
        started = self._clock()
        self._log.info("list.started", rv=rv, limit=limit)
        try:
            items, list_rv, pages = await self._list_pages(rv, limit)
        except Exception as exc:
            if not is_rv_unavailable(exc):
                raise
            self._on_rv_unavailable(exc)
            failed_page = self._list_page
            self._log.info("list.expired", rv=rv, page=failed_page, **describe(exc))
            rv = ""
            items, list_rv, pages = await self._list_pages(rv, limit if failed_page <= 1 else None)
        if pages > 1 and rv == "0":
            self._paginated_result = True
        await self._apply(items, list_rv)
        self._log.info(
            "list.done",
            count=len(items),
            rv=list_rv,
            pages=pages,
            seconds=round(self._clock() - started, 3),
        )

    async def _list_pages(self, rv: str, limit: int | None) -> tuple[list[Obj], str, int]:
        self._stats.lists += 1
        self._skipped = 0
        items: list[Obj] = []
        token: str | None = None
        page = 0
        while True:
            page += 1
            self._list_page = page
            self._stats.list_pages += 1
            sent = self._clock()
            try:
                if self._itemwise is not None:
                    result = await self._itemwise.list_prepared(
                        resource_version=rv if token is None else None,
                        limit=limit,
                        continue_token=token,
                        prepare=self._prepare,
                    )
                else:
                    result = await self._lw.list(
                        resource_version=rv if token is None else None,
                        limit=limit,
                        continue_token=token,
                    )
            except ConnectionFailed:
                if self._stats.connecting_since is None:
                    self._stats.connecting_since = sent
                raise
            except ApiError:
                self._stats.connecting_since = None  # answered
                raise
            self._stats.connecting_since = None
            meta = result.get("metadata") or {}
            page_items: list[Obj] = result.get("items") or []
            if self._itemwise is None and (each := self._prepare(result)) is not None:
                page_items = [each(obj) for obj in page_items]
            if page == 1 and not meta.get("continue"):
                items = page_items  # the common single page: no copy
            else:
                items.extend(page_items)
            token = meta.get("continue") or None
            if token is None:
                list_rv = meta.get("resourceVersion")
                if not isinstance(list_rv, str) or not list_rv:
                    raise InformerError("list response carries no metadata.resourceVersion")
                if self._skipped:
                    items = [obj for obj in items if obj is not _SKIPPED]
                return items, list_rv, page
