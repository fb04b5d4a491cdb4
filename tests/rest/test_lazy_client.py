"""``import informer`` is cheap, and kubernetes_asyncio's generated API classes and models
are imported only when something asks for one (informer/_rest/lazy_client.py). Each
check runs in a fresh interpreter: this process imported them long ago."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import anyio
import pytest

pytestmark = pytest.mark.timeout(60)


def run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_informer_imports_no_transport() -> None:
    out = run(
        "import sys, informer\n"
        "heavy = ('aiohttp', 'kubernetes_asyncio', 'structlog')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    assert out == "[]"


def test_root_names_resolve_on_first_use_and_stay() -> None:
    out = run(
        "import informer\n"
        "from informer import Manager\n"
        "from informer._manager.manager import Manager as M\n"
        "print(Manager is M, 'Manager' in vars(informer), informer.ConfigError.__name__)"
    )
    assert out == "True True ConfigError"


def test_the_library_never_loads_the_models() -> None:
    out = run(
        "import sys\n"
        "from informer import Manager, Controller, new_api_client, request_json\n"
        "import informer.run.runner, informer.testing\n"
        "from kubernetes_asyncio.client import ApiClient, Configuration, ApiException\n"
        "import kubernetes_asyncio\n"
        "from informer._rest.lazy_client import loaded_whole\n"
        "print(sorted(loaded_whole()), 'kubernetes_asyncio.client.models.v1_pod' in sys.modules)"
    )
    assert out == "[] False"


def test_a_program_using_the_generated_client_gets_it_whole() -> None:
    out = run(
        "import informer.run.runner\n"
        "import kubernetes_asyncio\n"
        "from kubernetes_asyncio import client\n"
        "from kubernetes_asyncio.client import CoreV1Api, V1Pod, ApiClient\n"
        "from kubernetes_asyncio.client.models import V1ConfigMap\n"
        "from kubernetes_asyncio.client.api_client import ApiClient as Direct\n"
        "from informer._rest.lazy_client import loaded_whole\n"
        "assert ApiClient is Direct and client.V1Pod is V1Pod\n"
        "assert 'CoreV1Api' in dir(client)\n"
        "pod = V1Pod(metadata={'name': 'p'})\n"
        "print(sorted(loaded_whole()), type(V1ConfigMap()).__name__)"
    )
    assert out == ("['kubernetes_asyncio.client', 'kubernetes_asyncio.client.models'] V1ConfigMap")


def test_a_missing_name_is_an_attribute_error() -> None:
    out = run(
        "from kubernetes_asyncio import client\n"
        "try:\n"
        "    client.NoSuchThing\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n"
    )
    assert out == "module 'kubernetes_asyncio.client' has no attribute 'NoSuchThing'"


@pytest.mark.anyio
async def test_listing_from_a_real_server_loads_no_model(control_plane: Any) -> None:
    kubeconfig = str(control_plane.kubeconfig_path)
    done = await anyio.run_process(
        [
            sys.executable,
            "-c",
            "import anyio\n"
            "from informer import new_api_client, request_json\n"
            "from informer._rest.lazy_client import loaded_whole\n"
            "async def main():\n"
            f"    async with await new_api_client(kubeconfig={kubeconfig!r}) as api:\n"
            "        path = '/api/v1/namespaces/default/configmaps'\n"
            "        body = await request_json(api, 'GET', path)\n"
            "    print(body['kind'], sorted(loaded_whole()))\n"
            "anyio.run(main)\n",
        ],
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "ConfigMapList []"
