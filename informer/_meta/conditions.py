"""Status conditions on object dicts (apimachinery's ``meta.SetStatusCondition``).

Conditions live in ``obj["status"]["conditions"]``, a list of ``metav1.Condition``
dicts: ``type``, ``status`` (``"True"``, ``"False"``, ``"Unknown"``),
``observedGeneration`` (optional), ``lastTransitionTime`` (RFC 3339, seconds, UTC),
``reason`` (CamelCase, required) and ``message``.

:func:`set_condition` follows ``k8s.io/apimachinery/pkg/api/meta/conditions.go``:

- a condition of a new type is appended with ``lastTransitionTime`` = now;
- for an existing type, ``status``, ``reason``, ``message`` and ``observedGeneration``
  are overwritten, and ``lastTransitionTime`` changes **only when ``status`` changes**;
- it returns whether anything changed, so a reconcile writes status only when needed.

``observed_generation=None`` stands for Go's zero value: the field is absent (and removed
from an existing condition). Values are checked against the schema the API server
enforces for ``metav1.Condition`` (a bad reason would otherwise fail the status write
with a 422 far from its cause); a ``ValueError`` names the field and the rule.

:func:`set_condition` mutates ``obj`` in place: pass a copy of a cached object, never
the lister's own dict. The readers return the object's own dicts: do not mutate them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from .types import Obj

__all__ = ["get_condition", "is_condition_true", "set_condition"]

STATUSES: Final = ("True", "False", "Unknown")

# The kubebuilder markers of metav1.Condition (apimachinery pkg/apis/meta/v1/types.go).
_TYPE = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])"
)
_TYPE_MAX: Final = 316
_REASON = re.compile(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?")
_REASON_MAX: Final = 1024
_MESSAGE_MAX: Final = 32768


def _now() -> str:
    """The current time as ``metav1.Time`` serialises it: RFC 3339, seconds, UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(obj: Mapping[str, Any]) -> list[Any]:
    status = obj.get("status")
    if not isinstance(status, Mapping):
        return []
    conditions = status.get("conditions")
    return conditions if isinstance(conditions, list) else []


def get_condition(obj: Obj, type: str) -> Obj | None:
    """The condition of ``type`` in ``status.conditions`` (``meta.FindStatusCondition``),
    or ``None``. It is the object's own dict: do not mutate it."""
    for condition in _conditions(obj):
        if isinstance(condition, Mapping) and condition.get("type") == type:
            return condition  # type: ignore[return-value]
    return None


def is_condition_true(obj: Obj, type: str) -> bool:
    """Whether the condition of ``type`` is present with status ``"True"``
    (``meta.IsStatusConditionTrue``)."""
    condition = get_condition(obj, type)
    return condition is not None and condition.get("status") == "True"


def set_condition(
    obj: Obj,
    type: str,
    status: str | bool,
    *,
    reason: str,
    message: str = "",
    observed_generation: int | None = None,
) -> bool:
    """Set the condition of ``type`` in ``obj["status"]["conditions"]``; return whether
    anything changed (``meta.SetStatusCondition``, module docstring).

    ``status`` is ``"True"``, ``"False"``, ``"Unknown"`` or a bool. ``status`` and
    ``conditions`` are created when missing. Raises ``ValueError`` for values the API
    server would reject (type, status, reason, message, observed_generation).
    """
    status = _check(type, status, reason, message, observed_generation)
    holder = obj.get("status")
    if not isinstance(holder, dict):
        holder = obj["status"] = {}
    conditions = holder.get("conditions")
    if not isinstance(conditions, list):
        conditions = holder["conditions"] = []
    existing = get_condition(obj, type)
    if existing is None:
        condition: Obj = {"type": type, "status": status}
        if observed_generation is not None:
            condition["observedGeneration"] = observed_generation
        condition["lastTransitionTime"] = _now()
        condition["reason"] = reason
        condition["message"] = message
        conditions.append(condition)
        return True
    changed = False
    if existing.get("status") != status:
        existing["status"] = status
        existing["lastTransitionTime"] = _now()
        changed = True
    if existing.get("reason") != reason:
        existing["reason"] = reason
        changed = True
    if existing.get("message", "") != message:
        existing["message"] = message
        changed = True
    if observed_generation is None:
        if existing.pop("observedGeneration", 0) not in (0, None):
            changed = True
    elif existing.get("observedGeneration") != observed_generation:
        existing["observedGeneration"] = observed_generation
        changed = True
    if "lastTransitionTime" not in existing:  # required by the schema
        existing["lastTransitionTime"] = _now()
        changed = True
    return changed


def _check(
    type_: str, status: str | bool, reason: str, message: str, observed_generation: int | None
) -> str:
    """Validate against ``metav1.Condition``'s schema; return the status string."""
    if isinstance(status, bool):
        status = "True" if status else "False"
    if status not in STATUSES:
        raise ValueError(
            f"condition {type_!r}: status must be one of 'True', 'False', 'Unknown'"
            f" (or a bool), got {status!r}"
        )
    if not isinstance(type_, str) or not type_ or len(type_) > _TYPE_MAX:
        raise ValueError(
            f"condition type must be a non-empty string of at most {_TYPE_MAX} characters,"
            f" got {type_!r}"
        )
    if not _TYPE.fullmatch(type_):
        raise ValueError(
            f"condition type {type_!r} is invalid: use CamelCase ('Ready') or a"
            " domain-prefixed name ('example.com/Ready'): alphanumerics, '-', '_', '.'"
        )
    if not isinstance(reason, str) or not reason:
        raise ValueError(
            f"condition {type_!r}: reason is required, a CamelCase identifier such as"
            " 'Synced' or 'SourceMissing'"
        )
    if len(reason) > _REASON_MAX or not _REASON.fullmatch(reason):
        raise ValueError(
            f"condition {type_!r}: reason {reason!r} is invalid: it must start with a letter"
            " and contain only letters, digits, '_', ',' or ':' (CamelCase, such as"
            f" 'SourceMissing'), at most {_REASON_MAX} characters; put prose in message="
        )
    if not isinstance(message, str) or len(message) > _MESSAGE_MAX:
        raise ValueError(
            f"condition {type_!r}: message must be a string of at most {_MESSAGE_MAX} characters"
        )
    if observed_generation is not None and (
        isinstance(observed_generation, bool)
        or not isinstance(observed_generation, int)
        or observed_generation < 0
    ):
        raise ValueError(
            f"condition {type_!r}: observed_generation must be an int >= 0 (the object's"
            f" metadata.generation), got {observed_generation!r}"
        )
    return status
