"""A ServiceAccount identity whose bound token lives in a file the soak rotates.

The informer built on :meth:`TokenIdentity.api_client` authenticates with the kubeconfig
``tokenFile`` (no client certificate). Each token is bound to its own (empty) Secret, so
deleting that Secret revokes the token: :meth:`TokenIdentity.rotate` returns once the
old token answers 401 (kube-apiserver caches a successful token review for 10 s), so
that only a client that re-reads its token file recovers. The identity may only read
ConfigMaps of one namespace.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio

from informer import Unauthorized, new_api_client, request_json
from informer.resources import CONFIGMAPS

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
        self._secret = ""
        self._direct = ""
        self._config: dict[str, Any] = {}

    async def create(self, server: str, *, direct: str) -> None:
        """The ServiceAccount, a Role to read ConfigMaps, its binding, a first token, and
        a kubeconfig pointing at ``server`` with ``tokenFile``. ``direct`` is the API
        server's own URL, used to check that a revoked token is refused."""
        self._direct = direct
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
        self._config = config

    async def api_client(self) -> Any:
        """A new client (the caller closes it) authenticating with the token file."""
        return await new_api_client(kubeconfig=str(self.kubeconfig))

    async def rotate(self, *, within: float = 30.0) -> float:
        """Write a new token to the file, revoke the previous one, and wait (at most
        ``within`` seconds) until the API server refuses it; returns that wait."""
        old_secret, old_token = self._secret, self.token_file.read_text()
        await self._issue()
        await request_json(
            self.admin, "DELETE", f"/api/v1/namespaces/{self.namespace}/secrets/{old_secret}"
        )
        self.rotations += 1
        began = anyio.current_time()
        config = json.loads(json.dumps(self._config))
        config["clusters"][0]["cluster"]["server"] = self._direct
        config["users"][0]["user"] = {"token": old_token}
        path = self.folder / "revoked-kubeconfig"
        _atomic_write(path, json.dumps(config).encode())
        async with await new_api_client(kubeconfig=str(path)) as revoked:
            with anyio.fail_after(within):
                while True:
                    try:
                        await request_json(
                            revoked, "GET", CONFIGMAPS.path(namespace=self.namespace)
                        )
                    except Unauthorized:
                        break
                    await anyio.sleep(0.5)
        return anyio.current_time() - began

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
