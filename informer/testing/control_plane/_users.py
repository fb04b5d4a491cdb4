"""Identities on a control plane: :class:`User`, its kubeconfig and its ``ApiClient``.

Each user has a client certificate issued by the control plane's CA (``CN`` = name,
``O`` = groups) and a kubeconfig (JSON, which is YAML) naming the CA, the certificate and
key files, and the apiserver's URL. Kubeconfigs are written atomically (a temporary file
renamed over the old one) with mode 0600, so a client reading one never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio

from ..._rest.api_client import ApiClient, new_api_client

__all__ = [
    "ApiClientContext",
    "User",
    "set_kubeconfig_server",
    "user_dir",
    "write_kubeconfig",
]


@dataclass(frozen=True)
class User:
    """An identity on a running control plane: a client certificate and a kubeconfig.

    ``name`` is the Kubernetes user name (certificate ``CN``), ``groups`` its groups
    (``O``). Authorization is RBAC: a user outside ``system:masters`` can do only what
    Roles/ClusterRoles bound to it (or to its groups) allow.
    """

    name: str
    groups: tuple[str, ...]
    kubeconfig_path: Path

    def api_client(self) -> ApiClientContext:
        """A kubernetes_asyncio ``ApiClient`` for this identity.

        ``async with user.api_client() as api:`` closes it on exit;
        ``api = await user.api_client()`` hands ownership to the caller, who must
        ``await api.close()``.
        """
        return ApiClientContext(self.kubeconfig_path)


class ApiClientContext:
    """Awaitable (returns an ``ApiClient`` the caller closes) and async context manager
    (closes the client on exit)."""

    def __init__(self, kubeconfig_path: Path) -> None:
        self._kubeconfig_path = kubeconfig_path
        self._client: ApiClient | None = None

    def __await__(self) -> Generator[Any, None, ApiClient]:
        return new_api_client(kubeconfig=str(self._kubeconfig_path)).__await__()

    async def __aenter__(self) -> ApiClient:
        self._client = await new_api_client(kubeconfig=str(self._kubeconfig_path))
        return self._client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            with anyio.CancelScope(shield=True):
                await client.close()


def user_dir(root: Path, name: str, groups: tuple[str, ...]) -> Path:
    """The folder of a non-admin user's files under ``root``: readable and unique per
    ``(name, groups)``."""
    digest = hashlib.sha256(json.dumps([name, groups]).encode()).hexdigest()[:8]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40]
    return root / "users" / f"{safe}-{digest}"


def write_kubeconfig(
    path: Path, *, server: str, ca: Path, user: str, cert: Path, key: Path
) -> None:
    """A kubeconfig (JSON, which is YAML) with one cluster, user and current context."""
    cluster = "kube-informer-test"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster, "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [
            {"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [{"name": f"{user}@{cluster}", "context": {"cluster": cluster, "user": user}}],
        "current-context": f"{user}@{cluster}",
        "preferences": {},
    }
    _atomic_write(path, json.dumps(config, indent=2).encode())


def set_kubeconfig_server(path: Path, server: str) -> None:
    """Point a kubeconfig written by :func:`write_kubeconfig` at ``server``."""
    config = json.loads(path.read_text())
    config["clusters"][0]["cluster"]["server"] = server
    _atomic_write(path, json.dumps(config, indent=2).encode())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
