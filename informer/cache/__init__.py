"""The informer machinery, as client-go's ``tools/cache``: ListerWatcher, Reflector,
DeltaFIFO, the indexed store, shared informers and their handlers, listers, and the
transforms applied to objects before they are cached.

The everyday names (:class:`SharedInformerFactory`, :class:`SharedIndexInformer`,
:class:`Lister`, the handlers) are also exported by :mod:`informer`.
"""

from __future__ import annotations

from .._cache.delta_fifo import Delta as Delta
from .._cache.delta_fifo import DeltaFIFO as DeltaFIFO
from .._cache.delta_fifo import DeltaType as DeltaType
from .._cache.factory import SharedInformerFactory as SharedInformerFactory
from .._cache.handlers import EventHandler as EventHandler
from .._cache.handlers import FilteringHandler as FilteringHandler
from .._cache.handlers import HandlerFuncs as HandlerFuncs
from .._cache.informer import SharedIndexInformer as SharedIndexInformer
from .._cache.lister import Lister as Lister
from .._cache.listwatch import ApiListerWatcher as ApiListerWatcher
from .._cache.listwatch import ListerWatcher as ListerWatcher
from .._cache.reflector import Reflector as Reflector
from .._cache.reflector_stats import ReflectorStats as ReflectorStats
from .._cache.store import NAMESPACE_INDEX as NAMESPACE_INDEX
from .._cache.store import Indexer as Indexer
from .._cache.store import IndexFunc as IndexFunc
from .._cache.store import namespace_index as namespace_index
from .._cache.strings import share_strings as share_strings
from .._cache.transforms import strip_managed_fields as strip_managed_fields
from .._exceptions import FIFOClosedError as FIFOClosedError
from .._exceptions import WatchDecodeError as WatchDecodeError
from .._exceptions import WatchEventTooLarge as WatchEventTooLarge
from .._meta.objects import DeletedFinalStateUnknown as DeletedFinalStateUnknown
from .._meta.types import WatchEvent as WatchEvent

__all__ = [
    "NAMESPACE_INDEX",
    "ApiListerWatcher",
    "DeletedFinalStateUnknown",
    "Delta",
    "DeltaFIFO",
    "DeltaType",
    "EventHandler",
    "FIFOClosedError",
    "FilteringHandler",
    "HandlerFuncs",
    "IndexFunc",
    "Indexer",
    "Lister",
    "ListerWatcher",
    "Reflector",
    "ReflectorStats",
    "SharedIndexInformer",
    "SharedInformerFactory",
    "WatchDecodeError",
    "WatchEvent",
    "WatchEventTooLarge",
    "namespace_index",
    "share_strings",
    "strip_managed_fields",
]
