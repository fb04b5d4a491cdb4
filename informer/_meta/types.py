"""Shared type aliases.

Objects are the decoded JSON dicts exactly as the API server sent them (camelCase keys).
Nobody downstream of the decoder may mutate them: the store, every handler and every
lister share the same dict.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias, TypedDict, runtime_checkable

__all__ = ["LeaderStatus", "Obj", "WatchEvent"]

Obj: TypeAlias = dict[str, Any]


class WatchEvent(TypedDict):
    """One decoded watch line: ``type`` is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""

    type: str
    object: Obj


@runtime_checkable
class LeaderStatus(Protocol):
    """What metrics and health need from a leader elector (``LeaderElector`` has it).

    ``name`` identifies the lease (the ``name`` label of
    ``leader_election_master_status``); ``is_leader()`` must be cheap and never block.
    """

    @property
    def name(self) -> str: ...

    def is_leader(self) -> bool: ...
