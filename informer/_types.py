"""Shared type aliases.

Objects are the decoded JSON dicts exactly as the API server sent them (camelCase keys).
Nobody downstream of the decoder may mutate them: the store, every handler and every
lister share the same dict.
"""

from __future__ import annotations

from typing import Any, TypeAlias, TypedDict

__all__ = ["Obj", "WatchEvent"]

Obj: TypeAlias = dict[str, Any]


class WatchEvent(TypedDict):
    """One decoded watch line: ``type`` is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""

    type: str
    object: Obj
