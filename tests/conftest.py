"""Test-suite configuration.

The suite turns kube-informer's pytest plugin on for every test (``kube_informer = true``
in ``pyproject.toml``): the absorbed-failure check, one asyncio event loop for the session
(``anyio_backend``), quiet debug logs.

The real-server tests need the control-plane binaries, which the plugin finds without any
environment variable once built. When none is found (and ``KUBEBUILDER_ASSETS`` is not
set), they are built once into the checkout's ``.cache/control-plane`` (at once when
cached), so ``pytest`` alone works on a fresh clone, as ``make test`` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from informer import Client
from informer.testing.envtest import BinariesNotFound, find_binaries

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    try:
        folder = find_binaries(controller_manager=True)
    except BinariesNotFound:
        if os.environ.get("KUBEBUILDER_ASSETS"):
            return  # as the user said; a test that needs what is missing will say so
        install = [sys.executable, "-m", "informer.testing.envtest", "install"]
        proc = subprocess.run(
            [*install, "--dir", str(ROOT / ".cache" / "control-plane")],
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise pytest.UsageError(
                "could not build the control plane (kube-apiserver, etcd, "
                "kube-controller-manager): see the output above; install Go 1.26+ or set "
                "KUBEBUILDER_ASSETS to a folder holding the binaries"
            ) from None
        folder = Path(proc.stdout.strip().splitlines()[-1])
    # Child processes (the runner, the demo, subprocess pytest runs) use the same ones.
    os.environ.setdefault("KUBEBUILDER_ASSETS", str(folder))


@pytest.fixture(scope="session")
def client(api_client: Any) -> Client:
    """An ``informer.Client`` on the session's ``api_client``, without a factory: every
    read goes to the API server (the tests' view of the cluster, never a cache)."""
    return Client(api_client, field_manager="tests")
