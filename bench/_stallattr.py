"""Where the event loop stalls during a sync: times the informer's synchronous steps.

``python -m bench._peer ours --mode sync --stalls --attribute ...`` wraps, in that
process only, the steps of the initial sync that run without a yield and scale with the
list: the decode of a list page (``decode_list``: every item decoded and transformed in
one call) and ``DeltaFIFO.replace`` (the whole list queued in one call). Its result then
holds ``attribution``: for each step, the longest call (wall and CPU ms) and the number
of calls. Diagnostics for bench/RESULTS.md ("Scaling curve"), not a benchmark figure: the
wrappers add a few microseconds per call.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
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

    def report(self) -> dict[str, dict[str, float]]:
        return {
            name: {"wall_ms": wall, "cpu_ms": cpu, "calls": calls}
            for name, (wall, cpu, calls) in self.steps.items()
        }


def install() -> Attribution:
    """Wrap the steps (see the module docstring); call before the informer is built."""
    from informer._cache import delta_fifo, listwatch

    found = Attribution()
    setattr(  # noqa: B010 -- listwatch's module global, read at each list
        listwatch,
        "decode_list",
        found.wrap("list page decode (decode_list)", getattr(listwatch, "decode_list")),  # noqa: B009
    )
    delta_fifo.DeltaFIFO.replace = found.wrap(  # type: ignore[method-assign]
        "DeltaFIFO.replace", delta_fifo.DeltaFIFO.replace
    )
    return found
