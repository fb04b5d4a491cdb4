"""How the Reflector reads the server's replies: resourceVersions, error statuses, log fields.

Pure functions over decoded JSON and library errors; none of them keeps or mutates what
it is given. ``describe`` is the one place that turns an error into log fields, so no log
line about a list or watch failure carries object content (for a malformed watch line,
only its length).
"""

from __future__ import annotations

from typing import Any

from .._exceptions import ApiError, ResourceExpired, WatchDecodeError, api_error_from_status

__all__ = ["describe", "error_from_event", "is_rv_unavailable", "rv_of"]


def rv_of(obj: Any) -> str | None:
    """``obj["metadata"]["resourceVersion"]`` if it is a non-empty string, else ``None``."""
    try:
        rv = obj["metadata"]["resourceVersion"]
    except (KeyError, TypeError, IndexError):
        return None
    return rv if isinstance(rv, str) and rv else None


def is_rv_unavailable(exc: BaseException) -> bool:
    """410 Expired/Gone, or client-go's "too large resource version" (504 + cause)."""
    if isinstance(exc, ResourceExpired):
        return True
    if not isinstance(exc, ApiError):
        return False
    details = exc.body.get("details") if exc.body else None
    causes = details.get("causes") if isinstance(details, dict) else None
    if isinstance(causes, list) and any(
        isinstance(c, dict) and c.get("reason") == "ResourceVersionTooLarge" for c in causes
    ):
        return True
    return exc.status == 504 and "Too large resource version" in exc.message


def error_from_event(obj: Any) -> ApiError:
    """The ``ApiError`` of a watch ``ERROR`` event's ``Status`` (500 when it has no code)."""
    status = obj if isinstance(obj, dict) else None
    code = status.get("code") if status else None
    return api_error_from_status(code if isinstance(code, int) and code else 500, status)


def describe(exc: BaseException) -> dict[str, Any]:
    """Log fields for an error, without any object content."""
    fields: dict[str, Any] = {"error": type(exc).__name__}
    if isinstance(exc, WatchDecodeError):
        fields["line_bytes"] = len(exc.line)
    elif isinstance(exc, ApiError):
        fields.update(status=exc.status, reason=exc.reason, message=exc.message)
    else:
        fields["message"] = str(exc)
    return fields
