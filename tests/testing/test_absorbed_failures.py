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


SUITE_WIDE = "[pytest]\nkube_informer = true\n"


def test_an_assertion_inside_a_handler_fails_the_test(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(SUITE_WIDE)
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
    (tmp_path / "pytest.ini").write_text(SUITE_WIDE)
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


OPT_IN_TESTS = """
import anyio
import pytest

from informer import Conflict, HandlerFuncs, SharedIndexInformer
from informer.testing import FakeListerWatcher

pytestmark = pytest.mark.anyio


def cm(name):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns"}}


async def run_informer(on_add):
    inf = SharedIndexInformer(FakeListerWatcher([cm("a")]), name="cms")
    reg = inf.add_event_handler(HandlerFuncs(on_add=on_add))
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        with anyio.fail_after(10):
            await inf.wait_for_sync(reg)
        tg.cancel_scope.cancel()


def conflict(obj):
    raise Conflict("the object has been modified")


def boom(obj):
    raise RuntimeError("boom")


async def test_unwatched_raising_handler_is_not_checked():
    await run_informer(boom)


@pytest.mark.kube_informer
async def test_marked_raising_handler_fails():
    await run_informer(boom)


@pytest.mark.kube_informer
@pytest.mark.allow_handler_failures(exceptions=Conflict)
async def test_allowed_type():
    await run_informer(conflict)


@pytest.mark.kube_informer
@pytest.mark.allow_handler_failures(exceptions=(Conflict, KeyError))
async def test_other_type_still_fails():
    await run_informer(boom)


async def test_handler_failures_fixture_sees_them(handler_failures):
    await run_informer(boom)
    assert [type(f.error).__name__ for f in handler_failures] == ["RuntimeError"]
"""


def test_without_the_switch_only_tests_that_opt_in_are_checked(tmp_path: Path) -> None:
    """No ``kube_informer = true``: a test is checked when it carries the marker or uses
    a fixture of the plugin; ``allow_handler_failures(exceptions=Conflict)`` allows that
    type only."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_opt_in.py").write_text(OPT_IN_TESTS)
    proc = run_pytest(tmp_path, "-rE")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "5 passed, 2 errors" in out, out  # the calls passed; two teardowns error
    assert "ERROR test_opt_in.py::test_marked_raising_handler_fails" in out, out
    assert "ERROR test_opt_in.py::test_other_type_still_fails" in out, out
    assert "optionally with the expected exception types" in out, out


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("(exceptions='Conflict')", "takes exception types, got 'Conflict'"),
        ("(ValueError, KeyError)", "takes its exception types as exceptions=(A, B)"),
    ],
    ids=["not-a-type", "positional"],
)
def test_allow_handler_failures_takes_exception_types_only(
    tmp_path: Path, marker: str, message: str
) -> None:
    (tmp_path / "pytest.ini").write_text(SUITE_WIDE)
    (tmp_path / "test_bad_marker.py").write_text(
        "import pytest\n"
        "from informer._failures import report_failure\n"
        f"@pytest.mark.allow_handler_failures{marker}\n"
        "def test_x():\n"
        "    report_failure('reconcile', 'ctl', ValueError('boom'))\n"
    )
    proc = run_pytest(tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert message in out, out
