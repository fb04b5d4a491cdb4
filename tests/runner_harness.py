"""Test harness: ``python -m informer.run`` replicas as child processes, and their JSON
log lines.

The runner logs JSON lines to stderr when it is not a terminal, where its one-line
``error: ...`` goes too. A :class:`Runner` reads them (and stdout) while the test runs;
tests wait for log lines, never for fixed delays: :meth:`Runner.wait_until` and
:meth:`Runner.wait_for_event` wake on every line and fail at once, with the child's
stderr and last lines, when the child exits first.

- :func:`start_runner`: one replica; leaving the block waits for it to exit (the test
  signalled it), then reaps it.
- :func:`runner_group`: replicas started on demand (:meth:`RunnerGroup.start`), awaited
  together (:meth:`RunnerGroup.wait_until`, :meth:`RunnerGroup.first`); every one still
  running is killed and reaped when the block ends.
- :func:`run_to_exit`: a runner expected to exit on its own (error paths).
- :func:`run_cli`: a synchronous run for command-line errors (usage, targets, config).

Children run in the test's folder with an environment that names no cluster
(:func:`clean_env`): each test passes ``--kubeconfig``. A runner's lines are complete once
:meth:`Runner.wait_exit` returned (the exit and the end of its output are both awaited).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio
import anyio.abc
from anyio.streams.text import TextReceiveStream

__all__ = [
    "RUN",
    "Runner",
    "RunnerGroup",
    "clean_env",
    "run_cli",
    "run_to_exit",
    "runner_group",
    "start_runner",
]

RUN = [sys.executable, "-m", "informer.run"]
"""The runner's command line, before its arguments."""

GROUP_CHECK_DELAY = 0.02
"""How long a group-wide wait lets more lines arrive before checking its condition."""

LAST_LINES = 10
"""How many of a child's last log lines a failure message quotes."""


def clean_env(home: Path) -> dict[str, str]:
    """The environment without any kubeconfig or in-cluster hint (``KUBECONFIG``,
    ``KUBERNETES_*``), ``HOME`` at ``home`` (so no ``~/.kube/config`` either), Python
    output unbuffered (every log line reaches the test as it is written)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "KUBERNETES_"))}
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(
    args: Sequence[str],
    cwd: Path,
    *,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m informer.run ARGS`` to its exit (a command-line error path), its
    output captured as text; ``env`` defaults to :func:`clean_env` of ``cwd``."""
    return subprocess.run(
        [*RUN, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=clean_env(cwd) if env is None else env,
        check=False,
    )


class _Changes:
    """Wakes every waiter when the runner (or one of the group's runners) owning it logs
    a line or exits."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class Runner:
    """One runner child: its JSON log lines (``events``, in order), the other lines of its
    stderr (``stderr``: errors, tracebacks) and its stdout (``stdout``).

    ``events``, ``stderr`` and ``stdout`` grow while :meth:`pump` runs (the harness runs
    it). Subclasses add what
    a suite reads from the lines (an identity, reconcile intervals...).
    """

    def __init__(
        self, process: anyio.abc.Process, name: str, group: _Changes | None = None
    ) -> None:
        self.process = process
        self.name = name
        self.events: list[dict[str, Any]] = []
        self.stderr = ""
        self.stdout = ""
        self._changes = _Changes()
        self._group = group
        self._finished = anyio.Event()

    # ------------------------------------------------------------------ reading

    async def pump(self) -> None:
        """Read stderr and stdout to their end, then await the exit (run it in a task
        group); waiters wake on every line and once more at the exit."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._pump_stdout)
                await self._pump_stderr()
            await self.process.wait()
        finally:
            self._finished.set()
            self._notify()

    def _notify(self) -> None:
        self._changes.notify()
        if self._group is not None:
            self._group.notify()

    async def _pump_stderr(self) -> None:
        assert self.process.stderr is not None
        buffer = ""
        async for chunk in TextReceiveStream(self.process.stderr):
            buffer += chunk
            *lines, buffer = buffer.split("\n")
            for line in lines:
                self._read_line(line)
            self._notify()
        self._read_line(buffer)

    def _read_line(self, line: str) -> None:
        """A JSON object is a log line (``events``); anything else is kept in ``stderr``."""
        if not line.strip():
            return
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict):
            self.events.append(event)
        else:
            self.stderr += line + "\n"

    async def _pump_stdout(self) -> None:
        assert self.process.stdout is not None
        async for chunk in TextReceiveStream(self.process.stdout):
            self.stdout += chunk

    def event(self, name: str) -> list[dict[str, Any]]:
        """Every log line named ``name``, in order."""
        return [e for e in self.events if e.get("event") == name]

    def has(self, name: str) -> bool:
        """Whether a log line named ``name`` was read."""
        return any(e.get("event") == name for e in self.events)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def describe(self) -> str:
        """The child's state for a failure message: exit code, stderr, last lines."""
        state = "running" if self.returncode is None else f"exited {self.returncode}"
        return (
            f"{self.name} ({state}); stderr: {self.stderr.strip()!r}; "
            f"last lines: {self.events[-LAST_LINES:]}"
        )

    # ------------------------------------------------------------------ waiting

    async def wait_until(
        self, condition: Callable[[], bool], within: float = 20.0, *, what: str = ""
    ) -> None:
        """Until ``condition()`` holds, re-checked on each of the child's log lines; fails
        at once if the child exits first, and after ``within`` seconds."""
        what = what or getattr(condition, "__qualname__", "the condition")
        with anyio.move_on_after(within):
            while not condition():
                if self._finished.is_set():
                    raise AssertionError(f"{self.name} exited before {what}: {self.describe()}")
                await self._changes.wait()
            return
        raise AssertionError(f"not within {within:g}s: {what}; {self.describe()}")

    async def wait_for_event(
        self, match: str | Callable[[dict[str, Any]], bool], within: float = 30.0
    ) -> dict[str, Any]:
        """The first log line named ``match`` (or for which ``match(line)`` is true),
        awaited as :meth:`wait_until` does."""
        test = (lambda e: e.get("event") == match) if isinstance(match, str) else match
        found: list[dict[str, Any]] = []

        def logged() -> bool:
            found[:] = [e for e in self.events if test(e)][:1]
            return bool(found)

        what = f"a log line {match!r}" if isinstance(match, str) else "the expected log line"
        await self.wait_until(logged, within, what=what)
        return found[0]

    # ------------------------------------------------------------------ lifecycle

    def send_signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL (nothing runs in the child after it)."""
        self.process.kill()

    async def wait_exit(self, within: float = 10.0) -> int:
        """The exit code, once the child exited and its output was read to the end
        (``events`` and ``stderr`` are complete); fails after ``within`` seconds."""
        with anyio.move_on_after(within):
            await self._finished.wait()
            code = self.process.returncode
            assert code is not None
            return code
        raise AssertionError(f"not exited within {within:g}s: {self.describe()}")


R = TypeVar("R", bound=Runner)


class RunnerGroup(Generic[R]):
    """Runner children started by one test, in start order (``replicas``); owned by the
    :func:`runner_group` block that made it."""

    def __init__(
        self,
        tg: anyio.abc.TaskGroup,
        args: Sequence[str],
        cwd: Path,
        replica: Callable[[anyio.abc.Process, str, _Changes], R],
    ) -> None:
        self._tg = tg
        self._args = list(args)
        self._cwd = cwd
        self._replica = replica
        self._changes = _Changes()
        self.replicas: list[R] = []

    async def start(self, args: Sequence[str] | None = None, *, cwd: Path | None = None) -> R:
        """Start one more replica (with the group's arguments unless ``args``; in the
        group's folder unless ``cwd``) named ``replica-<n>``; its output is read until it
        exits."""
        folder = cwd or self._cwd
        process = await anyio.open_process(
            [*RUN, *(self._args if args is None else args)],
            cwd=folder,
            env=clean_env(folder),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        runner = self._replica(process, f"replica-{len(self.replicas)}", self._changes)
        self.replicas.append(runner)
        self._tg.start_soon(runner.pump)
        return runner

    def live(self) -> list[R]:
        """The replicas that have not exited."""
        return [r for r in self.replicas if r.returncode is None]

    async def wait_until(self, condition: Callable[[], bool], within: float, what: str) -> None:
        """Until ``condition()`` holds, re-checked on each log line (or exit) of any
        replica; replicas may exit meanwhile (a test kills some). Fails after ``within``
        seconds naming ``what`` and every replica's state."""
        with anyio.move_on_after(within):
            while not condition():
                await self._changes.wait()
                # Replicas log in bursts: check once per burst, not once per line.
                await anyio.sleep(GROUP_CHECK_DELAY)
            return
        states = "\n".join(r.describe() for r in self.replicas)
        raise AssertionError(f"not within {within:g}s: {what}\n{states}")

    async def first(self, event: str, *, within: float, among: Sequence[R] | None = None) -> R:
        """The first of ``among`` (default: every replica), in start order, that logged
        ``event``."""
        pool = list(self.replicas if among is None else among)
        found: list[R] = []

        def logged() -> bool:
            found[:] = [r for r in pool if r.has(event)][:1]
            return bool(found)

        await self.wait_until(logged, within, f"one of {[r.name for r in pool]} logs {event}")
        return found[0]

    async def reap(self) -> None:
        """Kill every replica still running and read its output to the end."""
        with anyio.CancelScope(shield=True):
            for r in self.replicas:
                if r.returncode is None:
                    r.kill()
            with anyio.move_on_after(10):  # the output ends with the exit
                for r in self.replicas:
                    await r._finished.wait()


@asynccontextmanager
async def runner_group(
    args: Sequence[str],
    cwd: Path,
    *,
    replica: Callable[[anyio.abc.Process, str, _Changes], R],
) -> AsyncIterator[RunnerGroup[R]]:
    """A group of runners started with ``args`` in ``cwd``, as ``replica`` objects
    (:class:`Runner` or a subclass); every one is killed and reaped when the block ends."""
    async with anyio.create_task_group() as tg:
        group = RunnerGroup(tg, args, cwd, replica)
        try:
            yield group
        finally:
            await group.reap()
            tg.cancel_scope.cancel()


@asynccontextmanager
async def start_runner(
    args: Sequence[str], cwd: Path, *, exit_within: float = 10.0
) -> AsyncIterator[Runner]:
    """One runner with ``args`` in ``cwd``. When the block ends normally the runner must
    exit within ``exit_within`` seconds (the block signalled it, or it fails on its own);
    it is killed and reaped in any case, and its output read to the end."""
    async with runner_group(args, cwd, replica=Runner) as group:
        runner = await group.start()
        yield runner
        await runner.wait_exit(exit_within)


async def run_to_exit(args: Sequence[str], cwd: Path, within: float = 30.0) -> Runner:
    """A runner expected to exit on its own within ``within`` seconds (an error path)."""
    async with start_runner(args, cwd, exit_within=within) as runner:
        pass
    return runner
