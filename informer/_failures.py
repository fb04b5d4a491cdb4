"""Absorbed failures: exceptions the library logs and survives, told to hooks.

A raising event handler, reconcile, transform, webhook or callback must not stop the
others, so the library logs the exception and carries on (client-go's ``HandleCrash``
without the crash). In production that is right; in a test it hides a failed assertion inside a
handler. :func:`add_failure_hook` lets a test harness see every absorbed failure: the
pytest plugin (``informer.testing.pytest_plugin``) fails a test at teardown when any
happened during it, unless the test declares it expects them, as pytest does for
unraisable exceptions.

Contract: :func:`report_failure` is called synchronously, on the event loop, right where
the failure is logged; hooks run in registration order, must be fast, and must not raise
(an exception from a hook is ignored so the library's recovery path is unaffected).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Failure", "FailureHook", "FailureKind", "add_failure_hook", "report_failure"]

FailureKind = Literal["handler", "reconcile", "store", "processing", "callback", "event", "webhook"]
"""Where a failure was absorbed: an event handler, a reconcile, the reflector's store
update (transform/key function), the informer's processing loop, a user callback
(``on_watch_error``, leader-election callbacks), an Event the ``EventRecorder`` could
not record (invalid arguments, a sink that raised something other than an API error),
or a webhook's function (an admission handler that raised or timed out, a conversion
that raised: the request was answered with a denial or a failed conversion)."""


@dataclass(frozen=True, slots=True)
class Failure:
    """One absorbed exception: ``kind``, ``where`` (the informer, handler or controller
    name), ``key`` (the object key when known) and the ``error`` itself."""

    kind: FailureKind
    where: str
    error: BaseException
    key: str | None = None

    def __str__(self) -> str:
        key = f" key={self.key}" if self.key else ""
        return f"{self.kind} {self.where}{key}: {type(self.error).__name__}: {self.error}"


FailureHook = Callable[[Failure], None]

_hooks: list[FailureHook] = []


def add_failure_hook(hook: FailureHook) -> Callable[[], None]:
    """Call ``hook`` with every absorbed failure from now on; returns its remover."""
    _hooks.append(hook)

    def remove() -> None:
        if hook in _hooks:
            _hooks.remove(hook)

    return remove


def report_failure(
    kind: FailureKind, where: str, error: BaseException, *, key: str | None = None
) -> None:
    """Tell the hooks about an absorbed failure (no-op without hooks)."""
    if not _hooks:
        return
    failure = Failure(kind, where, error, key)
    for hook in list(_hooks):
        with contextlib.suppress(Exception):  # a broken hook must not break recovery
            hook(failure)
