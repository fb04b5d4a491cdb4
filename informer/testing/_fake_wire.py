"""What :class:`~informer.testing.FakeListerWatcher` says the way the API server does.

Object keys, resourceVersions stamped into (copies of) objects and parsed from requests,
continue tokens (``base64("rv:offset:page")``, the page pinning the snapshot's RV), and
the failures: a ``Status`` body and the :mod:`informer._exceptions` error a real server's
answer would become (422 Invalid, 504 "Too large resource version", 400 for a malformed
resourceVersion or token).
"""

from __future__ import annotations

import base64

from .._exceptions import ApiError, BadRequest, ServerError
from .._meta.types import Obj

__all__ = [
    "decode_token",
    "encode_token",
    "invalid",
    "object_key",
    "parse_rv",
    "stamp",
    "status",
    "too_large",
]


def object_key(obj: Obj) -> str:
    """``"ns/name"`` or ``"name"`` (kept local: the fake depends on nothing in flight)."""
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise ValueError("object has no metadata.name")
    namespace = meta.get("namespace")
    return f"{namespace}/{name}" if namespace else str(name)


def stamp(obj: Obj, rv: int) -> Obj:
    """A shallow copy of ``obj`` whose metadata carries ``rv`` (the caller's dict is untouched)."""
    return {**obj, "metadata": {**(obj.get("metadata") or {}), "resourceVersion": str(rv)}}


def status(code: int, reason: str, message: str) -> Obj:
    """A failure ``Status`` object."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def too_large(requested: int, current: int) -> ServerError:
    message = f"Too large resource version: {requested}, current: {current}"
    body = status(504, "Timeout", message)
    body["details"] = {
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]
    }
    return ServerError(message, status=504, reason="Timeout", body=body)


def invalid(message: str) -> ApiError:
    return ApiError(message, status=422, reason="Invalid", body=status(422, "Invalid", message))


def parse_rv(rv: str) -> int:
    try:
        value = int(rv)
    except ValueError:
        raise BadRequest(f"invalid resourceVersion {rv!r}", reason="BadRequest") from None
    if value < 0:
        raise BadRequest(f"invalid resourceVersion {rv!r}", reason="BadRequest")
    return value


def encode_token(rv: int, offset: int, page: int) -> str:
    return base64.urlsafe_b64encode(f"{rv}:{offset}:{page}".encode()).decode()


def decode_token(token: str) -> tuple[int, int, int]:
    try:
        rv, offset, page = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        return int(rv), int(offset), int(page)
    except ValueError:
        raise BadRequest("invalid continue token", reason="BadRequest") from None
