"""Running peers as child processes (one per measurement) and reading their JSON."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import anyio.abc
import orjson

from bench._protobuf import MEDIA_TYPE

ROOT = Path(__file__).resolve().parent.parent
CLIENTGO_SRC = ROOT / "bench" / "clientgo"
CLIENTGO_BIN = ROOT / ".cache" / "bench" / "clientgo"
INSTALL_HINT = "pip install -e '.[bench]'"
CLIENTGO_PROTOBUF = "-protobuf"
"""The client-go peer's flag: speak Kubernetes protobuf (else JSON)."""
CLIENTGO_LIST_MODE = (("KUBE_FEATURE_WatchListClient", "false"),)
"""The client-go peer's environment to sync by a paginated list (else watch-list)."""


@dataclass
class PeerRun:
    """One measurement: the peer's JSON result, or why there is none."""

    result: dict[str, Any] | None = None
    error: str | None = None
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    unavailable: bool = False
    """The peer cannot run here (not installed, not built): a skip unless requested."""

    @property
    def ok(self) -> bool:
        return self.result is not None


def python_peer(peer: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "bench._peer", peer, *args]


def clientgo_run(*, build: bool) -> tuple[Path | None, PeerRun | None]:
    """The client-go binary, or the :class:`PeerRun` saying why it cannot run."""
    binary = clientgo_binary(build=build)
    if binary.path is not None:
        return binary.path, None
    return None, PeerRun(error=binary.why, unavailable=not binary.broken)


def clientgo_format_problem(argv: Sequence[str], result: dict[str, Any]) -> str | None:
    """Why a client-go run was not answered only in the format its flags ask for
    (``content_types``: the media types of its API responses), or ``None``."""
    want = MEDIA_TYPE if CLIENTGO_PROTOBUF in argv else "application/json"
    got = result.get("content_types")
    if got != [want]:
        return f"the API answered it in {got}, not only {want}"
    return None


def missing_python_peer(peer: str) -> str | None:
    """Why a Python peer cannot run here (``None`` if it can)."""
    import importlib.util

    module = {"kopf": "kopf", "official": "kubernetes", "kubernetes_asyncio": "kubernetes_asyncio"}
    name = module.get(peer)
    if name and importlib.util.find_spec(name) is None:
        return f"{name} is not installed ({INSTALL_HINT})"
    if peer == "official" and importlib.util.find_spec("kubernetes.informer") is None:
        return "this kubernetes release has no kubernetes.informer"
    return None


def unavailable_python_peer(peer: str) -> PeerRun | None:
    """The :class:`PeerRun` of a Python peer that cannot run here, or ``None``."""
    why = missing_python_peer(peer)
    return PeerRun(error=why, unavailable=True) if why else None


def _last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


async def run_peer(
    argv: list[str], *, time_limit: float, env: dict[str, str] | None = None
) -> PeerRun:
    """Run one peer process to its end; its last JSON line on stdout is the result."""
    full_env = {**os.environ, **(env or {})}
    try:
        with anyio.fail_after(time_limit):
            proc = await anyio.run_process(
                argv, check=False, env=full_env, stdin=subprocess.DEVNULL
            )
    except TimeoutError:
        return PeerRun(error=f"timeout after {time_limit:.0f}s")
    stdout = proc.stdout.decode(errors="replace")
    stderr = proc.stderr.decode(errors="replace")
    result = _last_json(stdout) if proc.returncode == 0 else None
    if result is None:
        why = _tail(stderr, 3) or _tail(stdout, 3) or f"exit code {proc.returncode}"
        if "skip:" in why:  # the peer found itself unable to run here
            why = why[why.index("skip:") + 5 :].strip()
            return PeerRun(error=why, stderr=stderr, unavailable=True)
        return PeerRun(error=why, stderr=stderr)
    return PeerRun(result=result, stderr=stderr)


class InteractivePeer:
    """A peer that prints ``{"ready": true}``, works until told ``stop``, then prints its
    result (the latency benchmark)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.env = {**os.environ, **(env or {})}
        self.proc: anyio.abc.Process | None = None
        self._out = b""

    async def start(self, time_limit: float) -> None:
        self.proc = await anyio.open_process(self.argv, env=self.env, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        with anyio.fail_after(time_limit):
            while b'"ready"' not in self._out:
                chunk = await self.proc.stdout.receive()
                self._out += chunk

    async def stop(self, time_limit: float) -> dict[str, Any] | None:
        assert (
            self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        )
        await self.proc.stdin.send(b"stop\n")
        await self.proc.stdin.aclose()
        try:
            with anyio.fail_after(time_limit):
                async for chunk in self.proc.stdout:
                    self._out += chunk
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
        finally:
            await self.proc.aclose()
        return _last_json(self._out.decode(errors="replace"))

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            with anyio.CancelScope(shield=True):
                await self.proc.wait()


class GoBinary(NamedTuple):
    path: Path | None
    why: str
    """Why there is no binary (or a remark about the one there is)."""
    broken: bool = False
    """Go is there but ``go build`` failed: a failure, not a missing peer."""


def go_fresh(source: Path, binary: Path) -> bool:
    """Whether ``binary`` exists and is newer than every Go source file of ``source``."""
    sources = [p for p in source.iterdir() if p.suffix in (".go", ".mod", ".sum")]
    return binary.exists() and all(binary.stat().st_mtime >= p.stat().st_mtime for p in sources)


def go_build(source: Path, binary: Path, *, peer: str) -> GoBinary:
    """``go build`` the program in ``source`` into ``binary`` (``GOTOOLCHAIN=local``
    unless set): the binary, or why not (Go missing; a failed build is ``broken``)."""
    go = shutil.which("go")
    if go is None:
        return GoBinary(None, f"Go is not installed (needed to build the {peer})")
    binary.parent.mkdir(parents=True, exist_ok=True)
    print(f"building the {peer} into {binary.relative_to(ROOT)} ...", flush=True)
    env = {**os.environ, "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local")}
    proc = subprocess.run(
        [go, "build", "-trimpath", "-o", str(binary), "."],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return GoBinary(None, f"go build failed: {_tail(proc.stderr, 5)}", broken=True)
    return GoBinary(binary, "")


def clientgo_binary(*, build: bool) -> GoBinary:
    """The client-go peer's binary, built on demand into ``.cache/bench/`` (git-ignored).

    With ``build=False`` only an existing binary is used, stale or not (the smoke test
    keeps ``make test`` bounded that way).
    """
    if go_fresh(CLIENTGO_SRC, CLIENTGO_BIN):
        return GoBinary(CLIENTGO_BIN, "")
    if not build:
        if CLIENTGO_BIN.exists():
            return GoBinary(CLIENTGO_BIN, "binary is stale; using it anyway")
        return GoBinary(
            None,
            f"{CLIENTGO_BIN.relative_to(ROOT)} is not built (run `make bench` once to build it)",
        )
    return go_build(CLIENTGO_SRC, CLIENTGO_BIN, peer="client-go peer")
