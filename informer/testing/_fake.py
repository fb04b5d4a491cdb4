"""``FakeListerWatcher``: an in-memory API server for one resource, with fault injection.

It implements the :class:`~informer._cache.listwatch.ListerWatcher` protocol (and its contract:
pages are decoded List objects, watches are async context managers yielding decoded
events, failures are raised as the ``informer._exceptions`` tree) so the Reflector can be
driven through edge cases a real server will not produce on demand.

Model
-----
- Objects are kept by key (``"ns/name"``, or ``"name"`` when cluster-scoped) under a global
  resourceVersion counter. It starts at 1 (an empty collection lists at RV ``"1"``); every
  :meth:`~FakeListerWatcher.create`, :meth:`~FakeListerWatcher.modify` and
  :meth:`~FakeListerWatcher.delete` bumps it, stamps the new RV (a string of an int) into
  a copy of the object's ``metadata`` and pushes the event to every open watch. A
  ``DELETED`` event carries the last state stamped with the deletion's RV, as the API
  server does. The stored dicts are handed out as they are: callers must not mutate them.
- :meth:`~FakeListerWatcher.advance_resource_version` bumps the RV with no event, as
  writes to other resources do (etcd's revision is global): bookmarks can then carry an
  RV no object has.
- Every event is kept in a history. :meth:`~FakeListerWatcher.compact` drops the history
  up to a point; afterwards a watch from an older RV, a ``resourceVersionMatch=Exact``
  list at an older RV, and a continue token minted before that point fail with
  :class:`~informer.ResourceExpired` (410), like etcd compaction.

``list`` semantics (a subset of the API server's)
-------------------------------------------------
- ``resource_version`` ``None``/``""``: a consistent read of the current state;
  ``"0"``: any state (here: the current one; with ``watch_cache=True`` the limit is
  ignored and the whole collection comes back in one page, as the watch cache does);
  ``"N"``: not older than N (the current state; N above the current RV fails with the
  server's "Too large resource version" 504); with ``resource_version_match="Exact"``
  the state at exactly N (410 when N is compacted).
- ``limit``/``continue_token``: real pagination over the key-sorted snapshot; the token
  pins the snapshot's RV (and expires when compacted). Passing a non-empty
  ``resource_version`` together with a token is a 400, as on a real server.

``watch`` semantics
-------------------
- ``resource_version`` ``"N"``: replays the history after N, then live events. N older
  than the compaction point: 410 raised at open (``expired_watch="raise"``, what
  ``ApiListerWatcher`` does for an HTTP 410) or an ``ERROR`` event with a 410 Status as
  the stream's first event (``expired_watch="event"``, what a real kube-apiserver does).
- ``resource_version`` ``None``/``""``/``"0"``: synthetic ``ADDED`` events for the current
  state, then live events (the legacy "get state and start at most recent").
- ``send_initial_events=True`` (watch-list) with ``supports_watch_list=True``: requires
  ``resource_version_match="NotOlderThan"`` and bookmarks (else 422 Invalid); sends
  ``ADDED`` for the current state, then a ``BOOKMARK`` at the current RV annotated
  ``k8s.io/initial-events-end: "true"``, then live events. With
  ``supports_watch_list=False`` the request is rejected with 400 BadRequest
  (``unsupported_watch_list="reject"``) or the two parameters are silently ignored and
  the watch behaves as a plain one (``"ignore"``, an old server).
- ``timeout_seconds`` is recorded, not enforced (tests close watches explicitly).

Fault injection
---------------
- :meth:`~FakeListerWatcher.fail_next_list` / :meth:`~FakeListerWatcher.fail_next_watch`:
  scripted exceptions for the next list call of a given page, or the next watch open.
- Into every open watch: :meth:`~FakeListerWatcher.push_error` (an ``ERROR`` event with
  a Status), :meth:`~FakeListerWatcher.push_malformed` (the iterator raises
  :class:`~informer.WatchDecodeError`), :meth:`~FakeListerWatcher.push_exception`,
  :meth:`~FakeListerWatcher.push_unknown`, :meth:`~FakeListerWatcher.push_bookmark`,
  :meth:`~FakeListerWatcher.push_event` (anything raw),
  :meth:`~FakeListerWatcher.close_watches` (a clean end of stream) and
  :meth:`~FakeListerWatcher.stall_watches` (from now on the watch yields nothing, not
  even a close: a half-open connection).

Observation
-----------
``calls`` records every list and watch call (:class:`FakeCall`), failed ones included.
Tests await conditions instead of sleeping: :meth:`~FakeListerWatcher.wait_until`,
:meth:`~FakeListerWatcher.wait_for_watchers`, :meth:`~FakeListerWatcher.wait_for_calls`.

Everything runs on the caller's event loop; mutations never await, so no locks are
needed. Open watches' queues: ``_fake_watch.py``; Status bodies, tokens: ``_fake_wire.py``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, cast

import anyio
import anyio.lowlevel

from .._exceptions import BadRequest, ResourceExpired, WatchDecodeError
from .._meta.types import Obj, WatchEvent
from ._fake_watch import CLOSE, FakeWatch, Item, Notifier, Raise, WatchContext, bookmark
from ._fake_wire import (
    decode_token,
    encode_token,
    invalid,
    object_key,
    parse_rv,
    stamp,
    status,
    too_large,
)

__all__ = ["FakeCall", "FakeListerWatcher"]


@dataclass(frozen=True, slots=True)
class FakeCall:
    """One ``list`` or ``watch`` call as the fake received it.

    ``params`` holds the keyword arguments exactly as passed (``resource_version``,
    ``limit``, ``continue_token``, ``timeout_seconds``, ``send_initial_events``...).
    """

    verb: Literal["list", "watch"]
    params: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.params[name]


@dataclass(slots=True)
class _ListFault:
    exc: BaseException
    page: int
    times: int


class FakeListerWatcher:
    """An in-memory ListerWatcher for one resource (see the module docstring).

    :param objects: objects created in order before anything else (each bumps the RV).
    :param supports_watch_list: whether ``send_initial_events=True`` is served.
    :param unsupported_watch_list: when not supported, ``"reject"`` (400 BadRequest at
        open) or ``"ignore"`` (the parameters are ignored, as by an old server).
    :param watch_cache: simulate the watch cache: a list at ``resource_version="0"``
        ignores ``limit`` and returns everything in one page.
    :param expired_watch: how a watch from a compacted RV fails: ``"raise"`` (410 at open)
        or ``"event"`` (an ``ERROR`` event with a 410 Status, then the stream ends).

    The three toggles are plain attributes and may be changed between calls.
    """

    def __init__(
        self,
        objects: Iterable[Obj] = (),
        *,
        supports_watch_list: bool = True,
        unsupported_watch_list: Literal["reject", "ignore"] = "reject",
        watch_cache: bool = False,
        expired_watch: Literal["raise", "event"] = "raise",
    ) -> None:
        self.supports_watch_list = supports_watch_list
        self.unsupported_watch_list: Literal["reject", "ignore"] = unsupported_watch_list
        self.watch_cache = watch_cache
        self.expired_watch: Literal["raise", "event"] = expired_watch
        self.calls: list[FakeCall] = []
        self.watch_opens = 0
        """Watches successfully opened so far."""
        self.events_delivered = 0
        """Events (not control items) handed out by all watch iterators so far."""
        self._rv = 1
        self._objects: dict[str, Obj] = {}
        self._history: list[tuple[int, str, str, Obj]] = []  # (rv, type, key, object)
        self._compacted_rv = 0
        self._base: dict[str, Obj] = {}  # the state at _compacted_rv
        self._watches: list[FakeWatch] = []
        self._list_faults: deque[_ListFault] = deque()
        self._watch_faults: deque[BaseException] = deque()
        self._notifier = Notifier()
        for obj in objects:
            self.create(obj)

    # ------------------------------------------------------------------ state
    @property
    def resource_version(self) -> str:
        """The current (latest) resourceVersion."""
        return str(self._rv)

    @property
    def compacted_resource_version(self) -> str:
        return str(self._compacted_rv)

    @property
    def objects(self) -> dict[str, Obj]:
        """A snapshot of the current objects by key."""
        return dict(self._objects)

    @property
    def open_watchers(self) -> int:
        """Watches currently open (entered and not yet exited)."""
        return len(self._watches)

    def list_calls(self) -> list[Mapping[str, Any]]:
        return [c.params for c in self.calls if c.verb == "list"]

    def watch_calls(self) -> list[Mapping[str, Any]]:
        return [c.params for c in self.calls if c.verb == "watch"]

    # -------------------------------------------------------------- mutations
    def create(self, obj: Obj) -> Obj:
        """Store a new object (KeyError if its key exists); push ``ADDED``."""
        key = object_key(obj)
        if key in self._objects:
            raise KeyError(f"{key} already exists")
        return self._record("ADDED", key, obj)

    def modify(self, obj: Obj) -> Obj:
        """Replace an existing object (KeyError if absent); push ``MODIFIED``."""
        key = object_key(obj)
        if key not in self._objects:
            raise KeyError(f"{key} does not exist")
        return self._record("MODIFIED", key, obj)

    def delete(self, key_or_obj: str | Obj) -> Obj:
        """Remove an object (KeyError if absent); push ``DELETED`` with its last state."""
        key = key_or_obj if isinstance(key_or_obj, str) else object_key(key_or_obj)
        if key not in self._objects:
            raise KeyError(f"{key} does not exist")
        return self._record("DELETED", key, self._objects[key])

    def _record(self, type_: str, key: str, obj: Obj) -> Obj:
        self._rv += 1
        stored = stamp(obj, self._rv)
        if type_ == "DELETED":
            del self._objects[key]
        else:
            self._objects[key] = stored
        self._history.append((self._rv, type_, key, stored))
        event: WatchEvent = {"type": type_, "object": stored}
        for w in self._watches:
            w.put(event)
        self._notifier.notify()
        return stored

    def advance_resource_version(self, n: int = 1) -> str:
        """Bump the RV without an event for this resource (as writes to other resources
        do: etcd's revision is global). Returns the new RV."""
        self._rv += n
        self._notifier.notify()
        return str(self._rv)

    def compact(self, resource_version: str | int | None = None) -> None:
        """Forget the history up to ``resource_version`` (default: the current RV)."""
        rv = self._rv if resource_version is None else int(resource_version)
        if rv <= self._compacted_rv:
            return
        self._base = self._state_at(rv)
        self._history = [h for h in self._history if h[0] > rv]
        self._compacted_rv = rv

    def _state_at(self, rv: int) -> dict[str, Obj]:
        state = dict(self._base)
        for h_rv, type_, key, obj in self._history:
            if h_rv > rv:
                break
            if type_ == "DELETED":
                state.pop(key, None)
            else:
                state[key] = obj
        return state

    # ------------------------------------------------------- fault injection
    def fail_next_list(self, exc: BaseException, *, page: int = 1, times: int = 1) -> None:
        """The next ``times`` list calls for page ``page`` raise ``exc`` (FIFO with others).

        Page 1 is a call without a continue token; page N the call carrying the token
        minted by page N-1.
        """
        self._list_faults.append(_ListFault(exc, page, times))

    def fail_next_watch(self, exc: BaseException, *, times: int = 1) -> None:
        """The next ``times`` watch opens raise ``exc``."""
        self._watch_faults.extend([exc] * times)

    def push_event(self, event: WatchEvent | Mapping[str, Any]) -> None:
        """Deliver a raw event, as is, to every open watch."""
        self._push(cast(WatchEvent, dict(event)))

    def push_error(self, code: int, reason: str = "", message: str = "") -> None:
        """Deliver an ``ERROR`` event whose object is a failure Status."""
        msg = message or f"injected error {code}" + (f" ({reason})" if reason else "")
        self._push({"type": "ERROR", "object": status(code, reason, msg)})

    def push_malformed(self, line: bytes = b'{"type": "MODIFIED", "object": {') -> None:
        """The open watches' iterators raise :class:`WatchDecodeError` for ``line``."""
        self._push(Raise(WatchDecodeError("malformed watch line", line=line)))

    def push_exception(self, exc: BaseException) -> None:
        """The open watches' iterators raise ``exc`` (e.g. ConnectionFailed mid-stream)."""
        self._push(Raise(exc))

    def push_unknown(self, type_: str = "SURPRISE", obj: Obj | None = None) -> None:
        """Deliver an event of an unknown type."""
        if obj is None:
            obj = {"metadata": {"name": "x", "resourceVersion": str(self._rv)}}
        self._push({"type": type_, "object": obj})

    def push_bookmark(
        self, resource_version: str | int | None = None, *, initial_events_end: bool = False
    ) -> None:
        """Deliver a ``BOOKMARK`` (default: at the current RV), optionally annotated as
        the end of the initial events."""
        rv = str(self._rv if resource_version is None else resource_version)
        self._push(bookmark(rv, initial_events_end))

    def close_watches(self) -> None:
        """End every open watch cleanly (the iterators stop after what is queued)."""
        self._push(CLOSE)

    def stall_watches(self) -> None:
        """From now on the open watches yield nothing, not even a close."""
        for w in self._watches:
            w.stalled = True

    def _push(self, item: Item) -> None:
        for w in self._watches:
            w.put(item)

    # ----------------------------------------------------------- conditions
    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true; it is re-checked on every change of the
        fake (a call, a watch opened or closed, a mutation, an event handed out)."""
        await self._notifier.wait_until(predicate)

    async def wait_for_watchers(self, n: int) -> None:
        """Return once exactly ``n`` watches are open."""
        await self.wait_until(lambda: len(self._watches) == n)

    async def wait_for_calls(self, verb: Literal["list", "watch"], n: int) -> None:
        """Return once at least ``n`` calls of ``verb`` were received."""
        await self.wait_until(lambda: sum(1 for c in self.calls if c.verb == verb) >= n)

    async def wait_for_watch_opens(self, n: int) -> None:
        """Return once at least ``n`` watches were successfully opened in total."""
        await self.wait_until(lambda: self.watch_opens >= n)

    # ------------------------------------------------------- ListerWatcher
    async def list(
        self,
        *,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        params = {
            "resource_version": resource_version,
            "resource_version_match": resource_version_match,
            "limit": limit,
            "continue_token": continue_token,
        }
        self.calls.append(FakeCall("list", params))
        self._notifier.notify()
        await anyio.lowlevel.checkpoint()

        page = 1
        offset = 0
        if continue_token:
            if resource_version:
                raise BadRequest(
                    "specifying resource version is not allowed when using continue",
                    reason="BadRequest",
                )
            snap_rv, offset, page = decode_token(continue_token)
        self._check_list_fault(page)

        if continue_token:
            if snap_rv < self._compacted_rv:
                raise ResourceExpired(
                    "The provided continue parameter is too old to display a consistent "
                    "list result.",
                    reason="Expired",
                )
            state = self._state_at(snap_rv) if snap_rv != self._rv else self._objects
        else:
            snap_rv, state = self._snapshot_for_list(resource_version, resource_version_match)
            if resource_version == "0" and self.watch_cache:
                limit = None

        keys = sorted(state)
        end = len(keys) if not limit else min(len(keys), offset + limit)
        items = [state[k] for k in keys[offset:end]]
        meta: Obj = {"resourceVersion": str(snap_rv)}
        if end < len(keys):
            meta["continue"] = encode_token(snap_rv, end, page + 1)
            meta["remainingItemCount"] = len(keys) - end
        return {"kind": "List", "apiVersion": "v1", "metadata": meta, "items": items}

    def watch(
        self,
        *,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        allow_watch_bookmarks: bool = True,
        send_initial_events: bool = False,
        resource_version_match: str | None = None,
    ) -> AbstractAsyncContextManager[AsyncIterator[WatchEvent]]:
        params = {
            "resource_version": resource_version,
            "timeout_seconds": timeout_seconds,
            "allow_watch_bookmarks": allow_watch_bookmarks,
            "send_initial_events": send_initial_events,
            "resource_version_match": resource_version_match,
        }
        return WatchContext(lambda: self._open_watch(params), self._close_watch)

    # -------------------------------------------------------------- helpers
    def _check_list_fault(self, page: int) -> None:
        if self._list_faults and self._list_faults[0].page == page:
            fault = self._list_faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self._list_faults.popleft()
            raise fault.exc

    def _snapshot_for_list(self, rv: str | None, match: str | None) -> tuple[int, dict[str, Obj]]:
        if not rv or rv == "0":
            if match == "Exact":
                raise invalid("resourceVersionMatch=Exact requires a resourceVersion")
            return self._rv, self._objects
        requested = parse_rv(rv)
        if requested > self._rv:
            raise too_large(requested, self._rv)
        if match == "Exact":
            if requested < self._compacted_rv:
                raise ResourceExpired(
                    f"too old resource version: {requested} ({self._compacted_rv})",
                    reason="Expired",
                )
            return requested, self._state_at(requested)
        return self._rv, self._objects

    def _open_watch(self, params: dict[str, Any]) -> FakeWatch:
        """Validate, apply scripted faults and register a watch; never awaits, so no event
        can slip between the snapshot and the registration."""
        self.calls.append(FakeCall("watch", params))
        self._notifier.notify()
        if self._watch_faults:
            raise self._watch_faults.popleft()

        rv: str | None = params["resource_version"]
        send_initial = bool(params["send_initial_events"])
        match: str | None = params["resource_version_match"]
        if send_initial and not self.supports_watch_list:
            if self.unsupported_watch_list == "reject":
                raise BadRequest(
                    "sendInitialEvents is not supported by this server", reason="BadRequest"
                )
            send_initial, match = False, None
        if send_initial:
            if match != "NotOlderThan":
                raise invalid("sendInitialEvents requires resourceVersionMatch=NotOlderThan")
            if not params["allow_watch_bookmarks"]:
                raise invalid("sendInitialEvents requires allowWatchBookmarks=true")
        elif match:
            raise invalid("resourceVersionMatch is forbidden for watch unless sendInitialEvents")

        initial: list[Item] = []
        if send_initial or not rv or rv == "0":
            if rv and rv != "0" and parse_rv(rv) > self._rv:
                raise too_large(parse_rv(rv), self._rv)
            initial.extend(
                {"type": "ADDED", "object": self._objects[k]} for k in sorted(self._objects)
            )
            if send_initial:
                initial.append(bookmark(str(self._rv), True))
        else:
            start = parse_rv(rv)
            if start > self._rv:
                raise too_large(start, self._rv)
            if start < self._compacted_rv:
                message = f"too old resource version: {start} ({self._compacted_rv})"
                if self.expired_watch == "raise":
                    raise ResourceExpired(message, reason="Expired")
                initial.append({"type": "ERROR", "object": status(410, "Expired", message)})
                initial.append(CLOSE)
            else:
                initial.extend(
                    {"type": type_, "object": obj}
                    for h_rv, type_, _key, obj in self._history
                    if h_rv > start
                )
        # Created only now that nothing can fail: streams are never left unclosed.
        w = FakeWatch(params, self._delivered)
        for item in initial:
            w.put(item)
        self._watches.append(w)
        self.watch_opens += 1
        self._notifier.notify()
        return w

    def _delivered(self) -> None:
        self.events_delivered += 1
        self._notifier.notify()

    def _close_watch(self, w: FakeWatch) -> None:
        w.shut()
        if w in self._watches:
            self._watches.remove(w)
        self._notifier.notify()
