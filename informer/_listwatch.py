"""The ``ListerWatcher`` seam between the Reflector and an API server.

A ListerWatcher lists one resource (one page at a time) and opens watches on it. The
Reflector is its only caller. Implementations: :class:`ApiListerWatcher` (the real API
server through ``informer._kube``) and ``informer.testing.FakeListerWatcher``.

Contract shared by every implementation:

- ``list`` returns the decoded List object as the server sent it: ``{"metadata":
  {"resourceVersion": ..., "continue": ...}, "items": [...]}``. The caller takes
  ownership of it and of its items; nobody may mutate them afterwards.
- ``watch`` is an async context manager yielding an async iterator of decoded events
  (``{"type": ..., "object": {...}}``). Leaving the context closes the connection. The
  iterator ends when the server ends the watch normally (e.g. ``timeoutSeconds``).
- Failures are raised as the error tree of ``informer._exceptions``: an HTTP failure
  as the matching :class:`~informer.ApiError` subclass (410 -> ``ResourceExpired``), an
  unreachable server as ``ConnectionFailed``, an undecodable line as
  ``WatchDecodeError``. ``ERROR`` events are yielded as they are; the Reflector maps
  them with ``api_error_from_status``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from ._types import Obj, WatchEvent

__all__ = ["ListerWatcher"]


@runtime_checkable
class ListerWatcher(Protocol):
    """Lists and watches one resource, with the scope and selectors fixed at construction."""

    async def list(
        self,
        *,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        """One page of the List (see the module docstring for the shape)."""
        ...

    def watch(
        self,
        *,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        allow_watch_bookmarks: bool = True,
        send_initial_events: bool = False,
        resource_version_match: str | None = None,
    ) -> AbstractAsyncContextManager[AsyncIterator[WatchEvent]]:
        """Open a watch; the context yields the event iterator."""
        ...
