"""Transforms: functions run once on each object received, before it is stored.

Contract of a :data:`TransformFunc` (an informer's ``transform``):

- It runs exactly once per object *received from the API server* — each item of a list
  (every relist included), each watch event's object, each watch-list initial object —
  in the Reflector, before the object reaches the DeltaFIFO. It never runs on objects
  that come from the store (resync) nor on deletion tombstones.
- It may mutate the object it is given (nobody else holds it yet) and return it, or
  return a new dict. It must not change ``metadata.name`` or ``metadata.namespace`` (the
  object's key) nor ``metadata.resourceVersion``.
- It should be idempotent: an object may reach it again in a later arrival (a relist of
  an unchanged object is a new dict with the same content).
- An exception fails that arrival: a list or watch-list sync fails and is retried after a
  backoff; a watch event is logged (``store.failed``) and skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from .._meta.types import Obj

__all__ = ["TransformFunc", "strip_managed_fields"]

TransformFunc: TypeAlias = Callable[[Obj], Obj]
"""Object as received -> object to cache (see the module docstring)."""


def strip_managed_fields(obj: Obj) -> Obj:
    """Drop ``metadata.managedFields`` (~30% of a Deployment's cached memory)."""
    metadata = obj.get("metadata")
    if metadata is not None and "managedFields" in metadata:
        del metadata["managedFields"]
    return obj
