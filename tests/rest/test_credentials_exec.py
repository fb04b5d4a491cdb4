"""A kubeconfig ``exec`` credential plugin against the real control plane: its token is
obtained again after a 401 (client-go's exec authenticator, ``maybeRefreshCreds``),
whether or not the plugin states an ``expirationTimestamp``.

The plugin is a real program (a Python script run by the loader): it prints an
``ExecCredential`` with the token found in a file, which the test rotates to a new
ServiceAccount token before revoking the old one, and counts its runs.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from api_helpers import bound_token, core_object, replace_file, until_rejected, write_kubeconfig

from informer import Client, ConfigError, Unauthorized, new_api_client
from informer._rest.credentials import ExecToken
from informer._rest.request import request_json
from informer._rest.transport import auth_status
from informer.resources import SECRETS

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

PLUGIN = """
import json, pathlib, sys
token, runs, expiry = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
runs.write_text(str(int(runs.read_text()) + 1 if runs.exists() else 1))
status = {"token": token.read_text().strip()}
if expiry:
    status["expirationTimestamp"] = expiry
print(json.dumps({
    "apiVersion": "client.authentication.k8s.io/v1",
    "kind": "ExecCredential",
    "status": status,
}))
"""


@pytest.mark.parametrize("expires_in", [None, 3600], ids=["no-expiry", "expires-in-1h"])
async def test_exec_plugin_runs_again_after_a_401(
    control_plane: Any,
    api_client: Any,
    client: Client,
    namespace: str,
    tmp_path: Path,
    expires_in: int | None,
) -> None:
    """Rotated and revoked: one request fails with 401, the plugin runs once more, the
    next request succeeds with the new token (and the AuthStatus counts the reload)."""
    sa = "exec-user"
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
        token, runs = tmp_path / "token", tmp_path / "runs"
        token.write_text(first)
        expiry = ""
        if expires_in is not None:
            moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expires_in)
            expiry = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        plugin = tmp_path / "plugin.py"
        plugin.write_text(PLUGIN)
        exec_config = {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(plugin), str(token), str(runs), expiry],
            "interactiveMode": "Never",
        }
        kubeconfig = tmp_path / "kubeconfig"
        write_kubeconfig(kubeconfig, control_plane, {"exec": exec_config})
        async with await new_api_client(kubeconfig=str(kubeconfig)) as api:
            status = auth_status(api)
            version = "/version"  # any authenticated user may read it
            await request_json(api, "GET", version)
            await request_json(api, "GET", version)
            assert runs.read_text() == "1"  # cached: no run per request

            replace_file(token, (await bound_token(api_client, namespace, sa, "second")).encode())
            await client.delete(SECRETS, "first", namespace=namespace)
            await until_rejected(control_plane, first)
            with pytest.raises(Unauthorized):
                await request_json(api, "GET", version)
            assert runs.read_text() == "1"  # the plugin runs for the next request
            await request_json(api, "GET", version)
            await request_json(api, "GET", version)
            assert runs.read_text() == "2"
            assert status.consecutive_failures == 0
            assert (status.unauthorized_total, status.token_reloads) == (1, 1)


# -- the caching rules, with a fake plugin and injected clocks ----------------------------


class Plugin:
    """Answers ``ExecCredential`` statuses: ``exec-N`` on run N, optionally failing."""

    def __init__(self, expiry: str | None = None) -> None:
        self.runs = 0
        self.expiry = expiry
        self.fail = False
        self.gate: anyio.Event | None = None

    async def __call__(self) -> Mapping[str, Any]:
        self.runs += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("exec: process returned 1. no credentials today")
        status = {"token": f"exec-{self.runs + 1}"}
        if self.expiry:
            status["expirationTimestamp"] = self.expiry
        return status


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def exec_token(
    plugin: Plugin, wall: Clock, mono: Clock, expiry: datetime.datetime | None
) -> ExecToken:
    return ExecToken(
        plugin, token="exec-1", expiry=expiry, command="plugin", clock=mono, wall_clock=wall
    )


async def test_token_is_cached_until_it_expires() -> None:
    plugin = Plugin(expiry="2026-01-01T02:00:00Z")
    wall, mono = Clock(NOW.timestamp()), Clock(10.0)
    source = exec_token(plugin, wall, mono, NOW + datetime.timedelta(hours=1))
    assert await source.token() == "exec-1"
    wall.now += 3600  # at the expiry: still valid (client-go: after it, no margin)
    assert await source.token() == "exec-1" and plugin.runs == 0
    wall.now += 1
    assert await source.token() == "exec-2" and plugin.runs == 1
    assert await source.token() == "exec-2" and plugin.runs == 1  # the new expiry holds
    assert source.reloads == 1


async def test_a_401_runs_the_plugin_once_for_concurrent_requests() -> None:
    plugin = Plugin()
    wall, mono = Clock(NOW.timestamp()), Clock(10.0)
    source = exec_token(plugin, wall, mono, None)
    source.reset_older_than(5.0)  # a request sent before the token was obtained: kept
    assert await source.token() == "exec-1" and plugin.runs == 0
    mono.now = 20.0
    source.reset_older_than(15.0)
    plugin.gate = anyio.Event()
    got: list[str] = []

    async def request() -> None:
        got.append(await source.token())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(request)
            await anyio.wait_all_tasks_blocked()
            plugin.gate.set()
    assert got == ["exec-2"] * 3 and plugin.runs == 1
    source.reset_older_than(15.0)  # the same 401 again: the new token stays
    assert await source.token() == "exec-2" and plugin.runs == 1


async def test_a_failing_plugin_keeps_a_valid_token_and_fails_on_an_expired_one() -> None:
    plugin = Plugin()
    plugin.fail = True
    wall, mono = Clock(NOW.timestamp()), Clock(10.0)
    source = exec_token(plugin, wall, mono, NOW + datetime.timedelta(minutes=1))
    mono.now = 20.0
    source.reset_older_than(15.0)
    assert await source.token() == "exec-1"
    assert await source.token() == "exec-1" and plugin.runs == 2  # tried again each time
    wall.now += 61
    with pytest.raises(ConfigError, match="'plugin' failed and its last token expired"):
        await source.token()
    plugin.fail = False
    assert await source.token() == "exec-5"
