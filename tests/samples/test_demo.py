"""``python -m kube_informer_samples.demo`` (``make run``): smoke tests as a user runs it.

Each test starts the demo as a subprocess with its own control plane in ``tmp_path``,
checks that it printed the controllers' actions, and that it stops cleanly (exit 0)
leaving no process behind: no process may mention ``tmp_path`` on its command line
(etcd's data dir, kube-apiserver's cert dir and the runner's kubeconfig all live there).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from informer import new_api_client, request_json
from informer.resources import DEPLOYMENTS
from informer.testing import eventually

ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT = 90.0  # seconds for the whole scripted part (it takes ~15)

ACTIONS = [
    "[demo] applied 00-namespace.yaml: namespace/demo",
    "[demo] configmap-reloader stamped demo/web",
    "[demo] configmap-reloader rolled demo/web: informer.dev/config-hash",
    "[demo] configmap-reloader rolled demo/worker: informer.dev/config-hash",
    "[demo] demo/legacy consumes app-config but does not opt in: untouched",
    "[demo] deployment-inventory wrote demo/deployment-inventory listing legacy, web, worker",
    "replicas: 4",
    "[demo] deployment-inventory recreated demo/deployment-inventory",
    "[demo] configmap-mirror copied demo/app-config to demo-copy/app-config",
    "[demo] configmap-mirror set demo/app-config-mirror status: Ready=True (Synced: ",
    "[demo] configmap-mirror recorded an Event on the mirror: Synced: copied to [demo-copy]",
    "--webhooks configmap-mirror --webhook-bind-address 127.0.0.1:",
    "[demo] the runner serves the configmap-mirror webhooks at https://127.0.0.1:",
    # the rejected apply, with the validating webhook's message
    "[demo] the validating webhook rejected it (422): admission webhook "
    '"vconfigmapmirror.mirror.informer.dev" denied the request: spec.targetNamespaces '
    "includes the mirror's own namespace 'demo': a ConfigMap cannot be mirrored onto itself",
    # the converted read: written at v1beta1, read at v1alpha1
    '[demo] created; the answer at mirror.informer.dev/v1beta1: spec {"source": {"name": '
    '"feature-flags"}, "targets": {"namespaces": ["demo-copy"]}}',
    "[demo] read at mirror.informer.dev/v1alpha1 (the storage version, converted by the "
    'conversion webhook): spec {"source": "feature-flags", "targetNamespaces": ["demo-copy"]}',
    "[demo] configmap-mirror copied demo/feature-flags to demo-copy/feature-flags",
    "export KUBECONFIG=",
]


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes (other than us) containing ``text``."""
    found: list[str] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in raw:
            command = raw.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry}: {command}")
    return found


async def no_process_left(folder: Path) -> None:
    """Wait (bounded) until no process mentions ``folder``; children may take a moment."""

    def none_left() -> None:
        left = processes_mentioning(str(folder))
        assert not left, f"processes left behind: {left}"

    await eventually(none_left, timeout=10, interval=0.1)


def demo_argv(state_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "kube_informer_samples.demo", "--dir", str(state_dir), *extra]


def demo_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("KUBECONFIG", None)
    return env


@pytest.mark.anyio
async def test_demo_exit_after_demo(tmp_path: Path) -> None:
    state_dir = tmp_path / "run"
    with anyio.fail_after(DEMO_TIMEOUT):
        result = await anyio.run_process(
            demo_argv(state_dir, "--exit-after-demo"), check=False, cwd=str(ROOT), env=demo_env()
        )
    out = result.stdout.decode()
    assert result.returncode == 0, f"stdout:\n{out}\nstderr:\n{result.stderr.decode()}"
    for action in ACTIONS:
        assert action in out, f"{action!r} missing from:\n{out}"
    assert f"export KUBECONFIG={state_dir / 'kubeconfig'}" in out
    assert "[demo] the controllers stopped (exit code 0)" in out
    assert "Traceback" not in result.stderr.decode()
    await no_process_left(tmp_path)


class Output:
    """Reads a process's stdout in the background; lets a test wait for a line."""

    def __init__(self) -> None:
        self.text = ""
        self.ended = False
        self._changed = anyio.Event()

    async def pump(self, stream: anyio.abc.ByteReceiveStream) -> None:
        async for chunk in stream:
            self.text += chunk.decode(errors="replace")
            self._changed.set()
            self._changed = anyio.Event()
        self.ended = True
        self._changed.set()

    async def wait_for(self, marker: str) -> None:
        """Until ``marker`` was printed; ``EOFError`` if the stream ends without it."""
        while marker not in self.text:
            if self.ended:
                raise EOFError(marker)
            await self._changed.wait()


async def until_prompt(output: Output, errors: Output) -> None:
    """Wait (DEMO_TIMEOUT) for the demo's prompt; failing, show what it printed."""
    try:
        with anyio.fail_after(DEMO_TIMEOUT):
            await output.wait_for("press Ctrl-C")
    except (TimeoutError, EOFError) as exc:
        # AssertionError, not pytest.fail: this runs in a task group, and a task group's
        # BaseExceptionGroup of pytest's Failed ends anyio's test runner (every later test
        # of the worker then fails with ClosedResourceError; tests/test_conventions.py).
        raise AssertionError(
            f"the demo did not reach its prompt ({type(exc).__name__}); stdout:\n"
            f"{output.text[-4000:]}\nstderr:\n{errors.text[-4000:]}"
        ) from exc


async def run_cli(*args: str, kubeconfig: Path) -> str:
    with anyio.fail_after(30):
        result = await anyio.run_process(
            [
                sys.executable,
                "-m",
                "kube_informer_samples.demo",
                "--kubeconfig",
                str(kubeconfig),
                *args,
            ],
            check=False,
            cwd=str(ROOT),
        )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def web_hash(deployment: dict[str, Any]) -> str | None:
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    value = annotations.get("informer.dev/config-hash")
    return value if isinstance(value, str) else None


@pytest.mark.anyio
async def test_demo_keeps_running_then_stops_on_sigint(tmp_path: Path) -> None:
    state_dir = tmp_path / "run"
    kubeconfig = state_dir / "kubeconfig"
    output, errors = Output(), Output()
    process = await anyio.open_process(
        demo_argv(state_dir),
        cwd=str(ROOT),
        env=demo_env(),
        stdin=subprocess.DEVNULL,
    )
    try:
        async with anyio.create_task_group() as tg:
            assert process.stdout is not None and process.stderr is not None
            tg.start_soon(output.pump, process.stdout)
            tg.start_soon(errors.pump, process.stderr)
            await until_prompt(output, errors)
            for action in ACTIONS:
                assert action in output.text

            # The printed commands work against the running demo, and the controllers
            # still act: a data change rolls web once more.
            status = await run_cli("status", kubeconfig=kubeconfig)
            assert "ConfigMap demo/deployment-inventory:" in status
            assert "web" in status and "reload=yes" in status
            async with await new_api_client(kubeconfig=str(kubeconfig)) as api:
                path = DEPLOYMENTS.path("web", namespace="demo")
                before = web_hash(await request_json(api, "GET", path))
                await run_cli("set-config", "LOG_LEVEL=warn", kubeconfig=kubeconfig)

                async def rolled() -> None:
                    assert web_hash(await request_json(api, "GET", path)) != before, "web rolled"

                await eventually(rolled, timeout=10, interval=0.1)

            process.send_signal(signal.SIGINT)
            with anyio.fail_after(20):
                code = await process.wait()
            tg.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await process.wait()
    assert code == 0, output.text
    assert "[demo] SIGINT: stopping the controllers and the control plane" in output.text
    assert "[demo] the controllers stopped (exit code 0)" in output.text
    assert output.text.rstrip().endswith("[demo] stopped")
    await no_process_left(tmp_path)


@pytest.mark.anyio
async def test_killed_demo_leaves_no_process(tmp_path: Path) -> None:
    """docs/guides/samples.md, "What make run shows": "the children also die with the
    demo if it is killed": SIGKILL (no cleanup code runs) takes the runner,
    kube-apiserver and etcd with it."""
    state_dir = tmp_path / "run"
    output, errors = Output(), Output()
    process = await anyio.open_process(
        demo_argv(state_dir),
        cwd=str(ROOT),
        env=demo_env(),
        stdin=subprocess.DEVNULL,
    )
    try:
        async with anyio.create_task_group() as tg:
            assert process.stdout is not None and process.stderr is not None
            tg.start_soon(output.pump, process.stdout)
            tg.start_soon(errors.pump, process.stderr)
            await until_prompt(output, errors)
            children = processes_mentioning(str(tmp_path))
            assert len(children) >= 3, children  # runner, kube-apiserver, etcd at least
            process.kill()
            with anyio.fail_after(10):
                await process.wait()
            tg.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await process.aclose()  # closes its pipes too (no transport left to the GC)
    assert process.returncode == -signal.SIGKILL
    await no_process_left(tmp_path)
