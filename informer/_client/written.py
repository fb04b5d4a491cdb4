"""What a client last wrote to each object, so a write that would change nothing is not sent.

A desired object a reconcile builds rarely equals the object the server holds: it lacks
the fields the server defaults (a Deployment's ``strategy``, a container's
``imagePullPolicy``...), and a comparison on the client cannot tell a defaulted field from
one the caller removed (a key of a ConfigMap's ``data``, a label) without the resource's
schema. The server can: writing such an object changes nothing, and the answer keeps the
resourceVersion. :class:`WriteMemo` remembers, per object, what the last write of this
client meant and what it left:

- the **intent**: a digest of the object (or apply configuration) that was written, with
  the metadata the server owns left out (``resourceVersion``, ``managedFields``,
  ``generation``, ``uid``, ``creationTimestamp``, ``selfLink``) and ``status`` left out
  when it equals the live object's (the caller did not change it);
- the **state** the server answered: its resourceVersion, and a digest of the object
  without ``resourceVersion`` and ``managedFields``, and without ``status`` unless the
  intent holds one (so that a controller writing a Deployment's spec is not told apart
  by the status the deployment controller keeps updating).

:meth:`WriteMemo.unchanged` is true when the live object is in that state (the same
resourceVersion, or the same digest) and the new intent is the remembered one: the
server then holds exactly what writing it again would produce, so nothing needs to be
sent. That is sound whatever the server defaults, because the state *is* the server's
answer to that intent. A miss costs one write that the server may find a no-op (the
answer's resourceVersion then equals the live one); it is never a wrong answer.

The memo is bounded (:data:`MAX_OBJECTS`, least recently written first out); objects
whose dicts JSON cannot encode (a transform put something else in them) are never
remembered. Used from the client's event loop only.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

import orjson

from .._meta.objects import name_of, namespace_of, resource_version
from .._meta.resource import Resource
from .._meta.types import Obj

__all__ = [
    "MAX_OBJECTS",
    "WriteMemo",
    "Written",
    "apply_intent_digest",
    "intent_digest",
    "state_digest",
]

MAX_OBJECTS: Final = 16384
"""Objects a :class:`WriteMemo` remembers at most (each ~0.4 KB)."""

SERVER_OWNED: Final = frozenset(
    {"resourceVersion", "managedFields", "generation", "uid", "creationTimestamp", "selfLink"}
)
"""Metadata the server sets whatever a write says (left out of an intent)."""

_VOLATILE: Final = frozenset({"resourceVersion", "managedFields"})

_Key = tuple[str, str | None, str]


def _digest(obj: Obj) -> bytes | None:
    try:
        raw = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError: not a JSON object
        return None
    return hashlib.blake2b(raw, digest_size=16).digest()


def _without(obj: Obj, metadata: frozenset[str], *, status: bool) -> Obj:
    meta = obj.get("metadata")
    out = {k: v for k, v in obj.items() if status or k != "status"}
    if isinstance(meta, dict):
        out["metadata"] = {k: v for k, v in meta.items() if k not in metadata}
    return out


def intent_digest(desired: Obj, live: Obj | None) -> tuple[bytes | None, bool]:
    """The digest of what writing ``desired`` over ``live`` (``None``: a create) asks for,
    and whether that includes ``status`` (see the module docstring)."""
    keeps_status = "status" in desired and (live is None or desired["status"] != live.get("status"))
    return _digest(_without(desired, SERVER_OWNED, status=keeps_status)), keeps_status


def apply_intent_digest(
    config: Obj, *, field_manager: str, force: bool, subresource: str | None
) -> tuple[bytes | None, bool]:
    """The digest of a server-side apply of ``config`` (the apply configuration as
    given: it holds only what the manager owns) by ``field_manager``, and whether it
    concerns ``status``."""
    request = {
        "config": config,
        "fieldManager": field_manager,
        "force": force,
        "subresource": subresource or "",
    }
    return _digest(request), subresource == "status" or "status" in config


def state_digest(obj: Obj, *, with_status: bool) -> bytes | None:
    """The digest of ``obj`` as the server holds it, but its resourceVersion and
    managedFields (and ``status`` unless ``with_status``)."""
    return _digest(_without(obj, _VOLATILE, status=with_status))


@dataclass(frozen=True, slots=True)
class Written:
    """One remembered write: the intent's digest, whether it held ``status``, and the
    state the server answered (resourceVersion and digest)."""

    intent: bytes
    with_status: bool
    resource_version: str
    state: bytes | None


class WriteMemo:
    """The last write of one client to each object (see the module docstring)."""

    def __init__(self, max_objects: int = MAX_OBJECTS) -> None:
        self.max_objects = max_objects
        self._written: OrderedDict[_Key, Written] = OrderedDict()

    def __len__(self) -> int:
        return len(self._written)

    @staticmethod
    def _key(resource: Resource, obj: Obj) -> _Key:
        return (resource.group_resource, namespace_of(obj), name_of(obj))

    def remember(self, resource: Resource, answer: Obj, intent: tuple[bytes | None, bool]) -> None:
        """Remember that writing ``intent`` left the object as ``answer`` (the server's)."""
        digest, with_status = intent
        key = self._key(resource, answer)
        if digest is None:
            self._written.pop(key, None)
            return
        self._written[key] = Written(
            digest,
            with_status,
            resource_version(answer) or "",
            state_digest(answer, with_status=with_status),
        )
        self._written.move_to_end(key)
        while len(self._written) > self.max_objects:
            self._written.popitem(last=False)

    def last(self, resource: Resource, obj: Obj) -> Written | None:
        """The remembered write of the object named by ``obj``, or ``None``."""
        return self._written.get(self._key(resource, obj))

    def unchanged(self, resource: Resource, live: Obj, intent: tuple[bytes | None, bool]) -> bool:
        """Whether writing ``intent`` over ``live`` would change nothing: ``live`` is in
        the state this client's last write of that same intent left it in."""
        written = self.last(resource, live)
        if written is None or intent[0] is None or written.intent != intent[0]:
            return False
        rv = resource_version(live)
        if rv and rv == written.resource_version:
            return True
        state = state_digest(live, with_status=written.with_status)
        return state is not None and state == written.state
