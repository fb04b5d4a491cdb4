"""Test helper: a ``python -m informer.run`` child process and its JSON log lines.

Shared by the runner, leader-election and deploy tests. The runner logs JSON lines to
stdout when it is not a terminal; tests wait for log lines, never for fixed delays.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
from anyio.streams.text import TextReceiveStream


class RunnerLogs:
    """Collects a child's stdout (JSON lines) and stderr; lets tests await log lines."""

    def __init__(self, process: anyio.abc.Process, name: str = "runner") -> None:
        self.process = process
        self.name = name
        self.events: list[dict[str, Any]] = []
        self.stderr = ""
        self._changed = anyio.Event()

    async def pump(self) -> None:
        """Read stdout and stderr until the child closes them (run it in a task group)."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.pump_stderr)
            await self.pump_stdout()

    async def pump_stdout(self) -> None:
        assert self.process.stdout is not None
        buffer = ""
        async for chunk in TextReceiveStream(self.process.stdout):
            buffer += chunk
            *lines, buffer = buffer.split("\n")
            for line in lines:
                if line.strip():
                    try:
                        self.events.append(json.loads(line))
                    except ValueError:
                        self.events.append({"event": "<raw>", "line": line})
            self._changed.set()
            self._changed = anyio.Event()
        self._changed.set()

    async def pump_stderr(self) -> None:
        assert self.process.stderr is not None
        async for chunk in TextReceiveStream(self.process.stderr):
            self.stderr += chunk

    def event(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]

    def has(self, name: str) -> bool:
        return any(e.get("event") == name for e in self.events)

    async def wait_until(self, predicate: Callable[[], bool], within: float = 20.0) -> None:
        """Until ``predicate()`` holds; fails if the child exits first."""
        with anyio.fail_after(within):
            while not predicate():
                if self.process.returncode is not None:
                    raise AssertionError(
                        f"{self.name} exited ({self.process.returncode}) before the expected "
                        f"log line; stderr: {self.stderr}; logs: {self.events[-10:]}"
                    )
                await self._changed.wait()

    async def wait_for_event(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 30.0
    ) -> dict[str, Any]:
        """The first log line matching ``predicate``; fails if the child exits first."""
        found: list[dict[str, Any]] = []

        def match() -> bool:
            found[:] = [e for e in self.events if predicate(e)][:1]
            return bool(found)

        await self.wait_until(match, within)
        return found[0]
