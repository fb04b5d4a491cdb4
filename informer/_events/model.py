"""The Event the recorder writes: object references, names, times and argument checks.

Pure and synchronous. The limits are the API server's validation of events.k8s.io/v1
Events (``pkg/apis/core/validation/events.go``): ``reportingController`` a qualified name,
``reportingInstance``, ``action`` and ``reason`` at most 128 characters, ``note`` at most
1 KiB, ``type`` ``Normal`` or ``Warning``, the object name a DNS subdomain. Checking them
here turns what would be a 422 in the background into a message naming the argument.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from .._meta.types import Obj

__all__ = [
    "ACTION_MAX",
    "EVENT_TYPES",
    "INSTANCE_MAX",
    "NOTE_MAX_BYTES",
    "REASON_MAX",
    "check_arguments",
    "check_component",
    "default_instance",
    "event_name",
    "micro_time",
    "new_event",
    "object_reference",
    "reference_identity",
    "seconds_time",
    "truncate_note",
]

EVENT_TYPES: Final = ("Normal", "Warning")
REASON_MAX: Final = 128
ACTION_MAX: Final = 128
INSTANCE_MAX: Final = 128
NOTE_MAX_BYTES: Final = 1024
_NAME_MAX: Final = 253
_SUFFIX_MAX: Final = 17  # "." + 16 hex digits of a nanosecond timestamp

_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def check_component(component: str) -> None:
    """Raise ``ValueError`` unless ``component`` is a valid ``reportingController``: a
    qualified name (``my-controller`` or ``example.com/my-controller``), as the API server
    requires; every Event would otherwise be rejected in the background."""
    prefix, slash, name = component.rpartition("/")
    ok = bool(_QUALIFIED_NAME.fullmatch(name)) and (
        not slash or (len(prefix) <= _NAME_MAX and bool(_SUBDOMAIN.fullmatch(prefix)))
    )
    if not ok:
        raise ValueError(
            f"event recorder component {component!r} is not a qualified name: use at most "
            "63 letters, digits, '-', '_' or '.', starting and ending with a letter or "
            "digit, optionally prefixed by a DNS subdomain and '/' (e.g. 'example.com/web')"
        )


def default_instance(component: str) -> str:
    """client-go's ``reportingInstance``: ``<component>-<hostname>`` (at most 128
    characters; the Pod name inside a cluster)."""
    return f"{component}-{socket.gethostname()}"[:INSTANCE_MAX]


def object_reference(obj: Any) -> Obj:
    """The ``ObjectReference`` of an object dict, as client-go's ``reference.GetReference``
    builds it: ``apiVersion``, ``kind``, ``name``, ``namespace``, ``uid``,
    ``resourceVersion`` (empty ones left out). Raises ``ValueError`` naming what is
    missing (``apiVersion``, ``kind`` and ``metadata.name`` are required)."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"regarding must be an object dict, not {type(obj).__name__}")
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    ref: Obj = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    missing = [
        f for f in ("apiVersion", "kind", "name") if not isinstance(ref[f], str) or not ref[f]
    ]
    if missing:
        shown = ", ".join("metadata.name" if f == "name" else f for f in missing)
        raise ValueError(
            f"cannot reference the object: it has no {shown} (pass the object as the API "
            "returned it, with apiVersion and kind)"
        )
    return {k: v for k, v in ref.items() if isinstance(v, str) and v}


def reference_identity(ref: Mapping[str, Any]) -> tuple[str, ...]:
    """Who an Event is about, without the ``resourceVersion``: the fields of client-go's
    ``getSpamKey``/``getEventKey`` (``tools/record``): apiVersion, kind, namespace, name,
    uid, fieldPath."""
    return tuple(
        str(ref.get(f, "")) for f in ("apiVersion", "kind", "namespace", "name", "uid", "fieldPath")
    )


def check_arguments(*, type: str, reason: str, action: str) -> str | None:
    """What is wrong with the arguments of ``event()``, or ``None``."""
    if type not in EVENT_TYPES:
        return f"type must be 'Normal' or 'Warning', not {type!r}"
    if not isinstance(reason, str) or not reason:
        return "reason must be a non-empty string (UpperCamelCase, e.g. 'Synced')"
    if len(reason) > REASON_MAX:
        return f"reason is {len(reason)} characters long; the API allows {REASON_MAX}"
    if not isinstance(action, str) or not action:
        return "action must be a non-empty string (or None: it defaults to the reason)"
    if len(action) > ACTION_MAX:
        return f"action is {len(action)} characters long; the API allows {ACTION_MAX}"
    return None


def truncate_note(note: str) -> str:
    """``note`` cut to the API's 1 KiB (UTF-8 bytes, never inside a character)."""
    raw = note.encode()
    if len(raw) <= NOTE_MAX_BYTES:
        return note
    return raw[:NOTE_MAX_BYTES].decode(errors="ignore")


def event_name(regarding_name: str, unique: int) -> str:
    """client-go's Event name, ``<regarding name>.<unique, hex>`` (client-go uses the
    creation time in nanoseconds). A name that is not a DNS subdomain (RBAC names may hold
    ``:``) is folded to one, and a long one shortened, so the result is a valid name."""
    name = regarding_name
    if not _SUBDOMAIN.fullmatch(name):
        name = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "event"
    return f"{name[: _NAME_MAX - _SUFFIX_MAX].rstrip('-.')}.{unique:x}"


def micro_time(seconds: float) -> str:
    """A ``MicroTime``: RFC 3339 in UTC with microseconds (``2024-05-01T10:00:05.000123Z``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seconds_time(micro: str) -> str:
    """A ``Time`` (RFC 3339, whole seconds, UTC) from a :func:`micro_time` string."""
    return micro[:19] + "Z"


def new_event(
    *,
    name: str,
    regarding: Obj,
    related: Obj | None,
    type: str,
    reason: str,
    action: str,
    note: str,
    controller: str,
    instance: str,
    now: float,
) -> Obj:
    """An events.k8s.io/v1 Event as client-go's ``recorderImpl.makeEvent`` builds it: in
    the regarding object's namespace (``default`` for a cluster-scoped one), ``eventTime``
    now, no ``series``."""
    event: Obj = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": regarding.get("namespace") or "default"},
        "eventTime": micro_time(now),
        "reportingController": controller,
        "reportingInstance": instance,
        "action": action,
        "reason": reason,
        "regarding": regarding,
        "note": note,
        "type": type,
    }
    if related is not None:
        event["related"] = related
    return event
