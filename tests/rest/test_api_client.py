"""Building an ApiClient (``informer._rest.api_client.new_api_client``): a kubeconfig
file, ``$KUBECONFIG``, exec plugins, and one-line errors for broken files. The server is
the local aiohttp server of ``test_transport``."""

from __future__ import annotations

import datetime
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from api_helpers import write_kubeconfig
from fake_http import serving
from test_transport import Server

from informer._exceptions import ConfigError
from informer._rest.api_client import new_api_client
from informer._rest.request import request_json

pytestmark = pytest.mark.anyio


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    fake = Server()
    async with serving(fake.dispatch) as fake.url:
        yield fake


async def test_new_api_client_from_kubeconfig(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, server.url, {"token": "s3cret"})
    async with await new_api_client(kubeconfig=str(path)) as client:
        await request_json(client, "GET", "/version")
    assert server.seen[-1].headers["Authorization"] == "Bearer s3cret"


EXEC_PLUGIN = """
import json, pathlib, sys
counter = pathlib.Path(sys.argv[1])
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
print(json.dumps({
    "apiVersion": "client.authentication.k8s.io/v1beta1",
    "kind": "ExecCredential",
    "status": {"token": f"exec-{n}", "expirationTimestamp": sys.argv[2]},
}))
"""


@pytest.mark.parametrize(
    ("expires", "tokens"),
    [
        # Expired (client-go: after expirationTimestamp, no margin): every request runs
        # the plugin again.
        ("-60", ["exec-2", "exec-3"]),
        # Not expired yet, though within kubernetes_asyncio's 5-minute skew: cached.
        ("+180", ["exec-1", "exec-1"]),
        ("+7200", ["exec-1", "exec-1"]),
    ],
    ids=["expired", "expiring", "valid"],
)
async def test_exec_plugin_token_is_refreshed(
    server: Server, tmp_path: Path, expires: str, tokens: list[str]
) -> None:
    expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=int(expires))
    plugin = tmp_path / "plugin.py"
    plugin.write_text(EXEC_PLUGIN)
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(plugin), str(tmp_path / "count"), expiry.strftime("%Y-%m-%dT%H:%M:%SZ")],
        }
    }
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, server.url, user)
    with anyio.fail_after(30):
        async with await new_api_client(kubeconfig=str(path)) as client:
            await request_json(client, "GET", "/a")
            await request_json(client, "GET", "/b")
    assert [s.headers["Authorization"] for s in server.seen] == [f"Bearer {t}" for t in tokens]


async def test_new_api_client_uses_kubeconfig_env(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kc"
    write_kubeconfig(path, server.url, {"token": "from-env"})
    monkeypatch.setenv("KUBECONFIG", f"{path}{os.pathsep}/nonexistent")
    async with await new_api_client() as client:
        assert client.configuration.host == server.url


async def test_new_api_client_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        await new_api_client(kubeconfig=str(tmp_path / "nope"), in_cluster=False)


async def test_new_api_client_bad_context(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, server.url, {"token": "t"})
    with pytest.raises(ConfigError, match="kubeconfig"):
        await new_api_client(kubeconfig=str(path), context="nope")


GOOD: dict[str, Any] = {
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "ctx",
}


@pytest.mark.parametrize(
    ("content", "context", "message"),
    [
        ("", None, r"is empty: a kubeconfig needs clusters, users, contexts"),
        ("# only a comment\n", None, r"is empty"),
        ({**GOOD, "users": [{"name": "other", "user": {}}]}, None,
         r", context 'ctx': user 'u' is not defined \(users: 'other'\)$"),
        ({**GOOD, "users": None}, None,
         r", context 'ctx': user 'u' is not defined \(the file defines no users\)$"),
        ({**GOOD, "users": [{"name": "u", "user": None}]}, None,
         r", context 'ctx': user 'u' has no 'user' mapping"),
        ({**GOOD, "contexts": [{"name": "ctx", "context": {"cluster": "c"}}]}, None,
         r", context 'ctx': the context names no user"),
        ({**GOOD, "clusters": [{"name": "other", "cluster": {"server": "https://x"}}]}, None,
         r", context 'ctx': cluster 'c' is not defined \(clusters: 'other'\)$"),
        ({**GOOD, "clusters": [{"name": "c", "cluster": {}}]}, None,
         r", context 'ctx': cluster 'c' has no server"),
        ({**GOOD, "contexts": [{"name": "ctx", "context": {"user": "u"}}]}, None,
         r", context 'ctx': the context names no cluster"),
        (GOOD, "nope", r": context 'nope' is not defined \(contexts: 'ctx'\)$"),
        ({**GOOD, "current-context": "gone"}, None,
         r": current-context 'gone' is not defined \(contexts: 'ctx'\)$"),
        ({k: v for k, v in GOOD.items() if k != "current-context"}, None,
         r" sets no current-context: pass a context \(contexts: 'ctx'\)"),
        ({**GOOD, "current-context": ""}, None, r" sets no current-context"),
        ([GOOD], None, r" is not a kubeconfig: its top level is a list"),
        ({**GOOD, "users": {"u": {}}}, None, r": users is a mapping, not a list$"),
        ("clusters: [\n", None, r" is not valid YAML: "),
    ],
    ids=["empty", "comment-only", "missing-user", "null-users", "null-user", "context-no-user",
         "missing-cluster", "cluster-no-server", "context-no-cluster", "missing-context",
         "missing-current-context", "current-context-unset", "current-context-empty",
         "top-level-list", "users-not-a-list", "bad-yaml"],
)  # fmt: skip
async def test_broken_kubeconfig_is_one_line(
    tmp_path: Path, content: str | Any, context: str | None, message: str
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_bytes(content.encode() if isinstance(content, str) else orjson.dumps(content))
    with pytest.raises(ConfigError) as info:
        await new_api_client(kubeconfig=str(path), context=context, in_cluster=False)
    text = str(info.value)
    assert text.startswith(f"kubeconfig {str(path)!r}")
    assert "\n" not in text
    assert re.search(message, text), text


async def test_anonymous_user_and_unrelated_broken_entries_load(tmp_path: Path) -> None:
    """Only the selected context, cluster and user are checked, as the loader reads them."""
    config = {
        **GOOD,
        "users": [{"name": "u", "user": {}}, {"name": "broken", "user": None}],
        "clusters": [*GOOD["clusters"], {"name": "no-server", "cluster": {}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_bytes(orjson.dumps(config))
    async with await new_api_client(kubeconfig=str(path), in_cluster=False) as client:
        assert client.configuration.host == "https://127.0.0.1:6443"
        assert client.configuration.api_key == {}
