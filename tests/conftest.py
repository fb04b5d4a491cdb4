"""Test-suite configuration.

The real-server tests need the control-plane binaries. When ``KUBEBUILDER_ASSETS`` is
not set, the build script is run once (it returns at once when the binaries are cached
under ``.cache/``), so ``pytest`` alone works on a fresh clone, as ``make test`` does.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from informer import Client

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("KUBEBUILDER_ASSETS"):
        return
    script = ROOT / "hack" / "build-control-plane.sh"
    proc = subprocess.run([str(script)], stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise pytest.UsageError(
            "could not build the control plane (kube-apiserver + etcd): see the output above;"
            " install Go 1.26+ or set KUBEBUILDER_ASSETS to a folder holding both binaries"
        )
    os.environ["KUBEBUILDER_ASSETS"] = proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def client(api_client: Any) -> Client:
    """An ``informer.Client`` on the session's ``api_client``, without a factory: every
    read goes to the API server (the tests' view of the cluster, never a cache)."""
    return Client(api_client, field_manager="tests")
