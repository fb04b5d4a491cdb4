"""The transport against the real control plane: what only the API server can tell
(which patch types it accepts, how it answers rotated and revoked credentials)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from api_helpers import (
    allow_configmaps,
    bound_token,
    core_object,
    replace_file,
    until,
    until_rejected,
    write_kubeconfig,
)

from informer import Client, SharedInformerFactory, Unauthorized, new_api_client
from informer._rest.request import request_json
from informer._rest.stream import stream_request
from informer._rest.transport import auth_status
from informer.resources import CONFIGMAPS, SECRETS

FAST = {"backoff_initial": 0.05, "backoff_cap": 0.5}

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("content_type", "body", "data"),
    [
        (None, {"data": {"a": None, "c": "3"}}, {"b": "2", "c": "3"}),
        ("merge", {"data": {"a": "10"}}, {"a": "10", "b": "2"}),
        ("strategic", {"data": {"b": None}}, {"a": "1"}),
        ("json", [{"op": "replace", "path": "/data/a", "value": "x"}], {"a": "x", "b": "2"}),
        ("application/json-patch+json", [{"op": "remove", "path": "/data/b"}], {"a": "1"}),
    ],
    ids=["default-is-merge", "merge", "strategic", "json", "json-media-type"],
)  # fmt: skip
async def test_patch_types_accepted_by_the_server(
    api_client: Any,
    client: Client,
    namespace: str,
    content_type: str | None,
    body: Any,
    data: dict[str, str],
) -> None:
    with anyio.fail_after(30):
        await client.create(core_object("ConfigMap", "p", namespace, data={"a": "1", "b": "2"}))
        path = CONFIGMAPS.path("p", namespace=namespace)
        got = await request_json(api_client, "PATCH", path, body=body, content_type=content_type)
        assert got["data"] == data
        assert (await client.get(CONFIGMAPS, "p", namespace=namespace))["data"] == data


async def test_apply_patch(api_client: Any, namespace: str) -> None:
    path = CONFIGMAPS.path("applied", namespace=namespace)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"},
            "data": {"k": "v"}}  # fmt: skip
    with anyio.fail_after(30):
        got = await request_json(api_client, "PATCH", path, body=body, content_type="apply",
                                 query={"fieldManager": "test"})  # fmt: skip
    assert got["data"] == {"k": "v"}
    assert got["metadata"]["managedFields"][0]["manager"] == "test"


async def test_plain_json_patch_is_refused_before_sending(
    api_client: Any, client: Client, namespace: str
) -> None:
    """The server would answer ``application/json`` with a bare 415."""
    with anyio.fail_after(30):
        created = await client.create(core_object("ConfigMap", "p", namespace))
        path = CONFIGMAPS.path("p", namespace=namespace)
        with pytest.raises(ValueError, match="not a patch type"):
            await request_json(
                api_client, "PATCH", path, body={"data": {}}, content_type="application/json"
            )
        after = await client.get(CONFIGMAPS, "p", namespace=namespace)
    assert after["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


# ------------------------------------------------------------- rotated credentials


async def test_rotated_token_file_recovers_without_restart(
    control_plane: Any, api_client: Any, client: Client, namespace: str, tmp_path: Path
) -> None:
    """A kubeconfig tokenFile rotated to a new token, the old one revoked: one request
    (or one watch) fails with 401, the next one reads the file again and succeeds; an
    informer on the client keeps working, and the AuthStatus shows the episode."""
    sa = "rotating"
    ns_path = f"/api/v1/namespaces/{namespace}"
    with anyio.fail_after(60):
        await request_json(
            api_client, "POST", f"{ns_path}/serviceaccounts", body={"metadata": {"name": sa}}
        )
        await allow_configmaps(api_client, namespace, sa)
        for secret in ("first", "second"):
            await client.create(core_object("Secret", secret, namespace))
        first = await bound_token(api_client, namespace, sa, "first")
        token_file = tmp_path / "token"
        token_file.write_text(first + "\n")
        kubeconfig = tmp_path / "kubeconfig"
        write_kubeconfig(kubeconfig, control_plane, {"tokenFile": "token"})  # relative path

        async with await new_api_client(kubeconfig=str(kubeconfig)) as api:
            status = auth_status(api)
            factory = SharedInformerFactory(
                api,
                namespace=namespace,
                reflector_options={"min_watch_timeout": 1, **FAST},
            )
            informer = factory.informer_for(CONFIGMAPS, label_selector="rotation=yes")
            async with factory:
                assert await factory.wait_for_cache_sync(timeout=30)
                assert status.consecutive_failures == 0 and status.last_success_at is not None

                replace_file(
                    token_file, (await bound_token(api_client, namespace, sa, "second")).encode()
                )
                await client.delete(SECRETS, "first", namespace=namespace)
                await until_rejected(control_plane, first)

                # The informer re-watches every 1-2 s: it meets the 401 and recovers.
                await until(lambda: status.unauthorized_total > 0, "the informer to meet a 401", 10)
                labels = {"rotation": "yes"}
                await client.create(core_object("ConfigMap", "after", namespace, labels=labels))
                key = f"{namespace}/after"
                await until(
                    lambda: informer.indexer.get_by_key(key) is not None,
                    "the informer to see a ConfigMap made after the rotation",
                    30,
                )
                # And so do plain requests on the same client.
                await request_json(api, "GET", f"{ns_path}/configmaps")
                async with stream_request(
                    api, f"{ns_path}/configmaps", query={"watch": True, "timeoutSeconds": 1}
                ):
                    pass

    assert status.consecutive_failures == 0
    assert status.failing_since is None
    assert status.token_reloads == 1
    assert status.last_failure_status == 401 and status.last_failure_at is not None


async def test_refused_request_rereads_the_token_file_once(
    control_plane: Any, api_client: Any, client: Client, namespace: str, tmp_path: Path
) -> None:
    """Without an informer: exactly one 401, then the next request succeeds."""
    sa = "rotating"
    with anyio.fail_after(60):
        await request_json(
            api_client,
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            body={"metadata": {"name": sa}},
        )
        for secret in ("first", "second"):
            await client.create(core_object("Secret", secret, namespace))
        first = await bound_token(api_client, namespace, sa, "first")
        token_file = tmp_path / "token"
        token_file.write_text(first)
        kubeconfig = tmp_path / "kubeconfig"
        write_kubeconfig(kubeconfig, control_plane, {"tokenFile": str(token_file)})
        async with await new_api_client(kubeconfig=str(kubeconfig)) as api:
            status = auth_status(api)
            version = "/version"  # any authenticated user may read it
            await request_json(api, "GET", version)
            replace_file(
                token_file, (await bound_token(api_client, namespace, sa, "second")).encode()
            )
            await client.delete(SECRETS, "first", namespace=namespace)
            await until_rejected(control_plane, first)
            with pytest.raises(Unauthorized):
                await request_json(api, "GET", version)
            assert (status.consecutive_failures, status.unauthorized_total) == (1, 1)
            assert status.failing_for() > 0
            await request_json(api, "GET", version)
            assert status.consecutive_failures == 0
            assert status.token_reloads == 1


async def test_rotated_client_certificate_is_loaded_after_a_401(
    control_plane: Any, tmp_path: Path
) -> None:
    """Client certificate files replaced by a valid pair: after a 401 the client checks
    the files, and its next connection presents the new certificate."""
    from informer.testing.control_plane._certs import CertificateAuthority

    stranger = CertificateAuthority("not-the-cluster-ca").issue_client("nobody")
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    stranger.write(cert, key)
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(
        kubeconfig, control_plane, {"client-certificate": str(cert), "client-key": str(key)}
    )
    admin = control_plane.user("rotated-admin", ["system:masters"])
    admin_dir = admin.kubeconfig_path.parent
    with anyio.fail_after(60):
        async with await new_api_client(kubeconfig=str(kubeconfig)) as api:
            status = auth_status(api)
            with pytest.raises(Unauthorized):
                await request_json(api, "GET", "/api/v1/namespaces")
            replace_file(cert, (admin_dir / "client.crt").read_bytes())
            replace_file(key, (admin_dir / "client.key").read_bytes())
            with pytest.raises(Unauthorized):  # sent before the 401 that has the files checked
                await request_json(api, "GET", "/api/v1/namespaces")
            assert status.certificate_reloads == 1
            await request_json(api, "GET", "/api/v1/namespaces")
            assert status.consecutive_failures == 0


# ------------------------------------------------------------------ many watches


@pytest.mark.timeout(300)
async def test_300_informers_on_one_client_and_a_prompt_write(
    control_plane: Any, namespace: str
) -> None:
    """Three times more open watches than the ApiClient's pool has connections: every
    informer syncs and sees its events, and a write on the same client is not delayed."""
    count = 300
    async with control_plane.api_client() as api:
        assert api.configuration.connection_pool_maxsize < count
        factory = SharedInformerFactory(api, namespace=namespace, reflector_options=FAST)
        informers = [
            factory.informer_for(CONFIGMAPS, label_selector=f"n={i}") for i in range(count)
        ]
        with anyio.fail_after(240):
            async with factory:
                assert await factory.wait_for_cache_sync(timeout=200)
                await until(
                    lambda: all(i.reflector.is_watching for i in informers),
                    "every informer to hold its watch open",
                    60,
                )
                writer = Client(api)  # resource= below: the writes are one POST each
                with anyio.fail_after(5):
                    for i in (0, count // 2, count - 1):
                        cm = core_object("ConfigMap", f"cm-{i}", namespace, labels={"n": str(i)})
                        await writer.create(cm, resource=CONFIGMAPS)
                for i in (0, count // 2, count - 1):
                    key = f"{namespace}/cm-{i}"
                    await until(
                        lambda key=key, i=i: list(informers[i].indexer.list_keys()) == [key],
                        f"informer {i} to see its ConfigMap",
                        30,
                    )
