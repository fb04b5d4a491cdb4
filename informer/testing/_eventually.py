"""``eventually``: assert on state that becomes true asynchronously (Gomega's
``Eventually``, controller-runtime tests' companion).

::

    await eventually(lambda: client_sees_it(), timeout=10)
    cm = await eventually(read_copy)            # returns what the check returned

The check (a function or coroutine function, without arguments) is called until it
passes: it passes when it returns anything but ``False`` without raising one of
``retry_on`` (default ``AssertionError``). Any other exception propagates at once. After
``timeout`` seconds the last ``AssertionError`` is raised again (a check still returning
``False`` raises an ``AssertionError`` naming it); a check still running at the deadline
is cancelled (its earlier failure is what is reported). Polls start every 20 ms and
back off to ``interval``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

__all__ = ["eventually"]

T = TypeVar("T")

_FIRST_DELAY = 0.02


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - the bound is the point
    interval: float = 0.25,
    retry_on: tuple[type[BaseException], ...] = (AssertionError,),
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
