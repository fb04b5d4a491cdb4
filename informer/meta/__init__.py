"""Pure operations on object dicts, as apimachinery's ``meta`` and controller-runtime's
``controllerutil``: accessors and keys, tombstones, label selectors, status conditions,
owner references and finalizers. Nothing here calls the API server.

The everyday names are also exported by :mod:`informer`.
"""

from __future__ import annotations

from .._exceptions import AlreadyOwnedError as AlreadyOwnedError
from .._exceptions import ObjectKeyError as ObjectKeyError
from .._meta.conditions import get_condition as get_condition
from .._meta.conditions import is_condition_true as is_condition_true
from .._meta.conditions import set_condition as set_condition
from .._meta.finalizers import has_finalizer as has_finalizer
from .._meta.finalizers import is_being_deleted as is_being_deleted
from .._meta.labels import format_label_selector as format_label_selector
from .._meta.labels import parse_label_selector as parse_label_selector
from .._meta.objects import DeletedFinalStateUnknown as DeletedFinalStateUnknown
from .._meta.objects import annotations_of as annotations_of
from .._meta.objects import controller_of as controller_of
from .._meta.objects import labels_of as labels_of
from .._meta.objects import meta_namespace_key as meta_namespace_key
from .._meta.objects import name_of as name_of
from .._meta.objects import namespace_of as namespace_of
from .._meta.objects import owner_references as owner_references
from .._meta.objects import resource_version as resource_version
from .._meta.objects import split_meta_namespace_key as split_meta_namespace_key
from .._meta.objects import uid_of as uid_of
from .._meta.objects import unwrap_tombstone as unwrap_tombstone
from .._meta.ownerrefs import set_controller_reference as set_controller_reference
from .._meta.ownerrefs import set_owner_reference as set_owner_reference
from .._meta.types import Obj as Obj
from .._meta.types import WatchEvent as WatchEvent

__all__ = [
    "AlreadyOwnedError",
    "DeletedFinalStateUnknown",
    "Obj",
    "ObjectKeyError",
    "WatchEvent",
    "annotations_of",
    "controller_of",
    "format_label_selector",
    "get_condition",
    "has_finalizer",
    "is_being_deleted",
    "is_condition_true",
    "labels_of",
    "meta_namespace_key",
    "name_of",
    "namespace_of",
    "owner_references",
    "parse_label_selector",
    "resource_version",
    "set_condition",
    "set_controller_reference",
    "set_owner_reference",
    "split_meta_namespace_key",
    "uid_of",
    "unwrap_tombstone",
]
