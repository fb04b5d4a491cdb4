"""Absorbed failures fail tests (informer._failures + the pytest plugin).

The library logs an exception raised inside an event handler or a reconcile and carries
on; the pytest plugin turns each such absorbed exception into a test failure unless the
test declares it expects them. These tests run pytest in a subprocess, as a user gets the
plugin, and include mutation checks: two assertions of this suite that live inside
handlers are broken on purpose and the mutated test must fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from informer._failures import Failure, add_failure_hook, report_failure

pytestmark = pytest.mark.timeout(120)

TESTS = Path(__file__).resolve().parents[1]

USER_TESTS = """
import anyio
import pytest

from informer import HandlerFuncs, SharedIndexInformer
from informer.testing import FakeListerWatcher

pytestmark = pytest.mark.anyio


def cm(name):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns"}}


async def run_informer(on_add):
    inf = SharedIndexInformer(FakeListerWatcher([cm("a"), cm("b")]), name="cms")
    reg = inf.add_event_handler(HandlerFuncs(on_add=on_add))
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        with anyio.fail_after(10):
            await inf.wait_for_sync(reg)
        tg.cancel_scope.cancel()


async def test_assertion_in_handler():
    def on_add(obj):
        assert obj["metadata"]["name"] == "a", "handler saw an unexpected object"
    await run_informer(on_add)


@pytest.mark.allow_handler_failures
async def test_marked():
    def on_add(obj):
        raise RuntimeError("expected")
    await run_informer(on_add)


async def test_fixture(handler_failures):
    def on_add(obj):
        raise RuntimeError("expected")
    await run_informer(on_add)
    assert [f.kind for f in handler_failures] == ["handler", "handler"]
    assert {f.key for f in handler_failures} == {"ns/a", "ns/b"}


async def test_clean():
    await run_informer(lambda obj: None)
"""


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["KUBEBUILDER_ASSETS"] = env.get("KUBEBUILDER_ASSETS", "unused")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


def test_an_assertion_inside_a_handler_fails_the_test(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    proc = run_pytest(tmp_path, "-rE")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "4 passed, 1 error" in out, out  # the call passed; its teardown errors
    assert "ERROR test_user.py::test_assertion_in_handler" in out, out
    assert "handler saw an unexpected object" in out, out
    assert "key=ns/b" in out, out


def _mutated_run(tmp_path: Path, module: str, original: str, broken: str, test: str) -> str:
    source = next(TESTS.rglob(module)).read_text()
    assert source.count(original) == 1, f"{module} no longer holds {original!r}"
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / module).write_text(source.replace(original, broken))
    proc = run_pytest(tmp_path, f"{module}::{test}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    return out


@pytest.mark.parametrize(
    ("module", "original", "broken", "test"),
    [
        pytest.param(
            "test_convergence.py",
            'assert key in view, f"delete of a key the handler never saw: {key}"',
            'assert key not in view, f"delete of a key the handler never saw: {key}"',
            "test_cache_converges_to_the_truth[410-http-list-watch-0]",
            id="convergence-delete-names-a-known-key",
        ),
        pytest.param(
            "test_informer.py",
            "assert len(inf._fifo) > 0",
            "assert len(inf._fifo) < 0",
            "test_adding_a_handler_during_a_resync_does_not_cut_it_short",
            id="informer-resync-precondition",
        ),
    ],
)
def test_a_broken_handler_assertion_in_this_suite_fails(
    tmp_path: Path, module: str, original: str, broken: str, test: str
) -> None:
    out = _mutated_run(tmp_path, module, original, broken, test)
    assert "absorbed by kube-informer" in out, out


def test_hooks_see_reports_and_a_broken_hook_is_ignored(handler_failures: list[Failure]) -> None:
    seen: list[Failure] = []

    def broken(_: Failure) -> None:
        raise RuntimeError("hook bug")

    remove_broken = add_failure_hook(broken)
    remove_seen = add_failure_hook(seen.append)
    try:
        report_failure("reconcile", "ctl", ValueError("boom"), key="ns/a")
    finally:
        remove_broken()
        remove_seen()
    report_failure("reconcile", "ctl", ValueError("after removal"))
    assert [str(f) for f in seen] == ["reconcile ctl key=ns/a: ValueError: boom"]
    assert len(handler_failures) == 2  # the plugin's own hook saw both
