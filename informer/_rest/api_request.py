"""The HTTP vocabulary of the Kubernetes API, without a transport: query encoding, patch
content types, ``Retry-After``. ``informer._rest.transport`` and
``informer._rest.request`` send what these functions shape; ``informer._rest.errors``
reads ``Retry-After`` with them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias
from urllib.parse import urlencode

__all__ = [
    "PATCH_TYPES",
    "QueryParams",
    "encode_query",
    "parse_retry_after",
    "patch_content_type",
]

QueryParams: TypeAlias = Mapping[str, str | int | bool] | Sequence[tuple[str, str | int | bool]]
"""Query parameters; booleans are sent as ``true``/``false``."""

PATCH_TYPES: Final[Mapping[str, str]] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
"""The patch types the API server accepts, by short name -> ``Content-Type``."""


def patch_content_type(content_type: str | None, path: str) -> str:
    """The ``Content-Type`` of a PATCH: merge by default, else one of ``PATCH_TYPES``."""
    if content_type is None:
        return PATCH_TYPES["merge"]
    if content_type in PATCH_TYPES:
        return PATCH_TYPES[content_type]
    if content_type.partition(";")[0].strip().lower() in PATCH_TYPES.values():
        return content_type
    accepted = ", ".join(f"{name!r} ({media})" for name, media in PATCH_TYPES.items())
    raise ValueError(
        f"PATCH {path}: content_type={content_type!r} is not a patch type;"
        f" pass one of {accepted}, or leave it unset for a merge patch"
    )


def encode_query(query: QueryParams | None, extra: list[tuple[str, str]]) -> str:
    """The query string of ``query`` followed by the ``extra`` pairs (no ``?``)."""
    if not query and not extra:
        return ""
    items = query.items() if isinstance(query, Mapping) else (query or ())
    pairs = [(k, ("true" if v else "false") if isinstance(v, bool) else str(v)) for k, v in items]
    pairs.extend(extra)
    return urlencode(pairs)


def parse_retry_after(header: str | None, status: Mapping[str, Any] | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds), else the Status details."""
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass  # an HTTP-date: the API server never sends one
    details = status.get("details") if status else None
    if isinstance(details, Mapping):
        seconds = details.get("retryAfterSeconds")
        if isinstance(seconds, int | float) and seconds > 0:
            return float(seconds)
    return None
