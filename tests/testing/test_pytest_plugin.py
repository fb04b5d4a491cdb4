"""The pytest plugin as a user gets it: installed, with no conftest.py of theirs."""

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
"""


@pytest.mark.timeout(120)
def test_plugin_fixtures_work_without_a_conftest(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
