"""The soak: a real control plane, informers and the sample controllers behind the
proxies, a writer, and a seeded sequence of faults each followed by convergence checks.

Topology::

    writer, checks, controller writes ──(admin, direct)──────────────────▶ kube-apiserver
    informers, controller reads ──▶ TcpProxy ──▶ FaultProxy ──(TLS, admin)──▶    + etcd

The apiserver runs with the watch cache off for ConfigMaps only
(``--watch-cache-sizes=configmaps#0``): a compaction makes ConfigMap watches answer 410
as with an etcd-served resource, while Deployments and Leases keep the watch cache (and
its bookmarks).

Faults are drawn from a bag (each enabled kind once, in seeded random order, then the
bag refills), so that even a short run covers every kind. Between faults the writer runs
for 1-3 s; during a fault it keeps running; at the fault's end it pauses, changes one
canary object in every watched scope, and the checks run: caches and handler views
against fresh lists (the recovery time is from the fault's end until they all match,
canaries included), then the controllers' invariants, then the task count and RSS.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from kube_informer_samples import ConfigMapReloader, DeploymentInventory
from kube_informer_samples.deployment_inventory import INVENTORY_NAME

from informer import Controller, SharedIndexInformer, SharedInformerFactory
from informer.cache import strip_managed_fields
from informer.resources import CONFIGMAPS, DEPLOYMENTS, LEASES
from informer.testing import ControlPlane, TcpProxy

from .checks import controller_problems, converge, poll, resources
from .fault_proxy import FaultProxy
from .faults import FAULTS, FaultEnv
from .observer import Watched
from .report import FaultRecord, Resources, evidence_text, label
from .token import TokenIdentity
from .workload import HOT, NAMESPACES, NS_A, NS_B, Writer, WriterStats, setup_workload

__all__ = ["APISERVER_ARGS", "SoakConfig", "SoakResult", "run_soak"]

APISERVER_ARGS = ("--watch-cache-sizes=configmaps#0",)


@dataclass(frozen=True)
class SoakConfig:
    seed: int
    duration: float
    faults: tuple[str, ...]
    rate: float = 8.0
    """Writes per second."""
    recovery_timeout: float = 30.0
    inactivity_timeout: float = 3.0
    """The informers' inactivity timeout; a stall lasts 1.5x it plus up to 2 s."""
    task_factor: float = 2.0
    """Task bound: ``task_factor * baseline + 20``."""
    rss_growth_mib: float = 200.0
    """RSS bound: baseline + this."""
    sync_timeout: float = 60.0


@dataclass
class SoakResult:
    records: list[FaultRecord] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """Failures outside any one fault: setup, the baseline, the end of the run."""
    resources: Resources | None = None
    writer: WriterStats = field(default_factory=WriterStats)
    reconciles: dict[str, str] = field(default_factory=dict)
    handler_events: str = ""
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and not any(r.failures for r in self.records)


class _Evidence:
    """Counts what the reflectors report (``on_watch_error``) and their stats."""

    def __init__(self) -> None:
        self.errors: Counter[str] = Counter()
        self.informers: list[SharedIndexInformer] = []

    def on_watch_error(self, exc: BaseException) -> None:
        self.errors[label(type(exc).__name__)] += 1

    def snapshot(self) -> Counter[str]:
        counts = Counter(self.errors)
        for informer in self.informers:
            stats = informer.reflector.stats
            counts["stall"] += stats.stalls
            counts["skipped"] += stats.skipped
            counts["relist"] += stats.relists
        return counts


def _admin_files(cp: ControlPlane) -> tuple[str, str, str]:
    """(CA, client certificate, client key) of the admin kubeconfig."""
    config = json.loads(cp.kubeconfig_path.read_text())
    user = config["users"][0]["user"]
    ca = config["clusters"][0]["cluster"]["certificate-authority"]
    return ca, user["client-certificate"], user["client-key"]


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def run_soak(cfg: SoakConfig, say: Callable[[str], None]) -> SoakResult:
    """Run the whole soak; ``say`` receives progress lines. Never raises for a
    divergence (it is recorded); raises when the control plane cannot be driven."""
    result = SoakResult()
    began = time.monotonic()
    evidence = _Evidence()
    say(f"chaos: seed={cfg.seed} duration={cfg.duration:.0f}s faults={','.join(cfg.faults)}")
    async with ControlPlane(apiserver_args=APISERVER_ARGS) as cp, cp.api_client() as admin:
        say(f"control plane up in {time.monotonic() - began:.1f}s ({cp.host})")
        await setup_workload(admin, random.Random(f"{cfg.seed}/setup"))
        ca, cert, key = _admin_files(cp)
        proxy = FaultProxy(
            upstream_port=_port(cp.host),
            serving_cert=cp.dir / "apiserver.crt",
            serving_key=cp.dir / "apiserver.key",
            ca_file=Path(ca),
            client_cert=Path(cert),
            client_key=Path(key),
        )
        async with (
            proxy,
            TcpProxy("127.0.0.1", proxy.port) as tcp,
            contextlib.AsyncExitStack() as stack,
        ):
            via = await cp.api_client()
            stack.push_async_callback(via.close)
            via.configuration.host = tcp.url
            options: dict[str, Any] = {
                "backoff_initial": 0.2,
                "backoff_cap": 2.0,
                "min_watch_timeout": 30.0,
                "inactivity_timeout": cfg.inactivity_timeout,
                "on_watch_error": evidence.on_watch_error,
            }
            main = SharedInformerFactory(
                via, transform=strip_managed_fields, reflector_options=options
            )
            listing = SharedInformerFactory(
                via,
                transform=strip_managed_fields,
                reflector_options={**options, "use_watch_list": True},
            )
            factories = [main, listing]
            controllers: list[Controller] = [
                ConfigMapReloader(main, admin),
                DeploymentInventory(main, admin),
            ]
            inventories = f"metadata.name={INVENTORY_NAME}"
            watched = [
                Watched("configmaps", main.informer_for(CONFIGMAPS), CONFIGMAPS),
                Watched("deployments", main.informer_for(DEPLOYMENTS), DEPLOYMENTS),
                Watched(
                    "inventories",
                    main.informer_for(CONFIGMAPS, field_selector=inventories),
                    CONFIGMAPS,
                    field_selector=inventories,
                ),
                Watched(
                    f"configmaps@{NS_A}[hot] wl",
                    listing.informer_for(CONFIGMAPS, namespace=NS_A, label_selector=HOT),
                    CONFIGMAPS,
                    namespace=NS_A,
                    label_selector=HOT,
                ),
                Watched(
                    f"leases@{NS_B} wl",
                    listing.informer_for(LEASES, namespace=NS_B),
                    LEASES,
                    namespace=NS_B,
                ),
            ]
            token: TokenIdentity | None = None
            if "token-rotation" in cfg.faults:
                token = TokenIdentity(
                    admin, namespace=NS_A, folder=cp.dir / "chaos-token", ca_file=ca
                )
                await token.create(tcp.url, direct=cp.host)
                token_client = await token.api_client()
                stack.push_async_callback(token_client.close)
                by_token = SharedInformerFactory(
                    token_client, transform=strip_managed_fields, reflector_options=options
                )
                factories.append(by_token)
                watched.append(
                    Watched(
                        f"configmaps@{NS_A} token",
                        by_token.informer_for(CONFIGMAPS, namespace=NS_A),
                        CONFIGMAPS,
                        namespace=NS_A,
                    )
                )
            evidence.informers = list({id(w.informer): w.informer for w in watched}.values())
            for factory in factories:
                await stack.enter_async_context(factory)
            tg = await stack.enter_async_context(anyio.create_task_group())
            writer = Writer(admin, random.Random(f"{cfg.seed}/writer"), rate=cfg.rate)
            env = FaultEnv(
                cp=cp,
                tcp=tcp,
                proxy=proxy,
                writer=writer,
                rng=random.Random(f"{cfg.seed}/faults"),
                inactivity_timeout=cfg.inactivity_timeout,
                token=token,
            )
            soak = _Soak(cfg, result, env, admin, watched, controllers, evidence, say)
            try:
                await soak.run(tg, factories)
            finally:
                tg.cancel_scope.cancel()
    result.elapsed = time.monotonic() - began
    return result


class _Soak:
    """The fault loop and its checks (one instance per run)."""

    def __init__(
        self,
        cfg: SoakConfig,
        result: SoakResult,
        env: FaultEnv,
        admin: Any,
        watched: list[Watched],
        controllers: list[Controller],
        evidence: _Evidence,
        say: Callable[[str], None],
    ) -> None:
        self.cfg = cfg
        self.result = result
        self.env = env
        self.admin = admin
        self.watched = watched
        self.controllers = controllers
        self.evidence = evidence
        self.say = say
        self.crashes: list[str] = []
        self.anomalies_seen = 0
        self.started = 0.0

    async def _guard(
        self, controller: Controller, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        """Run a controller; record it if it ever stops by itself."""
        try:
            await controller.run(task_status=task_status)
        except Exception as exc:
            self.crashes.append(f"controller {controller.name} crashed: {exc!r}")
        else:
            self.crashes.append(f"controller {controller.name} returned")

    async def run(self, tg: anyio.abc.TaskGroup, factories: list[SharedInformerFactory]) -> None:
        cfg, env, result = self.cfg, self.env, self.result
        rng = env.rng
        with anyio.fail_after(cfg.sync_timeout):
            for factory in factories:
                await factory.wait_for_cache_sync()
            for controller in self.controllers:
                await tg.start(self._guard, controller)
        _, problems = await converge(
            self.watched, self.admin, since=time.monotonic(), within=cfg.recovery_timeout
        )
        if problems:
            result.failures += [f"baseline: {p}" for p in problems]
            self.say("baseline did not converge:\n  " + "\n  ".join(problems))
            return
        tasks, rss = resources()
        result.resources = Resources(
            base_tasks=tasks,
            base_rss_mib=rss,
            max_tasks=int(tasks * cfg.task_factor) + 20,
            max_rss_mib=rss + cfg.rss_growth_mib,
        )
        self.say(f"informers synced; baseline: {tasks} tasks, RSS {rss:.0f} MiB")
        tg.start_soon(env.writer.run, name="chaos writer")
        self.started = time.monotonic()
        deadline = self.started + cfg.duration
        bag: list[str] = []
        while time.monotonic() < deadline:
            env.writer.resume()
            await anyio.sleep(rng.uniform(1.0, 3.0))
            if not bag:
                bag = list(cfg.faults)
                rng.shuffle(bag)
            record = await self._fault(bag.pop())
            result.records.append(record)
            self._progress(record)
        await env.writer.pause()
        result.writer = env.writer.stats
        result.failures += self.crashes
        result.reconciles = {
            c.name: f"{sum(c.stats.total.values())} reconciles, {c.stats.errors} errors, "
            f"{c.stats.dropped} dropped"
            for c in self.controllers
        }
        views = [w.view for w in self.watched]
        result.handler_events = (
            f"{sum(v.adds for v in views)} adds, {sum(v.updates for v in views)} updates, "
            f"{sum(v.deletes for v in views)} deletes ({sum(v.tombstones for v in views)} "
            "tombstones)"
        )

    async def _fault(self, name: str) -> FaultRecord:
        env = self.env
        before = self.evidence.snapshot()
        began = time.monotonic()
        detail = await FAULTS[name](env)
        ended = time.monotonic()
        await env.writer.pause()
        await env.writer.touch_canaries()
        record = FaultRecord(name, at=began - self.started, held=ended - began, detail=detail)
        timeout = self.cfg.recovery_timeout
        record.recovery, problems = await converge(
            self.watched, self.admin, since=ended, within=timeout
        )
        record.failures += [f"not converged after {timeout:.0f}s: {p}" for p in problems]
        record.controllers, problems = await poll(
            lambda: controller_problems(self.admin, NAMESPACES), since=ended, within=timeout
        )
        record.failures += [
            f"controllers not converged after {timeout:.0f}s: {p}" for p in problems
        ]
        anomalies = sum(w.view.anomaly_count for w in self.watched)
        if anomalies > self.anomalies_seen:
            kept = [a for w in self.watched for a in w.view.anomalies]
            record.failures.append(
                f"{anomalies - self.anomalies_seen} handler event anomalies; first ones: "
                + "; ".join(kept[:5])
            )
            self.anomalies_seen = anomalies
        if self.crashes:
            record.failures += self.crashes
            self.result.failures += self.crashes
            self.crashes = []
        assert self.result.resources is not None
        record.failures += self.result.resources.observe(*resources())
        record.evidence = self.evidence.snapshot() - before
        return record

    def _progress(self, r: FaultRecord) -> None:
        recovered = f"recovered in {r.recovery:.2f}s" if r.recovery is not None else "NOT recovered"
        ctrl = (
            f"controllers {r.controllers:.2f}s" if r.controllers is not None else "controllers NOT"
        )
        line = (
            f"[{r.at:6.1f}s] {r.name}: {r.detail}; {recovered}, {ctrl} "
            f"[{evidence_text(r.evidence)}]"
        )
        if r.failures:
            line += "\n  FAILED: " + "\n  FAILED: ".join(r.failures)
        self.say(line)
