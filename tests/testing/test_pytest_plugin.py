"""The pytest plugin as a user gets it: installed, with no conftest.py of theirs; and as a
project that does not use it gets it: inert."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

USER_TESTS = """
import pytest
from kubernetes_asyncio.client import CoreV1Api


@pytest.mark.anyio
async def test_lists_in_a_fresh_namespace(api_client, namespace):
    cms = await CoreV1Api(api_client).list_namespaced_config_map(namespace)
    assert [cm.metadata.name for cm in cms.items] == ["kube-root-ca.crt"] or cms.items == []


@pytest.mark.anyio
async def test_shares_the_session_control_plane(control_plane, api_client, namespace):
    assert control_plane.kubeconfig_path.exists()
    expected = os.environ["EXPECT_CONTROLLER_MANAGER"] == "1"
    assert (control_plane.controller_manager_pid is not None) is expected
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("ini", "args", "controller_manager"),
    [
        pytest.param("", (), False, id="anyio-defaults"),
        pytest.param(
            "kube_informer_controller_manager = true\n", (), True, id="controller-manager-ini"
        ),
        pytest.param("", ("--kube-informer-controller-manager",), True, id="controller-manager"),
    ],
)
def test_plugin_fixtures_work_without_a_conftest(
    tmp_path: Path, ini: str, args: tuple[str, ...], controller_manager: bool
) -> None:
    """With anyio's own (module-scoped) backend the fixtures work too: the control plane
    runs on an event loop of its own, the client is per test."""
    (tmp_path / "pytest.ini").write_text(f"[pytest]\n{ini}")
    (tmp_path / "test_user.py").write_text("import os\n" + textwrap.dedent(USER_TESTS))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["EXPECT_CONTROLLER_MANAGER"] = "1" if controller_manager else "0"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


UNRELATED_CONFTEST = """
import pytest


@pytest.fixture(params=["asyncio"])
def anyio_backend(request):
    # this project's own choice: function-scoped, parametrized
    return request.param
"""

UNRELATED_TESTS = """
import asyncio

import anyio
import pytest
import structlog
from structlog.testing import capture_logs

log = structlog.get_logger("unrelated")


def test_structlog_is_left_alone():
    assert not structlog.is_configured()


def test_a_debug_line_is_captured():
    with capture_logs() as captured:
        log.debug("cache.refreshed", entries=3)
    assert captured == [{"event": "cache.refreshed", "entries": 3, "log_level": "debug"}]


def test_a_debug_line_is_printed(capsys):
    log.debug("printed-at-debug")
    assert "printed-at-debug" in capsys.readouterr().out


def test_no_fixture_is_injected(request):
    assert not [n for n in request.fixturenames if "kube_informer" in n or "absorbed" in n]


@pytest.mark.anyio
async def test_its_own_anyio_backend(anyio_backend, request):
    assert anyio_backend == "asyncio"
    assert request.node.callspec.params["anyio_backend"] == "asyncio"
    await anyio.sleep(0)
    assert asyncio.get_running_loop() is not None


def test_an_absorbed_exception_is_its_own_business():
    from informer._failures import report_failure

    report_failure("handler", "somewhere", RuntimeError("not this suite's concern"))
"""


@pytest.mark.timeout(900)
def test_an_unrelated_suite_is_unaffected_by_the_installed_wheel(tmp_path: Path) -> None:
    """The wheel installed in a fresh venv (its pytest plugin loaded, as for any user),
    and a project that does not use it: structlog untouched, its own anyio_backend, no
    fixture injected, no absorbed-failure check."""
    from wheel_venv import wheel_venv

    venv = wheel_venv()
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "unrelated"\nversion = "1"\n\n'
        '[tool.pytest.ini_options]\naddopts = "-p anyio"\n'
    )
    (tmp_path / "conftest.py").write_text(textwrap.dedent(UNRELATED_CONFTEST))
    (tmp_path / "test_unrelated.py").write_text(textwrap.dedent(UNRELATED_TESTS))
    pytest_cmd = [str(venv.python), "-m", "pytest", "-p", "no:cacheprovider", "-W", "error"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*pytest_cmd, *args],
            cwd=tmp_path,
            env=venv.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    markers = run("--markers")
    assert "@pytest.mark.kube_informer:" in markers.stdout, markers.stdout  # loaded, inert
    proc = run("-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 passed" in proc.stdout, proc.stdout
    unloaded = run("-q", "-p", "no:kube_informer")
    assert unloaded.returncode == 0, unloaded.stdout + unloaded.stderr
