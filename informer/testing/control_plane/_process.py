"""The control plane's child processes (etcd, kube-apiserver): spawn, probe, stop.

Lifetime contract (Linux only): a child never outlives its control plane.
:class:`Children` spawns each one from the calling (event-loop) thread with Linux's
``PR_SET_PDEATHSIG`` = SIGKILL, so it dies with the parent even when the parent is
SIGKILLed; PDEATHSIG fires when the *thread* that forked it exits, hence the event-loop
thread (it lives as long as the control plane in the normal case). Each child runs in its
own session, so that a terminal's Ctrl-C reaches only the parent, which then stops the
children in order. :meth:`Child.stop` is SIGTERM, a grace period, then SIGKILL, and
reaps; a :class:`Children` that is garbage-collected (or alive at interpreter exit)
SIGKILLs and reaps what it still holds.

Readiness is an HTTP probe (blocking ``urllib`` in a worker thread, proxies ignored:
everything is on ``127.0.0.1``) polled until it answers as expected, the child exits, or
the deadline passes; each failure raises :class:`ControlPlaneError` with the end of the
child's log (and its first fatal line, when that one scrolled out).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shlex
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import structlog

from ..._exceptions import InformerError

__all__ = [
    "LOG_TAIL_LINES",
    "STOP_GRACE",
    "Child",
    "Children",
    "ControlPlaneError",
    "bind_failed",
    "etcd_healthy",
    "free_ports",
    "is_ok",
    "opener",
    "post_json",
    "tail",
]

log = structlog.get_logger(__name__)

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
LOG_TAIL_LINES = 20
_POLL_INTERVAL = 0.05  # seconds between checks of a child's liveness / readiness
_PROBE_TIMEOUT = 2.0  # seconds for one HTTP readiness probe

_PR_SET_PDEATHSIG = 1
# Loaded in the parent: the child (after fork, before exec) must not load libraries.
_libc = ctypes.CDLL(None, use_errno=True)


class ControlPlaneError(InformerError):
    """The control plane could not be started or driven.

    Raised for missing binaries, a child that exits early, a readiness timeout (the
    message then holds the last lines of the child's log), or misuse (e.g. calling
    ``restart_apiserver`` on a stopped control plane).
    """


@dataclass
class Child:
    """One child process and the file its stdout and stderr go to."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the child's log."""
        return tail(self.log_path, lines)

    def died_error(self, when: str) -> ControlPlaneError:
        return ControlPlaneError(
            f"{self.name} exited with code {self.popen.returncode} {when}; "
            f"{_failure_excerpt(self.log_path)}"
        )

    async def stop(self, grace: float = STOP_GRACE) -> int | None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; reap. Returns the exit code.

        ``grace=0`` sends SIGKILL at once. Call it shielded from cancellation: it must run
        to completion.
        """
        if self.alive() and grace > 0:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with anyio.move_on_after(grace):
                await self.wait_exited()
            if self.alive():
                log.warning("control_plane.kill", child=self.name, pid=self.pid, grace=grace)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()
            await self.wait_exited()  # SIGKILL cannot be ignored: this ends quickly
        return self.popen.returncode

    async def wait_exited(self) -> None:
        """Return once the child has exited, and reap it."""
        if self.popen.returncode is not None:  # reaped: its pid may belong to another
            return
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            self.popen.wait()
            return
        try:
            await anyio.wait_readable(pidfd)  # a pidfd turns readable when the process exits
        finally:
            os.close(pidfd)
        self.popen.wait()


class Children:
    """The live children of one control plane (see the module docstring).

    Every child :meth:`spawn` starts is held until :meth:`forget` (or :meth:`discard`,
    which stops it first); a finalizer SIGKILLs and reaps the ones still held when this
    object is garbage-collected or the interpreter exits.
    """

    def __init__(self) -> None:
        self._live: list[Child] = []  # shared with the finalizer
        self._finalizer = weakref.finalize(self, _kill_children, self._live)

    def spawn(self, name: str, argv: list[str], *, cwd: Path) -> Child:
        """Start ``argv`` from the current (event-loop) thread, its output appended to
        ``cwd/<name>.log``."""
        log_path = cwd / f"{name}.log"
        with open(log_path, "ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {shlex.join(argv)}\n".encode())
            out.flush()
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        child = Child(name=name, argv=argv, log_path=log_path, popen=popen)
        self._live.append(child)
        log.debug("control_plane.spawned", child=name, pid=popen.pid)
        return child

    async def discard(self, child: Child) -> None:
        """Stop ``child`` (shielded) and forget it."""
        with anyio.CancelScope(shield=True):
            await child.stop()
        self.forget(child)

    def forget(self, child: Child) -> None:
        with contextlib.suppress(ValueError):
            self._live.remove(child)

    async def stop_all(self) -> None:
        """Stop and forget every child still held (call it shielded)."""
        for child in list(self._live):
            await child.stop()
            self.forget(child)

    async def wait_ready(
        self,
        child: Child,
        url: str,
        ready: Callable[[int, bytes], bool],
        context: ssl.SSLContext | None = None,
        *,
        deadline: float,
        start_timeout: float,
    ) -> None:
        """Poll ``url`` until ``ready(status, body)``; fail if the child exits or once
        ``time.monotonic()`` passes ``deadline`` (``start_timeout``: the length of the
        start that ``deadline`` ends, for the message)."""
        last = "no answer yet"
        while True:
            if not child.alive():
                raise child.died_error("before becoming ready")
            status, body, error = await anyio.to_thread.run_sync(
                _probe, url, context, abandon_on_cancel=True
            )
            if ready(status, body):
                log.debug(
                    "control_plane.child_ready",
                    child=child.name,
                    seconds=round(time.monotonic() - child.started_at, 2),
                )
                return
            last = error or f"HTTP {status}: {body.decode('utf-8', 'replace')[-2000:]}"
            if time.monotonic() >= deadline:
                raise ControlPlaneError(
                    f"{child.name} not ready after {start_timeout:g} s "
                    f"(GET {url} -> {last}); {_failure_excerpt(child.log_path)}"
                )
            await anyio.sleep(_POLL_INTERVAL * 2)


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` giving the child PDEATHSIG=SIGKILL (closing the fork race)."""

    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _kill_children(children: list[Child]) -> None:
    """Last resort (garbage collection or interpreter exit): SIGKILL and reap."""
    for child in children:
        if child.alive():
            with contextlib.suppress(ProcessLookupError):
                child.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=5)


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log file (empty if unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


# A fatal line that may scroll out of the tail (etcd prints its usage after a bad flag).
_FATAL_LINE = re.compile(
    r'^(F\d{4} |panic:|Error:|flag provided but not defined)|"level":"(fatal|panic)"'
)


def _failure_excerpt(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log, preceded by its first fatal line if that one
    is older."""
    text = tail(path, 10_000).splitlines()
    head = [line for line in text[:-lines] if _FATAL_LINE.search(line)][:1]
    excerpt = "\n".join([*head, *(["..."] if head else []), *text[-lines:]])
    return f"last lines of {path}:\n{excerpt}"


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (the kernel picks them)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def bind_failed(child: Child) -> bool:
    """The child exited because its port was taken (the caller retries on fresh ports)."""
    return not child.alive() and "address already in use" in child.tail(50)


def _probe(url: str, context: ssl.SSLContext | None) -> tuple[int, bytes, str | None]:
    """GET ``url`` (blocking): ``(status, body, None)`` or ``(0, b"", error)``."""
    try:
        with opener(context).open(url, timeout=_PROBE_TIMEOUT) as resp:
            return resp.status, resp.read(), None
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(), None
    except (OSError, ValueError) as exc:
        return 0, b"", repr(exc)


def opener(context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    """An opener that ignores ``*_proxy`` variables: everything here is on 127.0.0.1."""
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )


def is_ok(status: int, body: bytes) -> bool:
    """Readiness of kube-apiserver's ``/readyz``."""
    return status == 200


def etcd_healthy(status: int, body: bytes) -> bool:
    """Readiness of etcd's ``/health``."""
    if status != 200:
        return False
    try:
        return json.loads(body).get("health") == "true"  # type: ignore[no-any-return]
    except ValueError:
        return False


async def post_json(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST ``payload`` as JSON (in a worker thread); the decoded answer. Raises
    :class:`ControlPlaneError` for an HTTP error or a failed connection."""

    def post() -> dict[str, Any]:
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with opener(None).open(request, timeout=30) as resp:
                return json.loads(resp.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read().decode("utf-8", "replace")
            raise ControlPlaneError(f"POST {url} -> HTTP {exc.code}: {body}") from None
        except OSError as exc:
            raise ControlPlaneError(f"POST {url} failed: {exc!r}") from exc

    return await anyio.to_thread.run_sync(post)
