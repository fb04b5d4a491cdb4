"""The in-cluster configuration path of ``new_api_client``, on the real control plane."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from informer import Forbidden, new_api_client, request_json

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
