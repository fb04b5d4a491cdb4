"""Test helpers shared by the e2e tests: object builders, bounded polling and
ServiceAccount credentials. Writes go through the ``client`` fixture (``informer.Client``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from kubernetes_asyncio.client import ApiClient, Configuration

from informer import Forbidden, Obj, Unauthorized, request_json
from informer.testing import eventually

if TYPE_CHECKING:
    from informer.testing import ControlPlane


def core_object(
    kind: str, name: str, namespace: str, *, labels: dict[str, str] | None = None, **fields: Any
) -> Obj:
    """A core/v1 ``kind`` named ``name`` in ``namespace`` with ``labels`` and top-level
    ``fields`` (``data=...``, ``stringData=...``), ready for ``Client.create``."""
    meta: Obj = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, **fields}


async def until(condition: Callable[[], Any], what: str, within: float) -> None:
    """``informer.testing.eventually`` on a synchronous ``condition`` (truthy when it
    holds), polled every 20 ms, failing with ``what`` after ``within`` seconds.

    New tests call ``eventually`` directly, with a check that asserts what it waits
    for.
    """

    def holds() -> None:
        assert condition(), f"not within {within:g}s: {what}"

    await eventually(holds, timeout=within, interval=0.02)


# ------------------------------------------------------------- credentials


def write_kubeconfig(path: Path, cluster: ControlPlane | str, user: dict[str, Any]) -> Path:
    """The tests' one kubeconfig writer: ``path`` holds a kubeconfig (JSON, which is YAML)
    with one cluster, one ``user`` entry (``{"token": ...}``, ``{"tokenFile": ...}``,
    ``{"exec": {...}}``, client certificate files...) and its current context; returns
    ``path``.

    ``cluster`` is a control plane (its URL and CA) or a server URL (no CA: a plain-HTTP
    fake, or a server the test never completes a TLS handshake with). The kit's own
    writer (``informer.testing.control_plane``) makes the client-certificate kubeconfig
    of each ``control_plane.user(...)``; use those where a certificate identity will do.
    """
    if isinstance(cluster, str):
        entry: dict[str, Any] = {"server": cluster}
    else:
        entry = {"server": cluster.host, "certificate-authority": str(cluster.dir / "ca.crt")}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": entry}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    path.write_bytes(orjson.dumps(config))
    return path


async def bound_token(api: Any, namespace: str, sa: str, secret: str) -> str:
    """A ServiceAccount token bound to a Secret: deleting the Secret revokes it."""
    answer = await request_json(
        api,
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": 3600,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": secret},
            },
        },
    )
    token: str = answer["status"]["token"]
    return token


async def allow_configmaps(api: Any, namespace: str, sa: str) -> None:
    """Let ServiceAccount ``sa`` read ConfigMaps in ``namespace``."""
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    verbs = ["get", "list", "watch"]
    await request_json(
        api,
        "POST",
        f"{rbac}/roles",
        body={
            "metadata": {"name": sa},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs}],
        },
    )
    await request_json(
        api,
        "POST",
        f"{rbac}/rolebindings",
        body={
            "metadata": {"name": sa},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
        },
    )


async def until_rejected(control_plane: Any, token: str, within: float = 30.0) -> None:
    """Wait until the API server answers ``token`` with 401 (revocation is eventual)."""
    cfg = Configuration(host=control_plane.host)
    cfg.ssl_ca_cert = str(control_plane.dir / "ca.crt")
    cfg.api_key["BearerToken"] = f"Bearer {token}"
    async with ApiClient(configuration=cfg) as probe:

        async def rejected() -> None:
            try:
                await request_json(probe, "GET", "/api/v1/namespaces/default/configmaps")
            except Unauthorized:
                return
            except Forbidden:
                pass  # authenticated, not authorized: still valid
            raise AssertionError("the token is still accepted")

        await eventually(rejected, timeout=within, interval=0.1)


def replace_file(path: Path, data: bytes) -> None:
    """As a kubelet projected volume or a secret mount does: a new file renamed in place."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


async def serves_watch_list(api: Any, namespace: str = "default") -> bool:
    """Whether the server answers a watch with ``sendInitialEvents`` (Kubernetes 1.33
    rejects it, 422, unless its WatchList feature gate is on): what the reflector's
    watch-list mode expects, or falls back from."""
    from informer import ApiError

    path = (
        f"/api/v1/namespaces/{namespace}/configmaps?watch=1&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1&limit=1"
    )
    try:
        await request_json(api, "GET", path)
    except ApiError as exc:
        if exc.status == 422:
            return False
        if exc.status >= 400:
            raise
        # 200: a stream of events (not one JSON document), so it was served
    return True
