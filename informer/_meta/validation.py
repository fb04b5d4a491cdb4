"""The API server's name checks, for helpers that should fail before a request does.

Ports of apimachinery's ``pkg/util/validation`` (``IsQualifiedName``,
``IsDNS1123Subdomain``): each returns the list of problems (empty when valid), worded
like the server's messages so a local error reads like the 422 it prevents.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["dns1123_subdomain_errors", "qualified_name_errors"]

QUALIFIED_NAME_MAX_LENGTH: Final = 63
DNS1123_SUBDOMAIN_MAX_LENGTH: Final = 253

_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")

_QUALIFIED_NAME_MSG: Final = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end"
    " with an alphanumeric character (e.g. 'MyName', 'my.name' or '123-abc')"
)


def dns1123_subdomain_errors(value: str) -> list[str]:
    """Problems of ``value`` as a DNS-1123 subdomain (``example.com``); empty if valid."""
    errors: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errors.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX_LENGTH} characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errors.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric"
            " characters, '-' or '.', and must start and end with an alphanumeric"
            " character (e.g. 'example.com')"
        )
    return errors


def qualified_name_errors(value: str) -> list[str]:
    """Problems of ``value`` as a qualified name (``name`` or ``prefix/name``, the prefix
    a DNS subdomain, the name at most 63 characters); empty if valid."""
    parts = value.split("/")
    if len(parts) > 2:
        return [
            f"a qualified name {_QUALIFIED_NAME_MSG}, with an optional DNS subdomain"
            " prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errors: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend(f"prefix part {msg}" for msg in dns1123_subdomain_errors(prefix))
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errors.append(f"name part must be no more than {QUALIFIED_NAME_MAX_LENGTH} characters")
    if name and not _QUALIFIED_NAME.fullmatch(name):
        errors.append(f"name part {_QUALIFIED_NAME_MSG}")
    return errors
