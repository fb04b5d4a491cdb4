"""Benchmark: start-up, what every runner start, CLI call and test subprocess pays.

- ``import informer``, ``import informer.run.runner`` (the runner's imports) and ``python
  -m informer.run --help``: wall seconds of a fresh interpreter, median of the rounds
  (``python -c pass`` is measured too: the interpreter's own start).
- **runner start to ready**: ``python -m informer.run`` with one controller watching
  ConfigMaps in an empty namespace, from the spawn to its ``manager.started`` log line
  (connected, checked, informers synced, controllers running), on the local control
  plane.

Every figure is the process's wall time, so it moves with the machine's load; the run's
load is printed with the table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import anyio
import orjson

from bench._cluster import Cluster
from bench._config import Config
from bench._outcome import Outcome
from bench._proc import ROOT
from bench._report import fmt_num, median, table

IMPORTS = (
    ("python -c pass (the interpreter)", ["-c", "pass"]),
    ("import informer", ["-c", "import informer"]),
    ("import informer.run.runner (the runner's imports)", ["-c", "import informer.run.runner"]),
    ("python -m informer.run --help", ["-m", "informer.run", "--help"]),
)
TARGET_IMPORT = 0.3
"""Issue 23: ``import informer`` in at most 0.3 s on this machine."""

CONTROLLER = """
from informer import Controller
from informer.resources import CONFIGMAPS


class Idle(Controller):
    name = "idle"

    def setup(self) -> None:
        self.watch(CONFIGMAPS)

    async def reconcile(self, key: str) -> None:
        pass
"""
READY_NAMESPACE = "bench-startup-empty"


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "PYTHON"))}
    return env


async def _one_import(argv: list[str]) -> float:
    start = time.perf_counter()
    done = await anyio.run_process(
        [sys.executable, *argv], cwd=ROOT, env=_environment(), check=False
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.decode()[-300:]}")
    return took


async def _one_ready(kubeconfig: Path, controller: Path, limit: float) -> float:
    argv = [
        sys.executable,
        "-m",
        "informer.run",
        str(controller),
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        READY_NAMESPACE,
        "--log-format",
        "json",
    ]
    start = time.perf_counter()
    async with await anyio.open_process(
        argv, cwd=controller.parent, env=_environment(), stdout=subprocess.DEVNULL
    ) as process:
        assert process.stderr is not None  # the runner logs there
        buffered = b""
        try:
            with anyio.fail_after(limit):
                async for chunk in process.stderr:
                    buffered += chunk
                    *lines, buffered = buffered.split(b"\n")
                    for line in lines:
                        if (
                            b"manager.started" in line
                            and orjson.loads(line).get("event") == "manager.started"
                        ):
                            return time.perf_counter() - start
        finally:
            process.terminate()
            with anyio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
    raise RuntimeError(f"the runner exited {process.returncode} before it was ready")


async def run_startup(cluster: Cluster, cfg: Config, outcome: Outcome) -> str:
    """The start-up table; one row each in ``outcome``."""
    rounds = max(3, cfg.repeat)
    rows: list[list[str]] = []
    figures: dict[str, float] = {}
    for name, argv in IMPORTS:
        times: list[float] = []
        try:
            for _ in range(rounds):
                times.append(await _one_import(argv))
        except Exception as exc:
            cell = outcome.failed("startup", "", name, "ours", f"{type(exc).__name__}: {exc}")
            rows.append([name, cell, "", ""])
            continue
        med = median(times)
        assert med is not None
        figures[name] = med
        extra = {"min_s": min(times), "max_s": max(times)}
        if failed := outcome.ok("startup", "", name, "ours", med, "s", extra):
            rows.append([name, failed, "", ""])
            continue
        rows.append([name, fmt_num(med, 3), fmt_num(min(times), 3), fmt_num(max(times), 3)])
    name = "runner start to ready, empty namespace (python -m informer.run)"
    from informer import AlreadyExists, new_api_client, request_json
    from informer.resources import NAMESPACES

    async with await new_api_client(kubeconfig=str(cluster.kubeconfig)) as api:
        try:
            body = {"metadata": {"name": READY_NAMESPACE}}
            await request_json(api, "POST", NAMESPACES.path(), body=body)
        except AlreadyExists:
            pass
    with tempfile.TemporaryDirectory() as tmp:
        controller = Path(tmp) / "idle.py"
        controller.write_text(textwrap.dedent(CONTROLLER))
        times = []
        try:
            for _ in range(rounds):
                times.append(await _one_ready(cluster.kubeconfig, controller, cfg.timeout))
        except Exception as exc:
            cell = outcome.failed("startup", "", name, "ours", f"{type(exc).__name__}: {exc}")
            rows.append([name, cell, "", ""])
        else:
            med = median(times)
            extra = {"min_s": min(times), "max_s": max(times)}
            if failed := outcome.ok("startup", "", name, "ours", med, "s", extra):
                rows.append([name, failed, "", ""])
            else:
                low, high = fmt_num(min(times), 3), fmt_num(max(times), 3)
                rows.append([name, fmt_num(med, 3), low, high])
    notes = [
        f"Wall seconds of a fresh process, median of {rounds} (and the fastest and slowest "
        f"round); load average {os.getloadavg()[0]:.1f} at the end. Ready = the runner's "
        "`manager.started` log line: connected to the control plane, RBAC checked, caches "
        "synced, controllers running (no metrics or health endpoint)."
    ]
    imported = figures.get("import informer")
    if imported is not None:
        verdict = "met" if imported <= TARGET_IMPORT else "MISSED"
        notes.append(
            f"- import informer: {imported:.3f} s (target <= {TARGET_IMPORT:g} s: {verdict})"
        )
    header = ["what", "seconds (median)", "fastest", "slowest"]
    return table("Start-up", header, rows, notes)
