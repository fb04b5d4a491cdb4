"""The convergence checks run after every fault, with the writer paused.

- :func:`converge`: every watched informer's cache and handler view equal a fresh list
  (polled until they do or the timeout passes; returns the time from the fault's end).
- :func:`controller_problems`: the sample controllers' own invariants — every namespace
  with Deployments has a ``deployment-inventory`` whose data is what
  :func:`kube_informer_samples.deployment_inventory.desired_inventory` makes of a fresh list (and
  a namespace without any has none); every opted-in Deployment whose required ConfigMaps
  exist carries the :func:`kube_informer_samples.configmap_reloader.config_hash` of their fresh
  data.
- :func:`resources`: the task count and this process's RSS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from kube_informer_samples.configmap_reloader import (
    config_hash,
    consumed_configmaps,
    is_opted_in,
    template_hash,
)
from kube_informer_samples.deployment_inventory import INVENTORY_NAME, desired_inventory

from informer import InformerError, NotFound, Obj, request_json
from informer.resources import CONFIGMAPS, DEPLOYMENTS

from .observer import Watched, diff

__all__ = ["controller_problems", "converge", "poll", "resources"]

_POLL = 0.1


async def poll(
    check: Callable[[], Awaitable[list[str]]], *, since: float, within: float
) -> tuple[float | None, list[str]]:
    """Run ``check`` until it reports no problem: ``(seconds since `since`, [])``; or
    ``(None, last problems)`` once ``within`` seconds passed. API errors of the check
    itself count as problems (the apiserver may still be warming up)."""
    deadline = time.monotonic() + within
    while True:
        try:
            problems = await check()
        except InformerError as exc:
            problems = [f"check failed: {type(exc).__name__}: {exc}"]
        if not problems:
            return time.monotonic() - since, []
        if time.monotonic() >= deadline:
            return None, problems
        await anyio.sleep(_POLL)


async def converge(
    watched: Sequence[Watched], admin: Any, *, since: float, within: float
) -> tuple[float | None, list[str]]:
    """Poll until every cache and handler view equals its fresh list."""

    async def check() -> list[str]:
        problems = []
        for w in watched:
            truth = await w.truth(admin)
            cache = diff(w.cache(), truth)
            if cache:
                problems.append(f"{w.name} cache: {cache.describe()}")
            view = diff(w.view.state, truth)
            if view:
                problems.append(f"{w.name} handler view: {view.describe()}")
        return problems

    return await poll(check, since=since, within=within)


async def _get(admin: Any, path: str) -> Obj | None:
    try:
        return await request_json(admin, "GET", path)
    except NotFound:
        return None


async def controller_problems(admin: Any, namespaces: Sequence[str]) -> list[str]:
    problems: list[str] = []
    for ns in namespaces:
        listed = await request_json(admin, "GET", DEPLOYMENTS.path(namespace=ns))
        deployments: list[Obj] = listed.get("items") or []
        inventory = await _get(admin, CONFIGMAPS.path(INVENTORY_NAME, namespace=ns))
        if deployments:
            wanted = desired_inventory(ns, deployments)["data"]
            if inventory is None:
                problems.append(f"inventory {ns}: missing")
            elif inventory.get("data") != wanted:
                have = sorted(inventory.get("data") or {})
                problems.append(f"inventory {ns}: lists {have}, want {sorted(wanted)}")
        elif inventory is not None:
            problems.append(f"inventory {ns}: present in a namespace without Deployments")
        for d in deployments:
            if not is_opted_in(d):
                continue
            configmaps: dict[str, Obj | None] = {}
            missing = False
            for name, optional in consumed_configmaps(d).items():
                cm = await _get(admin, CONFIGMAPS.path(name, namespace=ns))
                missing = missing or (cm is None and not optional)
                configmaps[name] = cm
            if configmaps and not missing and template_hash(d) != config_hash(configmaps):
                problems.append(f"reloader {ns}/{d['metadata']['name']}: config hash is stale")
    return problems


def resources() -> tuple[int, float]:
    """``(tasks on this event loop, RSS in MiB)``."""
    tasks = len(asyncio.all_tasks())
    rss_kib = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
                break
    return tasks, rss_kib / 1024
