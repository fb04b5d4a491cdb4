"""A controller's names: its default name (the class name in kebab-case) and the
component it writes as (Events' ``reportingController``, the client's field manager).

Pure functions of strings; they never raise.
"""

from __future__ import annotations

import re

from .._events.model import check_component

__all__ = ["component_of", "kebab"]


def kebab(name: str) -> str:
    """``ConfigMapReloader`` -> ``config-map-reloader``; ``HTTPProxy`` -> ``http-proxy``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


def component_of(name: str) -> str:
    """The component a controller named ``name`` writes as (Events' ``reportingController``,
    the client's field manager): the name without its ``@<namespace>`` suffix, made a
    qualified name when it is not one (runs of other characters become ``-``, cut to 63).
    """
    base = name.partition("@")[0]
    try:
        check_component(base)
    except ValueError:
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", base)[:63].strip("-_.") or "controller"
    return base
