"""A controller's tuning: its default name, the component it writes as (Events, field
manager), the checks of ``workers``, ``max_retries`` and ``shutdown_grace``, and the
per-instance rate limiter built from the class attribute.

Used by :class:`~informer.Controller`'s constructor only; errors name the class.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .._events.model import check_component
from .._queue.ratelimit import RateLimiter

if TYPE_CHECKING:
    from .controller import Controller

__all__ = ["check_tuning", "component_of", "kebab", "limiter_from_class"]


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


def check_tuning(controller: Controller) -> None:
    """Validate the effective tuning (class attributes or arguments); errors name the class."""
    where = type(controller).__qualname__
    workers = controller.workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"{where}: workers must be an int >= 1, got {workers!r}")
    retries = controller.max_retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"{where}: max_retries must be an int >= 0, got {retries!r}")
    grace = controller.shutdown_grace
    if isinstance(grace, bool) or not isinstance(grace, int | float) or not grace >= 0:
        raise ValueError(f"{where}: shutdown_grace must be seconds >= 0, got {grace!r}")


def limiter_from_class(cls: type[Controller]) -> RateLimiter | None:
    """A new limiter from the class attribute ``rate_limiter`` (None: the queue's default)."""
    factory = cls.rate_limiter
    if factory is None:
        return None
    if not callable(factory):
        raise TypeError(
            f"{cls.__qualname__}.rate_limiter must be a factory (a callable returning a "
            f"RateLimiter, e.g. lambda: ExponentialFailureRateLimiter(0.01, 60)), not a "
            f"limiter: instances must not share one; got {factory!r}"
        )
    return factory()
