"""Where the event loop stalls during a sync: times the informer's synchronous steps.

``python -m bench._peer ours --mode sync --stalls --attribute ...`` wraps, in that
process only, the steps of the initial sync that run between two yields to the loop:
the decode of each chunk of a list body as it arrives (``ListStreamDecoder.feed``, at
most 64 KiB), each step of the decode of a buffered body at its end
(``ListStreamDecoder.finish``), each step of queueing the first list
(``DeltaFIFO.replace_steps``, 10,000 objects) and each batch of the processing loop
(``DeltaFIFO.pop_ready_keyed``, up to 128 keys through the store and the listeners). Its
result then holds ``attribution``: for each step, the longest call (wall and CPU ms) and
the number of calls. Diagnostics for bench/RESULTS.md ("Scaling curve"), not a benchmark
figure: the wrappers add a few microseconds per call.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any


class Attribution:
    """The longest call of each wrapped step: ``{name: [wall ms, CPU ms, calls]}``."""

    def __init__(self) -> None:
        self.steps: dict[str, list[float]] = {}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        step = self.steps.setdefault(name, [0.0, 0.0, 0])

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                wall_ms = (time.perf_counter() - wall) * 1000
                cpu_ms = (time.thread_time() - cpu) * 1000
                if cpu_ms > step[1]:
                    step[0], step[1] = wall_ms, cpu_ms
                step[2] += 1

        return timed

    def wrap_steps(
        self, name: str, fn: Callable[..., Iterator[Any]]
    ) -> Callable[..., Generator[Any, Any, Any]]:
        """Wrap a generator function: each step (``next``) is one call."""
        step = self.steps.setdefault(name, [0.0, 0.0, 0])

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            steps = fn(*args, **kwargs)
            while True:
                wall, cpu = time.perf_counter(), time.thread_time()
                try:
                    value = next(steps)
                except StopIteration as done:
                    self._record(step, wall, cpu)
                    return done.value
                self._record(step, wall, cpu)
                yield value

        return timed

    @staticmethod
    def _record(step: list[float], wall: float, cpu: float) -> None:
        wall_ms = (time.perf_counter() - wall) * 1000
        cpu_ms = (time.thread_time() - cpu) * 1000
        if cpu_ms > step[1]:
            step[0], step[1] = wall_ms, cpu_ms
        step[2] += 1

    def report(self) -> dict[str, dict[str, float]]:
        return {
            name: {"wall_ms": wall, "cpu_ms": cpu, "calls": calls}
            for name, (wall, cpu, calls) in self.steps.items()
        }


_STEPS: tuple[tuple[str, str, str, bool], ...] = (
    ("list_decode", "ListStreamDecoder", "feed", False),
    ("list_decode", "ListStreamDecoder", "finish", True),
    ("delta_fifo", "DeltaFIFO", "replace_steps", True),
    ("delta_fifo", "DeltaFIFO", "pop_ready_keyed", False),
)
"""(module of ``informer._cache``, class, method, is a generator) of each wrapped step."""


def install() -> Attribution:
    """Wrap the steps (see the module docstring) until :func:`uninstall`; call before
    the informer is built."""
    import importlib

    found = Attribution()
    for module, cls_name, method, steps in _STEPS:
        cls = getattr(importlib.import_module(f"informer._cache.{module}"), cls_name)
        original = cls.__dict__[method]
        name = f"{cls_name}.{method}"
        wrapped = found.wrap_steps(name, original) if steps else found.wrap(name, original)
        wrapped.__wrapped_original__ = original  # type: ignore[union-attr]
        setattr(cls, method, wrapped)
    return found


def uninstall() -> None:
    """Put back what :func:`install` wrapped."""
    import importlib

    for module, cls_name, method, _ in _STEPS:
        cls = getattr(importlib.import_module(f"informer._cache.{module}"), cls_name)
        original = getattr(cls.__dict__[method], "__wrapped_original__", None)
        if original is not None:
            setattr(cls, method, original)
