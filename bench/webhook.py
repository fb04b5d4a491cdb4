"""``python -m bench webhook`` (or ``python -m bench.webhook``): admission requests per
second and latency of a trivial validating webhook, kube-informer's webhook server vs
controller-runtime's, against the same AdmissionReview bodies, in the same run.

- **ours**: :class:`informer.webhook.WebhookServer` with one ``ValidatingWebhook`` that
  allows everything (the server the Manager runs), in a child process
  (``python -m bench.webhook serve``), with the cyclic GC as a started Manager leaves it
  by default (``gc_freeze=True``: what was allocated before serving frozen, thresholds
  raised; ``GcState``). With the GC as Python starts it, every full collection walks the
  imported modules' objects while requests wait: p99 1.26-2.49x controller-runtime's in
  three quiet runs, 1.36-1.41x frozen (bench/RESULTS.md, "Webhooks");
- **controller-runtime**: ``webhook.NewServer`` with an ``admission.Webhook`` allowing
  everything (``bench/webhookgo``, built by Go into ``.cache/bench/``).

Both serve HTTPS (TLS 1.2+, the same certificate from a generated CA) on loopback. The
load is the Go program's open-loop generator (``webhookgo load``): one request every
1/rate seconds whatever the answers take, over kept-alive connections as kube-apiserver
sends them (25 idle per host), the body an AdmissionReview of a Deployment CREATE
(about 3 KB). Each round measures both servers, alternating which goes first, after a
2 s warm-up at the same rate; the figures are the medians over the rounds. "Over the
timeout" counts answers slower than the webhook's ``timeoutSeconds`` (10 s), errors
anything but a 200 answer. The 1-minute load average (``/proc/loadavg``) before each
measurement is printed next to it: other processes share the machine.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import orjson

from bench._outcome import Outcome
from bench._proc import ROOT, GoBinary, go_build, go_fresh

GO_SRC = ROOT / "bench" / "webhookgo"
GO_BIN = ROOT / ".cache" / "bench" / "webhookgo"
PATH = "/validate"
TIMEOUT_SECONDS = 10
PEERS = ("ours", "controller-runtime")
LABELS = {
    "ours": "kube-informer WebhookServer",
    "controller-runtime": "controller-runtime webhook.Server",
}


def review_body() -> bytes:
    """An AdmissionReview of a Deployment CREATE, as kube-apiserver sends one."""
    container = {
        "name": "web",
        "image": "registry.example.com/shop/web:1.27.3",
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "env": [{"name": f"SETTING_{i}", "value": f"value-{i}"} for i in range(12)],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        },
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 10},
    }
    labels = {
        "app.kubernetes.io/name": "web",
        "app.kubernetes.io/part-of": "shop",
        "tier": "frontend",
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": labels,
            "annotations": {"team": "storefront"},
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container, {**container, "name": "sidecar"}]},
            },
        },
    }
    request = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web",
        "namespace": "shop",
        "operation": "CREATE",
        "userInfo": {
            "username": "admin",
            "uid": "014fbff9a07c",
            "groups": ["system:authenticated"],
        },
        "object": deployment,
        "oldObject": None,
        "dryRun": False,
        "options": {
            "kind": "CreateOptions",
            "apiVersion": "meta.k8s.io/v1",
            "fieldManager": "kubectl",
        },
    }
    return orjson.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    )


# ------------------------------------------------------------------ the Python server


def serve(port: int, cert_dir: str) -> None:
    """``python -m bench.webhook serve``: our server until SIGTERM (stdout: ``serving``)."""
    from informer._manager.startup import GcState
    from informer.resources import DEPLOYMENTS
    from informer.webhook import AdmissionRequest, ValidatingWebhook, WebhookServer

    def allow(request: AdmissionRequest) -> None:
        return None

    hook = ValidatingWebhook(DEPLOYMENTS, allow, name="vbench.example.com", path=PATH)

    async def main() -> None:
        server = WebhookServer([hook], cert_dir=cert_dir)
        await server.bind(f"127.0.0.1:{port}")
        gc_state = GcState()  # as a Manager with no informers to sync: off, then frozen
        gc_state.disable()
        gc_state.freeze()
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with anyio.create_task_group() as tg:
                await tg.start(server.serve)
                print("serving", flush=True)
                async for _ in signals:
                    tg.cancel_scope.cancel()
                    break

    anyio.run(main)


# ------------------------------------------------------------------ measuring


def go_binary(*, build: bool) -> GoBinary:
    """The Go peer and load generator, built on demand into ``.cache/bench/``; with
    ``build=False`` only an up-to-date binary is used."""
    if go_fresh(GO_SRC, GO_BIN):
        return GoBinary(GO_BIN, "")
    if not build or shutil.which("go") is None:
        return GoBinary(
            None,
            f"{GO_BIN.relative_to(ROOT)} is not built (needs Go: run `python -m bench webhook`)",
        )
    return go_build(GO_SRC, GO_BIN, peer="webhook peer")


def load1() -> float:
    """The 1-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not listen on {port} within {within:g}s")


def measure(
    peer: str, binary: Path, folder: Path, *, rate: float, seconds: float
) -> dict[str, Any]:
    """One server started, loaded at ``rate`` for ``seconds`` (after a warm-up), stopped."""
    port = free_port()
    if peer == "ours":
        argv = [
            sys.executable,
            "-m",
            "bench.webhook",
            "serve",
            "--port",
            str(port),
            "--cert-dir",
            str(folder),
        ]
    else:
        argv = [str(binary), "serve", "--port", str(port), "--cert-dir", str(folder)]
    server = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port, server)
        before = load1()
        url = f"https://127.0.0.1:{port}{PATH}"
        load = subprocess.run(
            [
                str(binary), "load", "--url", url, "--ca", str(folder / "ca.crt"),
                "--body", str(folder / "review.json"), "--rate", str(rate),
                "--duration", f"{seconds}s", "--warmup", "2s", "--timeout", f"{TIMEOUT_SECONDS}s",
            ],
            capture_output=True, text=True, timeout=seconds + 60, check=False,
        )  # fmt: skip
        if load.returncode != 0:
            raise RuntimeError(f"the load generator failed: {load.stderr.strip()[-300:]}")
        result: dict[str, Any] = orjson.loads(load.stdout.strip().splitlines()[-1])
        result["load1"] = before
        return result
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def table(
    results: dict[str, list[dict[str, Any]]], rate: float, seconds: float, rounds: int
) -> str:
    lines = [
        f"### webhook: a trivial validating webhook at {rate:g} requests/s "
        f"({seconds:g} s measured, {rounds} rounds, medians)\n",
        "| server | requests/s | p50 ms | p99 ms | max ms | errors | over 10 s | load1 per round |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for peer, runs in results.items():
        if not runs:
            continue

        def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return float(statistics.median(r[key] for r in runs))

        loads = ", ".join(f"{r['load1']:.2f}" for r in runs)
        errors = sum(r["errors"] for r in runs)
        over = sum(r["over_timeout"] for r in runs)
        lines.append(
            f"| {LABELS[peer]} | {med('rps'):.0f} | {med('p50_ms'):.2f} | {med('p99_ms'):.2f} | "
            f"{med('max_ms'):.1f} | {errors} | {over} | {loads} |"
        )
    ours, theirs = results.get("ours"), results.get("controller-runtime")
    if ours and theirs:
        ratio = statistics.median(r["p99_ms"] for r in ours) / statistics.median(
            r["p99_ms"] for r in theirs
        )
        lines.append(f"\np99 ours / controller-runtime: {ratio:.2f}x (target: within 2x)")
    lines.append(
        "\nOurs runs with the cyclic GC as a started Manager leaves it (gc_freeze=True: "
        "frozen after start, thresholds raised)."
    )
    return "\n".join(lines) + "\n"


def run_rounds(
    *,
    rate: float,
    seconds: float,
    rounds: int,
    build: bool,
    outcome: Outcome,
    record: dict[str, list[dict[str, Any]]] | None = None,
) -> str:
    binary = go_binary(build=build)
    if binary.path is None:
        cell = (outcome.failed if binary.broken else outcome.unavailable)(
            "webhook", "", "controller-runtime", "controller-runtime", binary.why
        )
        return f"### webhook\n\n{cell}\n"
    from informer.testing.control_plane._certs import CertificateAuthority

    results: dict[str, list[dict[str, Any]]] = record if record is not None else {}
    for peer in PEERS:
        results.setdefault(peer, [])
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        folder = Path(tmp)
        ca = CertificateAuthority("bench-webhook-ca")
        ca.issue_serving(["127.0.0.1"]).write(folder / "tls.crt", folder / "tls.key")
        (folder / "ca.crt").write_bytes(ca.cert_pem)
        (folder / "review.json").write_bytes(review_body())
        for i in range(rounds):
            for peer in PEERS if i % 2 == 0 else PEERS[::-1]:
                result = measure(peer, binary.path, folder, rate=rate, seconds=seconds)
                print(f"round {i + 1} {peer}: {orjson.dumps(result).decode()}", flush=True)
                results[peer].append(result)
    for peer, runs in results.items():
        p99 = statistics.median(r["p99_ms"] for r in runs)
        bad = sum(r["errors"] + r["over_timeout"] for r in runs)
        if bad:
            outcome.failed(
                "webhook",
                f"{rate:g}/s",
                LABELS[peer],
                peer,
                f"{bad} requests failed or were over the timeout",
            )
        else:
            outcome.ok("webhook", f"{rate:g}/s", LABELS[peer], peer, p99, "ms p99")
    return table(results, rate, seconds, rounds)


async def run(cfg: Any, outcome: Outcome) -> str:
    """The ``python -m bench webhook`` entry (``--quick``: one short round)."""
    seconds = 3.0 if cfg.quick else 10.0
    return await anyio.to_thread.run_sync(
        lambda: run_rounds(
            rate=500.0, seconds=seconds, rounds=cfg.repeat, build=cfg.build_go, outcome=outcome
        )
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.webhook", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="run our webhook server (the measured child)")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--cert-dir", required=True)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--output", type=Path, help="append the table (Markdown) to this file")
    p.add_argument("--json", type=Path, help="write every round's figures (JSON) to this file")
    args = p.parse_args(argv)
    if args.command == "serve":
        serve(args.port, args.cert_dir)
        return 0
    outcome = Outcome()
    record: dict[str, list[dict[str, Any]]] = {}
    text = run_rounds(
        rate=args.rate,
        seconds=args.seconds,
        rounds=args.rounds,
        build=True,
        outcome=outcome,
        record=record,
    )
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    print("\n" + text)
    if args.output is not None:
        with args.output.open("a") as f:
            f.write("\n" + text)
    return outcome.exit_code()


if __name__ == "__main__":
    raise SystemExit(main())
