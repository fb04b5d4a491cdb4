"""``eventually``: assert on state that becomes true asynchronously (Gomega's
``Eventually``, controller-runtime tests' companion).

::

    await eventually(lambda: client_sees_it(), timeout=10)
    cm = await eventually(lambda: client.get(CONFIGMAPS, "app", namespace=ns))  # once it exists

The check (a function or coroutine function, without arguments) is called until it
passes: it passes when it returns anything but ``False`` without raising one of
``retry_on``. By default those are ``AssertionError`` and the API errors a check against
a converging cluster meets on the way (:data:`RETRIED`): :class:`~informer.NotFound`
(not created yet), :class:`~informer.Conflict` (a write raced another),
:class:`~informer.TooManyRequests` and :class:`~informer.ServerError` (a busy or
starting API server, e.g. a 504 ``Timeout``). Pass ``retry_on`` to replace them (e.g.
``retry_on=(AssertionError,)`` for a check whose ``NotFound`` must fail at once). Any
other exception propagates at once. After ``timeout`` seconds the last failure is
raised again: an ``AssertionError`` as it was (a check still returning ``False`` raises
one naming it), any other as the cause of an ``AssertionError`` naming it. A check still
running at the deadline is cancelled (its earlier failure is what is reported).

Polls start 10 ms apart and back off, doubling, to ``interval`` (0.1 s): a cheap
in-memory check notices a change within a few milliseconds early on and costs little
later; a check that sends a request sends at most ten a second.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import anyio

from .._exceptions import Conflict, NotFound, ServerError, TooManyRequests

__all__ = ["RETRIED", "eventually"]

T = TypeVar("T")

RETRIED: Final[tuple[type[BaseException], ...]] = (
    AssertionError,
    NotFound,
    Conflict,
    TooManyRequests,
    ServerError,
)
"""What :func:`eventually` retries by default (``retry_on``)."""

_FIRST_DELAY: Final = 0.01


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - the bound is the point
    interval: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = RETRIED,
) -> T:
    """Call ``check`` until it passes (see the module docstring); return its result."""
    if timeout <= 0 or interval <= 0:
        raise ValueError("eventually needs timeout > 0 and interval > 0")
    deadline = anyio.current_time() + timeout
    last: BaseException | None = None
    delay = min(_FIRST_DELAY, interval)
    attempts = 0
    while True:
        attempts += 1
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())) as scope:
            try:
                result = check()
                if inspect.isawaitable(result):
                    result = await result
            except retry_on as exc:
                last = exc
            else:
                if result is not False:
                    return result
                last = AssertionError(f"{_name(check)} returned False")
        if scope.cancelled_caught:  # the deadline passed during this attempt
            if last is None:
                last = AssertionError(f"{_name(check)} was still running at the deadline")
            break
        left = deadline - anyio.current_time()
        if left <= 0:
            break
        await anyio.sleep(min(delay, left))
        delay = min(delay * 2, interval)
    assert last is not None
    if isinstance(last, AssertionError):
        note = f"eventually: still failing after {timeout:g}s ({attempts} attempts)"
        last.add_note(note)
        raise last
    raise AssertionError(
        f"eventually: {_name(check)} still raised {type(last).__name__} after {timeout:g}s "
        f"({attempts} attempts): {last}"
    ) from last


def _name(check: Callable[..., Any]) -> str:
    return getattr(check, "__qualname__", None) or repr(check)
