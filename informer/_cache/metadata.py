"""Metadata-only lists and watches: ``PartialObjectMetadata`` instead of whole objects.

What :class:`~informer.ApiListerWatcher` does with ``metadata_only=True`` (and through it
``SharedInformerFactory.informer_for(resource, metadata_only=True)``), as client-go's
metadata client and metadatainformer and controller-runtime's ``WatchesMetadata``:

- **Negotiation.** Lists send ``Accept:`` :data:`LIST_ACCEPT` and watches (watch-list
  included) :data:`WATCH_ACCEPT`, the JSON forms of the media types of client-go's
  metadata client (k8s.io/client-go ``metadata/metadata.go``: ``List`` and ``Watch`` set
  ``application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,
  application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json``
  and the same with ``as=PartialObjectMetadata`` for watches; we ask for no protobuf).
  The API server then sends ``PartialObjectMetadataList`` pages and watch events whose
  objects are ``{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
  "metadata": {...}}``: the whole ``metadata`` (labels, annotations, owner references,
  finalizers, managedFields...), nothing else.
- **Fallback.** A server that cannot convert (an aggregated API server, a very old one)
  takes the trailing plain ``application/json`` and sends whole objects; a server that
  refuses the media types outright answers 406, after which the lister-watcher asks for
  plain ``application/json`` for the rest of its life (logged once,
  ``metadata.refused``). Either way every object is cut down here, on receipt, to
  ``apiVersion``, ``kind`` and ``metadata``, as client-go decodes a response it did not
  ask for into ``PartialObjectMetadata(List)``: the cache has the same shape whatever the
  server did (only the bytes on the wire differ).
- **The objects cached** are ``{"apiVersion": <the resource's>, "kind": <the resource's
  kind>, "metadata": {...}}``: the real GroupVersionKind, not ``meta.k8s.io/v1
  PartialObjectMetadata``. This is what controller-runtime's metadata informers cache
  (its ``newGVKFixupWatcher`` and list function set each object's GVK to the watched
  kind's), so mappers keyed on ``kind`` (owner references, the Client's
  apiVersion/kind -> resource discovery, logs) see a Deployment as a Deployment. Hence
  ``metadata_only`` needs ``Resource.kind``. A metadata-only object is told apart from a
  whole one by where it came from (its informer, keyed apart in the factory), not by its
  shape: it simply has no ``spec``/``data``/``status``. ``BOOKMARK`` and ``ERROR``
  events are left as the server sent them.

The conversion runs in the lister-watcher, before the Reflector, so the informer's
transform (e.g. ``strip_managed_fields``) sees metadata-only objects, and the Reflector,
the DeltaFIFO, the store, listers, indexers and controllers work unchanged. Objects
converted in place keep the server's ``metadata`` dict; the two GVK strings are shared by
every object of the lister-watcher.
"""

from __future__ import annotations

from typing import Final

import structlog

from .._meta.resource import Resource
from .._meta.types import Obj, WatchEvent
from .list_decode import ItemFunc, Prepare
from .watch_decode import WatchEventStream

__all__ = ["LIST_ACCEPT", "PLAIN_JSON", "WATCH_ACCEPT", "MetadataEvents", "MetadataShape"]

log = structlog.get_logger(__name__)

LIST_ACCEPT: Final = (
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)
"""``Accept`` of a metadata-only list (client-go's, without its protobuf alternative)."""

WATCH_ACCEPT: Final = (
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
)
"""``Accept`` of a metadata-only watch (client-go's, without its protobuf alternative)."""

PLAIN_JSON: Final = "application/json"
"""``Accept`` once the server refused the metadata media types (406)."""

_PARTIAL: Final = "PartialObjectMetadata"
_PARTIAL_LIST: Final = "PartialObjectMetadataList"
_OBJECT_EVENTS: Final = frozenset({"ADDED", "MODIFIED", "DELETED"})


class MetadataShape:
    """Turns what the server sent into the metadata-only objects of one resource.

    Mutates the list items and events it is given (they are fresh from the decoder and
    owned by the caller, see :mod:`informer._cache.listwatch`); objects that are not
    ``PartialObjectMetadata`` are replaced by new ``{apiVersion, kind, metadata}`` dicts.
    ``refused`` is set by the lister-watcher once the server answered 406.
    """

    __slots__ = ("_fallback_logged", "api_version", "kind", "refused", "resource")

    def __init__(self, resource: Resource) -> None:
        if not resource.kind:
            raise ValueError(
                f"metadata_only needs the kind of {resource.group_resource}: metadata-only "
                "objects carry the real apiVersion/kind; give Resource(..., kind=...)"
            )
        self.resource = resource
        self.api_version = resource.api_version  # computed once: shared by every object
        self.kind = resource.kind
        self.refused = False
        self._fallback_logged = False

    def list_accept(self) -> str:
        return PLAIN_JSON if self.refused else LIST_ACCEPT

    def watch_accept(self) -> str:
        return PLAIN_JSON if self.refused else WATCH_ACCEPT

    def refuse(self, reason: str) -> None:
        """The server answered 406 to the metadata media types: plain JSON from now on."""
        if not self.refused:
            self.refused = True
            log.info(
                "metadata.refused",
                resource=self.resource.group_resource,
                reason=reason,
                detail="metadata-only objects are now cut down from whole ones, client-side",
            )

    def prepare(self, then: Prepare | None) -> Prepare:
        """The :data:`~informer._cache.list_decode.Prepare` of a list page: each item
        becomes metadata-only (in place), then goes through ``then``'s function."""

        def prepare(page: Obj) -> ItemFunc:
            cut = self._item_function(page)
            each = then(page) if then is not None else None
            if each is None:
                return cut
            return lambda obj: each(cut(obj))

        return prepare

    def _item_function(self, page: Obj) -> ItemFunc:
        api_version, kind = self.api_version, self.kind
        if page.get("kind") == _PARTIAL_LIST:

            def partial(obj: Obj) -> Obj:
                if type(obj) is not dict:
                    return obj  # not an object: left for the Reflector to report
                obj["apiVersion"] = api_version
                obj["kind"] = kind
                return obj

            return partial
        list_kind = str(page.get("kind"))

        def whole(obj: Obj) -> Obj:
            self._whole_objects(list_kind)
            return self._cut(obj)

        return whole

    def event(self, event: WatchEvent) -> WatchEvent:
        """The event with a metadata-only object (in place); returns ``event``."""
        if event["type"] not in _OBJECT_EVENTS:
            return event
        obj = event["object"]
        if type(obj) is not dict:
            return event  # malformed: the Reflector reports it
        if obj.get("kind") == _PARTIAL:
            obj["apiVersion"] = self.api_version
            obj["kind"] = self.kind
        else:
            self._whole_objects(str(obj.get("kind")))
            event["object"] = self._cut(obj)
        return event

    def _cut(self, obj: Obj) -> Obj:
        meta = obj.get("metadata") if type(obj) is dict else None
        if meta is None:
            return obj  # not an object: left for the Reflector to report
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": meta}

    def _whole_objects(self, kind: str) -> None:
        if not self._fallback_logged:
            self._fallback_logged = True
            log.info(
                "metadata.fallback",
                resource=self.resource.group_resource,
                received=kind,
                detail="the server sent whole objects; they are cut down to metadata",
            )


class MetadataEvents:
    """The events of one watch, each passed through :meth:`MetadataShape.event`."""

    __slots__ = ("_events", "_shape")

    def __init__(self, events: WatchEventStream, shape: MetadataShape) -> None:
        self._events = events
        self._shape = shape

    def __aiter__(self) -> MetadataEvents:
        return self

    async def __anext__(self) -> WatchEvent:
        return self._shape.event(await self._events.__anext__())

    async def next_batch(self) -> list[WatchEvent]:
        """:meth:`WatchEventStream.next_batch`, each event cut down as by ``__anext__``."""
        event = self._shape.event
        return [event(e) for e in await self._events.next_batch()]
