"""Faults injected on purpose, so that a test can prove a broken run fails.

``BENCH_BREAK=TARGET:MODE[,TARGET:MODE...]`` in the environment of ``python -m bench``
(its child processes inherit it):

- ``PEER:crash`` (``ours``, ``floor``, ``kubernetes_asyncio``, ``official``, ``kopf``):
  that Python peer raises as it starts;
- ``replay:short``: the replay server streams only the first half of the events, then
  ends the watch response (as a server that lost events would).

Nothing sets it outside the tests; ``python -m bench`` refuses an unknown target or
mode (:func:`problem`).
"""

from __future__ import annotations

import os

BREAK_ENV = "BENCH_BREAK"
FAULTS = {
    *((peer, "crash") for peer in ("ours", "floor", "kubernetes_asyncio", "official", "kopf")),
    ("replay", "short"),
}


def _items() -> list[tuple[str, str]]:
    out = []
    for item in os.environ.get(BREAK_ENV, "").split(","):
        if item.strip():
            target, _, mode = item.strip().partition(":")
            out.append((target, mode))
    return out


def problem() -> str | None:
    """What is wrong with ``BENCH_BREAK`` (``None``: unset or valid)."""
    bad = [f"{t}:{m}" for t, m in _items() if (t, m) not in FAULTS]
    if bad:
        known = ", ".join(sorted(f"{t}:{m}" for t, m in FAULTS))
        return f"{BREAK_ENV}: unknown faults {bad}; known: {known}"
    return None


def injected(target: str) -> str | None:
    """The fault ``BENCH_BREAK`` injects into ``target`` (``None``: none)."""
    return next((m for t, m in _items() if t == target and (t, m) in FAULTS), None)
