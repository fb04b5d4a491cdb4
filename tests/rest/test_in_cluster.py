"""The in-cluster configuration path of ``new_api_client``, on the real control plane."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from api_helpers import bound_token, core_object, replace_file, until_rejected

from informer import Client, Forbidden, Unauthorized, new_api_client, request_json
from informer._rest.transport import auth_status
from informer.resources import SECRETS

pytestmark = pytest.mark.anyio


async def test_in_cluster_config_inside_a_pod(
    control_plane: Any,
    api_client: Any,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No kubeconfig anywhere, the Pod's env and service-account files: in-cluster."""
    from kubernetes_asyncio.config import incluster_config

    sa = "in-pod"
    await request_json(
        api_client,
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        body={"metadata": {"name": sa}},
    )
    answer = await request_json(
        api_client,
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    token = tmp_path / "token"
    token.write_text(answer["status"]["token"])
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(
        incluster_config, "SERVICE_CERT_FILENAME", str(control_plane.dir / "ca.crt")
    )
    host, port = control_plane.host.removeprefix("https://").rsplit(":", 1)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    async with await new_api_client() as api:
        version = await request_json(api, "GET", "/version")
        assert version["gitVersion"].startswith("v1.36")
        with pytest.raises(Forbidden) as denied:  # it is the ServiceAccount: no RBAC yet
            await request_json(
                api, "GET", f"/api/v1/namespaces/{namespace}/configmaps", verb="list",
                resource="configmaps", namespace=namespace,
            )  # fmt: skip
    assert f"system:serviceaccount:{namespace}:{sa}" in str(denied.value)


async def test_in_cluster_token_file_is_reread_after_rotation(
    control_plane: Any,
    api_client: Any,
    client: Client,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/guides/deploy.md: the in-cluster token is re-read (as client-go's
    cachingTokenSource does): the kubelet rotates the projected token file and the old
    token is revoked; the running client's next request meets one 401, reads the file
    again and succeeds as the new identity, without a restart."""
    from kubernetes_asyncio.config import incluster_config

    with anyio.fail_after(60):
        for sa in ("old-sa", "new-sa"):
            await request_json(
                api_client,
                "POST",
                f"/api/v1/namespaces/{namespace}/serviceaccounts",
                body={"metadata": {"name": sa}},
            )
        for secret in ("first", "second"):
            await client.create(core_object("Secret", secret, namespace))
        token = tmp_path / "token"
        first = await bound_token(api_client, namespace, "old-sa", "first")
        token.write_text(first)
        monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
        monkeypatch.setattr(
            incluster_config, "SERVICE_CERT_FILENAME", str(control_plane.dir / "ca.crt")
        )
        host, port = control_plane.host.removeprefix("https://").rsplit(":", 1)
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
        monkeypatch.setenv("HOME", str(tmp_path))
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        async with await new_api_client() as api:
            with pytest.raises(Forbidden, match=f"{namespace}:old-sa"):
                await request_json(api, "GET", path)
            replace_file(
                token, (await bound_token(api_client, namespace, "new-sa", "second")).encode()
            )
            await client.delete(SECRETS, "first", namespace=namespace)  # revokes the old token
            await until_rejected(control_plane, first)
            with pytest.raises(Unauthorized):  # the cached token, refused once...
                await request_json(api, "GET", path)
            with pytest.raises(Forbidden, match=f"{namespace}:new-sa"):  # ...then re-read
                await request_json(api, "GET", path)
            status = auth_status(api)
    assert status.token_reloads == 1 and status.unauthorized_total == 1
