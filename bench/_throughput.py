"""Benchmark 1: pipeline throughput against the replay server.

For each kind (Deployments 1.8 KB, ConfigMaps 0.3 KB) a replay server process serves a
list of ``objects`` and a watch of ``events`` MODIFIED events. Each peer runs in its own
process, one after the other (rounds interleave the peers); its rate is the events its
handler counted (which must be every event sent) over the time from the server receiving
its watch request to its handler seeing the last event. Medians over the rounds.

client-go runs twice: JSON and protobuf (``-protobuf``; the replay server then serves the
same objects in the API server's protobuf encoding, see :mod:`bench._replay`). A
protobuf run fails unless its watch was answered in protobuf. "vs client-go" is against
the faster of its modes, per kind.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import orjson

from bench._config import Config
from bench._kubeconfig import write_http_kubeconfig
from bench._outcome import Outcome
from bench._proc import (
    CLIENTGO_LIST_MODE,
    CLIENTGO_PROTOBUF,
    PeerRun,
    clientgo_format_problem,
    clientgo_run,
    python_peer,
    run_peer,
    unavailable_python_peer,
)
from bench._report import fmt_rate, fmt_ratio, median, table

KIND_LABEL = {"deployments": "Deployments", "configmaps": "ConfigMaps"}


@dataclass(frozen=True)
class Client:
    name: str
    peer: str
    """The peer's name for ``--peers`` filtering and skip checks."""
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    @property
    def protobuf(self) -> bool:
        """client-go speaking Kubernetes protobuf (else JSON)."""
        return CLIENTGO_PROTOBUF in self.args


CLIENTS = (
    Client("decode floor (aiohttp + orjson + dict)", "floor"),
    Client("kube-informer SharedIndexInformer", "ours"),
    Client("kube-informer, --gc-freeze", "ours", ("--gc", "freeze")),
    Client("decode floor, --gc-freeze", "floor", ("--gc", "freeze")),
    Client("client-go SharedIndexInformer", "client-go", env=CLIENTGO_LIST_MODE),
    Client(
        "client-go SharedIndexInformer (protobuf, list)",
        "client-go",
        (CLIENTGO_PROTOBUF,),
        env=CLIENTGO_LIST_MODE,
    ),
    Client("kubernetes_asyncio watch.Watch (models)", "kubernetes_asyncio"),
    Client("official kubernetes.informer (models)", "official"),
    Client("kopf @on.event (no-op)", "kopf"),
)


class ReplayServer:
    """The replay server process; ``clientgo``: the client-go binary that encodes its
    protobuf bodies (none: it serves JSON only)."""

    def __init__(self, kind: str, objects: int, events: int, clientgo: Path | None) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "bench._replay",
            "--kind",
            kind,
            "--objects",
            str(objects),
            "--events",
            str(events),
        ]
        if clientgo is not None:
            self.argv += ["--clientgo", str(clientgo)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.event_bytes = 0
        self.protobuf_event_bytes = 0
        self.protobuf_error = ""
        """Why it serves no protobuf (``""``: it does)."""

    def __enter__(self) -> ReplayServer:
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the replay server did not start")
        info = orjson.loads(line)
        self.port = info["port"]
        self.event_bytes = info["event_bytes"]
        self.protobuf_event_bytes = info["protobuf_event_bytes"]
        self.protobuf_error = info["protobuf_error"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the server exits when its stdin closes
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def watches(self) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/_bench/watches"
        with urllib.request.urlopen(url, timeout=10) as resp:
            data: list[dict[str, Any]] = orjson.loads(resp.read())
        return data


async def measure(
    client: Client,
    server: ReplayServer,
    kubeconfig: Path,
    kind: str,
    cfg: Config,
    profile: Path | None,
) -> PeerRun:
    """One run of one client; ``extra["rate"]``: events it received per second.

    A run fails unless the client received exactly the events the server sent (its
    own count, from its handler) and the server saw its streaming watch.
    """
    sent = events_for(kind, cfg)
    common = ["--kubeconfig", str(kubeconfig), "--resource", kind]
    if client.protobuf and server.protobuf_error:
        return PeerRun(error=f"the replay server serves no protobuf: {server.protobuf_error}")
    if client.peer == "client-go":
        binary, why_not = clientgo_run(build=cfg.build_go)
        if binary is None:
            assert why_not is not None
            return why_not
        argv = [
            str(binary),
            "-mode",
            "throughput",
            "-kubeconfig",
            str(kubeconfig),
            "-resource",
            kind,
            "-events",
            str(sent),
            "-timeout",
            f"{cfg.timeout:.0f}s",
            *client.args,
        ]
    else:
        if (missing := unavailable_python_peer(client.peer)) is not None:
            return missing
        argv = python_peer(
            client.peer,
            "--mode",
            "throughput",
            *common,
            "--events",
            str(sent),
            "--objects",
            str(cfg.objects),
            "--timeout",
            str(cfg.timeout),
            *client.args,
        )
        if profile is not None:
            argv += ["--profile", str(profile)]
    launched = time.time()
    run = await run_peer(argv, time_limit=cfg.timeout + 30, env=dict(client.env))
    if not run.ok:
        return run
    assert run.result is not None
    received = run.result.get("events")
    if received != sent:
        return PeerRun(error=f"received {received} of {sent} events", stderr=run.stderr)
    if client.peer == "client-go" and (problem := clientgo_format_problem(argv, run.result)):
        return PeerRun(error=problem, stderr=run.stderr)
    watches = await anyio.to_thread.run_sync(server.watches)
    streamed = [w for w in watches if w["streams"] and w["time"] >= launched]
    if not streamed:
        return PeerRun(error="the server saw no streaming watch from this client")
    if streamed[0]["protobuf"] != client.protobuf:
        got = "protobuf" if streamed[0]["protobuf"] else "JSON"
        return PeerRun(error=f"its watch was served in {got}", stderr=run.stderr)
    elapsed = run.result["last_event_unix"] - streamed[0]["time"]
    if elapsed <= 0:
        return PeerRun(error=f"its last event came {-elapsed:.3f} s before its watch started")
    run.extra["rate"] = received / elapsed
    return run


def _unavailable(client: Client, cfg: Config) -> PeerRun | None:
    """Why ``client`` cannot run here (a :class:`PeerRun` with ``unavailable``), or None."""
    if client.peer == "client-go":
        return clientgo_run(build=cfg.build_go)[1]
    return unavailable_python_peer(client.peer)


def events_for(kind: str, cfg: Config) -> int:
    """ConfigMap events are 5x cheaper: 5x more of them keep the timed interval long."""
    return cfg.events * 5 if kind == "configmaps" else cfg.events


async def run(cfg: Config, outcome: Outcome) -> str:
    """Measure every wanted client on both kinds; one row each in ``outcome``.

    A client that fails in any round fails its row (later rounds of it are not run).
    """
    kinds = ("deployments", "configmaps")
    rates: dict[tuple[str, str], list[float]] = {}
    cells: dict[tuple[str, str], str] = {}  # the table cell of a row with no figure
    event_bytes: dict[str, int] = {}
    pb_event_bytes: dict[str, int] = {}
    clients = [c for c in CLIENTS if cfg.wants(c.peer)]
    for c in clients:
        if (why_not := _unavailable(c, cfg)) is not None:
            for kind in kinds:
                cells[(c.name, kind)] = outcome.unavailable(
                    "throughput", kind, c.name, c.peer, why_not.error or "?"
                )
                print(f"  throughput {kind:11s}: {c.name}: {cells[(c.name, kind)]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for kind in kinds:
            if all((c.name, kind) in cells for c in clients):
                continue  # nothing to measure: no server
            encoder = None
            if any(c.protobuf and (c.name, kind) not in cells for c in clients):
                encoder = clientgo_run(build=cfg.build_go)[0]
            with ReplayServer(kind, cfg.objects, events_for(kind, cfg), encoder) as server:
                event_bytes[kind] = server.event_bytes
                pb_event_bytes[kind] = server.protobuf_event_bytes
                kubeconfig = write_http_kubeconfig(Path(tmp) / f"{kind}.kubeconfig", server.port)
                for round_ in range(cfg.repeat):
                    for c in clients:
                        key = (c.name, kind)
                        if key in cells:
                            continue
                        profile = None
                        if (
                            cfg.profile_dir is not None
                            and c.peer == "ours"
                            and round_ == 0
                            and not c.args
                        ):
                            profile = cfg.profile_dir / f"throughput-ours-{kind}.txt"
                        result = await measure(c, server, kubeconfig, kind, cfg, profile)
                        rate = result.extra.get("rate")
                        if rate is not None:
                            rates.setdefault(key, []).append(rate)
                            said = f"{fmt_rate(rate)} ev/s"
                            if calls := (result.result or {}).get("handler_calls"):
                                said += f" ({calls} handler calls)"
                        elif result.unavailable:
                            said = cells[key] = outcome.unavailable(
                                "throughput", kind, c.name, c.peer, result.error or "?"
                            )
                        else:
                            said = cells[key] = outcome.failed(
                                "throughput", kind, c.name, c.peer, result.error or "failed"
                            )
                        print(
                            f"  throughput {kind:11s} round {round_ + 1}: {c.name}: {said}",
                            flush=True,
                        )
    med: dict[tuple[str, str], float | None] = {}
    for c in clients:
        for kind in kinds:
            key = (c.name, kind)
            if key not in cells:
                v = median(rates.get(key, []))
                if cell := outcome.ok("throughput", kind, c.name, c.peer, v, "events/s"):
                    cells[key] = cell
                else:
                    med[key] = v
    floor = CLIENTS[0].name
    ours = CLIENTS[1].name
    clientgo = {kind: _fastest_clientgo(med, kind) for kind in kinds}
    header = ["client"]
    for kind in kinds:
        label = KIND_LABEL[kind]
        header += [f"{label} ev/s", "vs floor", "vs client-go", "ours is"]
    rows = []
    for c in clients:
        row = [c.name]
        for kind in kinds:
            key = (c.name, kind)
            v = med.get(key)
            if key in cells or v is None:
                row += [cells.get(key, "-"), "", "", ""]
                continue
            ours_v = med.get((ours, kind))
            row += [
                fmt_rate(v),
                fmt_ratio(v, med.get((floor, kind))),
                fmt_ratio(v, med.get((clientgo[kind] or "", kind))),
                "" if c.peer == "ours" else fmt_ratio(ours_v, v),
            ]
        rows.append(row)
    notes = [
        f"{cfg.events} Deployment and {events_for('configmaps', cfg)} ConfigMap MODIFIED "
        f"events over {cfg.objects} objects "
        f"({event_bytes.get('deployments', 0)} B and {event_bytes.get('configmaps', 0)} B per "
        "event line; the same events in protobuf: "
        f"{pb_event_bytes.get('deployments', 0)} B and {pb_event_bytes.get('configmaps', 0)} "
        f"B per frame); median of {cfg.repeat} round(s). Rate = the events the client "
        "counted (a run fails unless that is every event sent) / the time from the server "
        "receiving the watch to the handler seeing the last event; every client in its own "
        "process. 'ours is' = kube-informer's rate / that client's. kopf batches an "
        "object's events and calls its handler with the latest only: it counts the events "
        "whose resourceVersion its handler has seen reached, and its run ends when every "
        "object reached its final state. client-go (protobuf, list): the objects encoded "
        "by apimachinery's protobuf serializer (byte for byte what the API server sends), "
        "length-prefixed WatchEvent frames. 'vs client-go' = that rate / the faster "
        "client-go mode's ("
        + "; ".join(f"{KIND_LABEL[k]}: {clientgo[k] or '-'}" for k in kinds)
        + ").",
    ]
    notes += _targets(med, ours, floor, clientgo, kinds)
    return table("Pipeline throughput (replay server, events/s)", header, rows, notes)


def _fastest_clientgo(med: dict[tuple[str, str], float | None], kind: str) -> str | None:
    """The client-go mode (row name) with the highest rate on ``kind``, if any ran."""
    rates = [
        (v, c.name)
        for c in CLIENTS
        if c.peer == "client-go" and (v := med.get((c.name, kind))) is not None
    ]
    return max(rates)[1] if rates else None


FLOOR_TARGET = {"deployments": 0.85, "configmaps": 0.55}
"""Issue 23: the share of the decode floor's rate, per kind, with and without the freeze."""
CLIENTGO_TARGET = {"deployments": 0.5, "configmaps": 1.3}
"""Issue 23 (ConfigMaps) / issue 6: the rate against client-go's faster mode."""


def _targets(
    med: dict[tuple[str, str], float | None],
    ours: str,
    floor: str,
    clientgo: dict[str, str | None],
    kinds: tuple[str, ...],
) -> list[str]:
    pairs = [
        (ours, floor, "GC on"),
        ("kube-informer, --gc-freeze", "decode floor, --gc-freeze", "--gc-freeze"),
    ]
    out = []
    for kind in kinds:
        for mine, base, label in pairs:
            o = med.get((mine, kind))
            if o is None:
                continue
            checks = []
            if (f := med.get((base, kind))) is not None:
                want = FLOOR_TARGET[kind]
                verdict = "met" if o / f >= want else "MISSED"
                checks.append(f"{o / f:.0%} of the floor (>= {want:.0%}: {verdict})")
            go = clientgo[kind]
            if go is not None and (g := med.get((go, kind))) is not None:
                want = CLIENTGO_TARGET[kind]
                verdict = "met" if o / g >= want else "MISSED"
                checks.append(f"{o / g:.2f}x {go} (>= {want:g}x: {verdict})")
            for peer in ("kubernetes_asyncio watch.Watch (models)", "kopf @on.event (no-op)"):
                if (p := med.get((peer, kind))) is not None:
                    name = peer.split(" ")[0]
                    checks.append(
                        f"{o / p:.1f}x {name} (>= 10x: {'met' if o / p >= 10 else 'MISSED'})"
                    )
            out.append(f"- {KIND_LABEL[kind]}, {label}: " + "; ".join(checks))
    return out
