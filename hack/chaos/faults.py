"""The faults: each coroutine injects one fault and returns when the fault has ended.

A fault returns a short description of what it did (for the progress line). The soak
measures recovery from the moment it returns. The writer keeps writing while a fault
lasts (except while the apiserver is down, when its writes fail), so every fault has
changes, deletes included, for the informers to catch up with.

==================  ======================================================================
watch-cut           ``TcpProxy.cut`` for 0.5-4 s (some deletes happen meanwhile), restore
stall               ``TcpProxy.stall`` for longer than the inactivity timeout, restore
apiserver-restart   graceful restart (SIGTERM): open watches end cleanly
apiserver-kill      SIGKILL and start again: connections break
compaction          cut, deletes, etcd compaction, restore: the resume RV is gone (410 for
                    resources without a watch cache)
429-storm           every request answered 429 + Retry-After for 3-8 s, watches dropped
malformed           a garbage or truncated line injected into every watch for 1-3 s
token-rotation      the token file gets a new token, the old one is revoked (up to 10 s
                    until the apiserver refuses it), then open connections drop
==================  ======================================================================
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from informer.testing import ControlPlane, TcpProxy

from .fault_proxy import GARBLE_VARIANTS, FaultProxy
from .token import TokenIdentity
from .workload import Writer

__all__ = ["DEFAULT_FAULTS", "FAULTS", "FaultEnv"]


@dataclass
class FaultEnv:
    """What faults act on; ``inactivity_timeout`` is the informers' (a stall outlasts it)."""

    cp: ControlPlane
    tcp: TcpProxy
    proxy: FaultProxy
    writer: Writer
    rng: random.Random
    inactivity_timeout: float
    token: TokenIdentity | None = None


async def watch_cut(env: FaultEnv) -> str:
    hold = env.rng.uniform(0.5, 4.0)
    env.tcp.cut()
    try:
        deleted = await env.writer.delete_some(env.rng.randrange(1, 4))
        await anyio.sleep(hold)
    finally:
        env.tcp.restore()
    return f"cut {hold:.1f}s, {deleted} deletes while cut"


async def stall(env: FaultEnv) -> str:
    hold = env.inactivity_timeout * 1.5 + env.rng.uniform(0.0, 2.0)
    env.tcp.stall()
    try:
        await anyio.sleep(hold)
    finally:
        env.tcp.restore()
    return f"stalled {hold:.1f}s"


async def _restart(env: FaultEnv, *, kill: bool) -> str:
    began = time.monotonic()
    await env.cp.restart_apiserver(kill=kill)
    return f"{'killed' if kill else 'stopped'} and back in {time.monotonic() - began:.1f}s"


async def apiserver_restart(env: FaultEnv) -> str:
    return await _restart(env, kill=False)


async def apiserver_kill(env: FaultEnv) -> str:
    return await _restart(env, kill=True)


async def compaction(env: FaultEnv) -> str:
    env.tcp.cut()
    try:
        deleted = await env.writer.delete_some(env.rng.randrange(2, 6))
        await anyio.sleep(env.rng.uniform(0.5, 2.0))
        revision = await env.cp.compact_etcd()
    finally:
        env.tcp.restore()
    return f"{deleted} deletes while cut, compacted at revision {revision}"


async def storm(env: FaultEnv) -> str:
    retry_after = env.rng.choice((1, 2))
    hold = env.rng.uniform(3.0, 8.0)
    before = env.proxy.answered_429
    env.proxy.storm(retry_after=retry_after)
    try:
        await anyio.sleep(hold)
    finally:
        env.proxy.calm()
    answered = env.proxy.answered_429 - before
    return f"{hold:.1f}s of 429 (Retry-After {retry_after}), {answered} answered"


async def malformed(env: FaultEnv) -> str:
    variant = env.rng.choice(sorted(GARBLE_VARIANTS))
    hold = env.rng.uniform(1.0, 3.0)
    before = env.proxy.garbled
    env.proxy.garble(variant)
    try:
        await anyio.sleep(hold)
    finally:
        env.proxy.clean()
    return f"{variant} for {hold:.1f}s, {env.proxy.garbled - before} watches garbled"


async def token_rotation(env: FaultEnv) -> str:
    if env.token is None:
        raise RuntimeError("token-rotation needs the token identity (soak setup)")
    waited = await env.token.rotate()
    env.proxy.drop_all()  # open watches were authenticated with the revoked token
    return f"rotation {env.token.rotations}, old token refused after {waited:.1f}s"


FAULTS: dict[str, Callable[[FaultEnv], Awaitable[str]]] = {
    "watch-cut": watch_cut,
    "stall": stall,
    "apiserver-restart": apiserver_restart,
    "apiserver-kill": apiserver_kill,
    "compaction": compaction,
    "429-storm": storm,
    "malformed": malformed,
    "token-rotation": token_rotation,
}

DEFAULT_FAULTS: tuple[str, ...] = tuple(FAULTS)
