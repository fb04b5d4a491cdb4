"""The local control plane (``informer.testing.ControlPlane``) of benchmarks 2-4.

``sync`` and ``memory`` are in :mod:`bench._sync`, ``latency`` in :mod:`bench._latency`.
The control plane is started once per ``python -m bench`` run and the data sets are
created on first use (concurrent POSTs; through the Go peer when it is built, which is
several times faster than Python).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bench._config import Config
from bench._objects import configmap_spec, deployment_spec
from bench._proc import clientgo_binary, run_peer


@dataclass(frozen=True)
class DataSet:
    key: str
    kind: str
    count: int

    @property
    def namespace(self) -> str:
        return f"bench-{self.key}"

    @property
    def label(self) -> str:
        noun = "ConfigMaps" if self.kind == "configmaps" else "Deployments"
        return f"{self.count:,} {noun}"


def datasets(cfg: Config) -> list[DataSet]:
    out = []
    for key, count in cfg.sync_sizes.items():
        kind = "deployments" if key.startswith("deploy") else "configmaps"
        out.append(DataSet(key, kind, count))
    return out


class Cluster:
    """One control plane for the run; data sets created on demand."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.cp: Any = None
        self.kubeconfig = Path()
        self._populated: set[str] = set()
        self.populate_seconds: dict[str, float] = {}

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Cluster]:
        from informer.testing import ControlPlane

        async with ControlPlane() as cp:
            self.cp = cp
            self.kubeconfig = cp.kubeconfig_path
            yield self

    async def ensure(self, ds: DataSet) -> None:
        if ds.key in self._populated:
            return
        print(f"  creating {ds.label} in namespace {ds.namespace} ...", flush=True)
        start = time.perf_counter()
        binary = clientgo_binary(build=self.cfg.build_go).path
        if binary is not None and self.cfg.wants("client-go"):
            run = await run_peer(
                [
                    str(binary),
                    "-mode",
                    "populate",
                    "-kubeconfig",
                    str(self.kubeconfig),
                    "-resource",
                    ds.kind,
                    "-namespace",
                    ds.namespace,
                    "-count",
                    str(ds.count),
                ],
                time_limit=3600,
            )
            if not run.ok or (run.result or {}).get("failures"):
                raise RuntimeError(f"populating {ds.label} failed: {run.error or run.result}")
        else:
            await self._populate_python(ds)
        self.populate_seconds[ds.key] = time.perf_counter() - start
        print(f"  created {ds.label} in {self.populate_seconds[ds.key]:.1f}s", flush=True)
        self._populated.add(ds.key)

    async def _populate_python(self, ds: DataSet) -> None:
        from informer import new_api_client
        from informer._rest.request import request_json

        api = await new_api_client(kubeconfig=str(self.kubeconfig))
        try:
            await request_json(
                api, "POST", "/api/v1/namespaces", body={"metadata": {"name": ds.namespace}}
            )
            if ds.kind == "configmaps":
                path = f"/api/v1/namespaces/{ds.namespace}/configmaps"
                make = configmap_spec
            else:
                path = f"/apis/apps/v1/namespaces/{ds.namespace}/deployments"
                make = deployment_spec
            next_i = 0

            async def worker() -> None:
                nonlocal next_i
                while next_i < ds.count:
                    i = next_i
                    next_i += 1
                    await request_json(api, "POST", path, body=make(i))

            async with anyio.create_task_group() as tg:
                for _ in range(32):
                    tg.start_soon(worker)
        finally:
            await api.close()


def assets_available() -> str | None:
    """Why the control-plane benchmarks cannot run (``None`` if they can)."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if not assets:
        return "KUBEBUILDER_ASSETS is not set (`make bench` sets it; or run `make control-plane`)"
    if not all((Path(assets) / b).exists() for b in ("kube-apiserver", "etcd")):
        return f"KUBEBUILDER_ASSETS={assets} lacks kube-apiserver/etcd"
    return None
