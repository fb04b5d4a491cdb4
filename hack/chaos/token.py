"""A ServiceAccount identity whose bound token lives in a file the soak rotates.

The informer built on :meth:`TokenIdentity.api_client` authenticates with the kubeconfig
``tokenFile`` (no client certificate). Each token is bound to its own (empty) Secret, so
deleting that Secret revokes the token at once: after :meth:`TokenIdentity.rotate` the
old token answers 401, and only a client that re-reads its token file recovers. The
identity may only read ConfigMaps of one namespace.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from informer import new_api_client, request_json

__all__ = ["TokenIdentity"]

SERVICE_ACCOUNT = "chaos-reader"


class TokenIdentity:
    """Set up with :meth:`create`; ``rotate()`` writes a new token and revokes the old."""

    def __init__(self, admin: Any, *, namespace: str, folder: Path, ca_file: str) -> None:
        self.admin = admin
        self.namespace = namespace
        self.folder = folder
        self.ca_file = ca_file
        self.token_file = folder / "token"
        self.kubeconfig = folder / "kubeconfig"
        self.rotations = 0
        self._issued = 0
        self._secret: str | None = None

    async def create(self, server: str) -> None:
        """The ServiceAccount, a Role to read ConfigMaps, its binding, a first token, and
        a kubeconfig pointing at ``server`` with ``tokenFile``."""
        ns = self.namespace
        base = f"/api/v1/namespaces/{ns}"
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}"
        await request_json(
            self.admin,
            "POST",
            f"{base}/serviceaccounts",
            body={"metadata": {"name": SERVICE_ACCOUNT}},
        )
        role = {
            "metadata": {"name": SERVICE_ACCOUNT},
            "rules": [
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
            ],
        }
        await request_json(self.admin, "POST", f"{rbac}/roles", body=role)
        binding = {
            "metadata": {"name": SERVICE_ACCOUNT},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": SERVICE_ACCOUNT,
            },
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}],
        }
        await request_json(self.admin, "POST", f"{rbac}/rolebindings", body=binding)
        self.folder.mkdir(parents=True, exist_ok=True)
        await self._issue()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "chaos",
                    "cluster": {"server": server, "certificate-authority": self.ca_file},
                }
            ],
            "users": [{"name": SERVICE_ACCOUNT, "user": {"tokenFile": str(self.token_file)}}],
            "contexts": [
                {"name": "chaos", "context": {"cluster": "chaos", "user": SERVICE_ACCOUNT}}
            ],
            "current-context": "chaos",
        }
        _atomic_write(self.kubeconfig, json.dumps(config).encode())

    async def api_client(self) -> Any:
        """A new client (the caller closes it) authenticating with the token file."""
        return await new_api_client(kubeconfig=str(self.kubeconfig))

    async def rotate(self) -> None:
        """Write a new token to the file, then revoke the previous one."""
        old = self._secret
        await self._issue()
        if old is not None:
            await request_json(
                self.admin, "DELETE", f"/api/v1/namespaces/{self.namespace}/secrets/{old}"
            )
        self.rotations += 1

    async def _issue(self) -> None:
        base = f"/api/v1/namespaces/{self.namespace}"
        name = f"{SERVICE_ACCOUNT}-token-{self._issued}"
        self._issued += 1
        secret = await request_json(
            self.admin, "POST", f"{base}/secrets", body={"metadata": {"name": name}}
        )
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": 3600,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "name": name,
                    "uid": secret["metadata"]["uid"],
                },
            },
        }
        answer = await request_json(
            self.admin, "POST", f"{base}/serviceaccounts/{SERVICE_ACCOUNT}/token", body=request
        )
        _atomic_write(self.token_file, answer["status"]["token"].encode())
        self._secret = name


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
