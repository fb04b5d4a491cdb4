"""The workload: namespaces, the objects the sample controllers act on, and the writer.

Layout (all through a direct admin client, never through the proxies):

- namespace ``chaos-a``: ConfigMaps ``app-config-0`` and ``app-config-1`` (updated, never
  deleted) and ``canary`` (see :meth:`Writer.touch_canaries`); Deployments ``web``
  (opted in to the reloader, ``envFrom`` app-config-0), ``worker`` (opted in, volumes of
  both) and ``legacy`` (not opted in); churned ConfigMaps ``cm-NN``;
- namespace ``chaos-b``: Deployment ``api``, churned ConfigMaps ``cm-NN``, Leases
  ``lease-N`` and ``canary``; a Deployment ``batch`` that the writer deletes and creates again.

:class:`Writer` makes seeded random changes at a steady rate: create, update (data, and
the ``tier`` label that moves a ConfigMap in and out of a label-selected informer) and
delete ConfigMaps and Leases, scale Deployments, change the consumed ConfigMaps, and
delete / recreate ``batch``. It tolerates every API error (the apiserver is restarted
under it) and keeps its belief of what exists in step with the answers it gets.
:meth:`Writer.pause` returns once no write is in flight, so the checker compares caches
with a cluster that holds still.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from informer import Conflict, ConnectionFailed, InformerError, NotFound, Resource, request_json
from informer.resources import CONFIGMAPS, DEPLOYMENTS, LEASES

__all__ = ["NAMESPACES", "Writer", "WriterStats", "setup_workload"]

NS_A = "chaos-a"
NS_B = "chaos-b"
NAMESPACES = (NS_A, NS_B)
POOL = 20  # churned ConfigMaps per namespace
LEASE_POOL = 8
HOT = "chaos.informer.dev/tier=hot"
TIER_LABEL = "chaos.informer.dev/tier"
CANARY = "canary"


def deployment(name: str, *, opt_in: bool = False, configmaps: tuple[str, ...] = ()) -> Any:
    sel = {"app": name}
    container: dict[str, Any] = {"name": "main", "image": "nginx:1.27"}
    spec: dict[str, Any] = {"containers": [container]}
    if len(configmaps) == 1:
        container["envFrom"] = [{"configMapRef": {"name": configmaps[0]}}]
    elif configmaps:
        spec["volumes"] = [{"name": c, "configMap": {"name": c}} for c in configmaps]
    meta: dict[str, Any] = {"name": name, "labels": sel}
    if opt_in:
        meta["annotations"] = {"informer.dev/reload": "true"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": sel},
            "template": {"metadata": {"labels": sel}, "spec": spec},
        },
    }


FIXED_DEPLOYMENTS: tuple[tuple[str, Any], ...] = (
    (NS_A, deployment("web", opt_in=True, configmaps=("app-config-0",))),
    (NS_A, deployment("worker", opt_in=True, configmaps=("app-config-0", "app-config-1"))),
    (NS_A, deployment("legacy", configmaps=("app-config-1",))),
    (NS_B, deployment("api")),
)
BATCH = (NS_B, "batch")


async def setup_workload(admin: Any, rng: random.Random) -> None:
    """Create the namespaces, the fixed objects and half of each churned pool."""
    for ns in NAMESPACES:
        await request_json(admin, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    for i in range(2):
        body = {"metadata": {"name": f"app-config-{i}"}, "data": {"generation": "0"}}
        await request_json(admin, "POST", CONFIGMAPS.path(namespace=NS_A), body=body)
    for ns, body in FIXED_DEPLOYMENTS:
        await request_json(admin, "POST", DEPLOYMENTS.path(namespace=ns), body=body)
    await request_json(
        admin, "POST", DEPLOYMENTS.path(namespace=BATCH[0]), body=deployment(BATCH[1])
    )
    canary = _configmap(CANARY, rng)
    canary["metadata"]["labels"][TIER_LABEL] = "hot"
    await request_json(admin, "POST", CONFIGMAPS.path(namespace=NS_A), body=canary)
    await request_json(admin, "POST", LEASES.path(namespace=NS_B), body=_lease(CANARY, rng))
    for ns in NAMESPACES:
        for i in range(0, POOL, 2):
            await request_json(
                admin, "POST", CONFIGMAPS.path(namespace=ns), body=_configmap(f"cm-{i:02}", rng)
            )


def _configmap(name: str, rng: random.Random) -> Any:
    return {
        "metadata": {"name": name, "labels": {TIER_LABEL: rng.choice(["hot", "cold"])}},
        "data": {"value": str(rng.randrange(1_000_000))},
    }


def _lease(name: str, rng: random.Random) -> Any:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": f"holder-{rng.randrange(100)}", "leaseDurationSeconds": 15},
    }


@dataclass
class WriterStats:
    writes: int = 0
    failed: int = 0
    by_op: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    """Failed writes by exception type."""

    def fail(self, exc: Exception) -> None:
        self.failed += 1
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1


class Writer:
    """Seeded random writes at ``rate`` per second until cancelled (see the module)."""

    def __init__(self, admin: Any, rng: random.Random, *, rate: float) -> None:
        self.admin = admin
        self.rng = rng
        self.rate = rate
        self.stats = WriterStats()
        self._allowed = anyio.Event()
        self._allowed.set()
        self._idle = anyio.Event()
        self._idle.set()
        # Belief of which churned objects exist: (resource name, ns, name).
        self._exists: dict[tuple[str, str, str], bool] = {}
        for ns in NAMESPACES:
            for i in range(POOL):
                self._exists[("cm", ns, f"cm-{i:02}")] = i % 2 == 0
        for i in range(LEASE_POOL):
            self._exists[("lease", NS_B, f"lease-{i}")] = False
        self._exists[("batch", *BATCH)] = True
        self._canary = 0
        self._ops: list[tuple[float, Callable[[], Awaitable[str]]]] = [
            (0.55, self._churn_configmap),
            (0.2, self._churn_lease),
            (0.12, self._scale),
            (0.08, self._touch_app_config),
            (0.05, self._churn_batch),
        ]

    async def pause(self) -> None:
        """Stop writing; returns once the write in flight (if any) finished."""
        if self._allowed.is_set():
            self._allowed = anyio.Event()
        await self._idle.wait()

    def resume(self) -> None:
        self._allowed.set()

    async def run(self) -> None:
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while True:
            await self._allowed.wait()
            self._idle = anyio.Event()
            try:
                await self.write_once()
            finally:
                self._idle.set()
            next_at = max(next_at + period, time.monotonic() - period)
            await anyio.sleep(max(0.0, next_at - time.monotonic()))

    async def write_once(self) -> None:
        weights = [w for w, _ in self._ops]
        op = self.rng.choices([f for _, f in self._ops], weights)[0]
        try:
            name = await op()
        except InformerError as exc:
            self.stats.fail(exc)
            return
        self.stats.writes += 1
        self.stats.by_op[name] = self.stats.by_op.get(name, 0) + 1

    async def touch_canaries(self, *, within: float = 10.0) -> None:
        """Change one object in every watched scope, now: the ConfigMap ``canary`` of
        ``chaos-a`` (label-selected ``hot``), the Lease ``canary`` of ``chaos-b`` and the
        replicas of Deployment ``chaos-b/api`` (which also changes that namespace's
        inventory). A cache equals a fresh list only once its informer has seen them, so
        recovery is measured by a change made after the fault, never trivially. Retries
        connection failures for ``within`` seconds (an apiserver just restarted)."""
        self._canary += 1
        n = str(self._canary)
        writes = [
            (CONFIGMAPS, NS_A, CANARY, {"data": {"value": n}}),
            (LEASES, NS_B, CANARY, {"spec": {"holderIdentity": f"canary-{n}"}}),
            (DEPLOYMENTS, NS_B, "api", {"spec": {"replicas": 1 + self._canary % 2}}),
        ]
        with anyio.fail_after(within):
            for resource, ns, name, patch in writes:
                while True:
                    try:
                        await self._patch(resource, ns, name, patch)
                        break
                    except ConnectionFailed:
                        await anyio.sleep(0.1)

    async def delete_some(self, count: int) -> int:
        """Delete up to ``count`` existing churned ConfigMaps now (deletes to be missed
        by a disconnected informer); returns how many went through."""
        done = 0
        existing = [k for k, v in self._exists.items() if v and k[0] == "cm"]
        for key in self.rng.sample(existing, min(count, len(existing))):
            try:
                await self._delete(CONFIGMAPS, key)
                done += 1
            except InformerError as exc:
                self.stats.fail(exc)
        return done

    # -- operations -----------------------------------------------------------------------
    async def _delete(self, resource: Resource, key: tuple[str, str, str]) -> None:
        with contextlib.suppress(NotFound):
            await request_json(self.admin, "DELETE", resource.path(key[2], namespace=key[1]))
        self._exists[key] = False

    async def _create(self, resource: Resource, key: tuple[str, str, str], body: Any) -> None:
        with contextlib.suppress(Conflict):  # AlreadyExists: our belief was wrong
            await request_json(self.admin, "POST", resource.path(namespace=key[1]), body=body)
        self._exists[key] = True

    async def _patch(self, resource: Resource, ns: str, name: str, body: Any) -> None:
        await request_json(
            self.admin,
            "PATCH",
            resource.path(name, namespace=ns),
            body=body,
            content_type="application/merge-patch+json",
        )

    async def _churn_configmap(self) -> str:
        ns = self.rng.choice(NAMESPACES)
        key = ("cm", ns, f"cm-{self.rng.randrange(POOL):02}")
        if not self._exists[key]:
            await self._create(CONFIGMAPS, key, _configmap(key[2], self.rng))
            return "configmap.create"
        if self.rng.random() < 0.3:
            await self._delete(CONFIGMAPS, key)
            return "configmap.delete"
        patch: dict[str, Any] = {"data": {"value": str(self.rng.randrange(1_000_000))}}
        if self.rng.random() < 0.3:
            patch["metadata"] = {"labels": {TIER_LABEL: self.rng.choice(["hot", "cold"])}}
        try:
            await self._patch(CONFIGMAPS, ns, key[2], patch)
        except NotFound:
            self._exists[key] = False
        return "configmap.update"

    async def _churn_lease(self) -> str:
        key = ("lease", NS_B, f"lease-{self.rng.randrange(LEASE_POOL)}")
        if not self._exists[key]:
            await self._create(LEASES, key, _lease(key[2], self.rng))
            return "lease.create"
        if self.rng.random() < 0.3:
            await self._delete(LEASES, key)
            return "lease.delete"
        patch = {"spec": {"holderIdentity": f"holder-{self.rng.randrange(100)}"}}
        try:
            await self._patch(LEASES, NS_B, key[2], patch)
        except NotFound:
            self._exists[key] = False
        return "lease.update"

    async def _scale(self) -> str:
        ns, body = self.rng.choice(FIXED_DEPLOYMENTS)
        patch = {"spec": {"replicas": self.rng.randrange(1, 6)}}
        await self._patch(DEPLOYMENTS, ns, body["metadata"]["name"], patch)
        return "deployment.scale"

    async def _touch_app_config(self) -> str:
        name = f"app-config-{self.rng.randrange(2)}"
        patch = {"data": {"generation": str(self.rng.randrange(1_000_000))}}
        await self._patch(CONFIGMAPS, NS_A, name, patch)
        return "app-config.update"

    async def _churn_batch(self) -> str:
        key = ("batch", *BATCH)
        if self._exists[key]:
            await self._delete(DEPLOYMENTS, key)
            return "batch.delete"
        await self._create(DEPLOYMENTS, key, deployment(BATCH[1]))
        return "batch.create"
