"""Readiness against the real API server: the ``watches`` check when the server cannot
be reached (connections refused, or accepted and never answered), and the
``credentials`` check with the ``informer_auth_*`` metrics when a token is revoked.

The API server is made unreachable by a ``TcpProxy`` the client goes through. The
``watches`` check and the reflectors share an injected clock that only the test moves,
so "for longer than the limit" is exactly what the test set; the reflectors' backoffs
and the connections run in real time. The credentials check reads ``time.monotonic``
(the transport stamps its streaks with it): it gets a short threshold instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from api_helpers import (
    allow_configmaps,
    bound_token,
    core_object,
    until_rejected,
    write_kubeconfig,
)
from http_client import http_get
from prometheus_client.parser import text_string_to_metric_families

from informer import Client, ConnectionFailed, SharedInformerFactory, new_api_client
from informer._observability.endpoints import Observability
from informer._rest.request import request_json
from informer._rest.transport import auth_status
from informer.resources import CONFIGMAPS, SECRETS
from informer.testing import eventually
from informer.testing._proxy import TcpProxy
from informer.testing.control_plane import ControlPlane

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

WITHIN = 20.0
POLL = 0.02  # the reflector's state: cheap to check often
FAST = {"backoff_initial": 0.05, "backoff_cap": 0.5}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sample(body: str, name: str, **labels: str) -> float | None:
    found = [
        s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


@asynccontextmanager
async def through_proxy(control_plane: ControlPlane) -> AsyncIterator[tuple[Any, TcpProxy]]:
    """An admin client whose connections go through a TcpProxy the test controls."""
    port = int(control_plane.host.rsplit(":", 1)[1])
    async with TcpProxy("127.0.0.1", port) as proxy, control_plane.api_client() as api:
        api.configuration.host = proxy.url
        yield api, proxy


# ----------------------------------------------------------------------------- watches


@pytest.mark.parametrize("fault", ["refused", "stalled"])
async def test_an_unreachable_api_server_fails_readiness_naming_the_informer(
    control_plane: ControlPlane, namespace: str, fault: str
) -> None:
    """``refused``: the proxy closes every connection and refuses new ones, so watch
    opens fail with ConnectionFailed over and over. ``stalled``: the proxy accepts new
    connections and forwards nothing, so a watch open hangs in ``connecting`` (its TLS
    handshake never completes). Either way ``/readyz`` fails once the first unanswered
    attempt is older than the limit, the liveness ``watches`` check stays green (a
    restart would not help), and readiness returns with the server."""
    clock = FakeClock()
    async with through_proxy(control_plane) as (api, proxy):
        factory = SharedInformerFactory(
            api, namespace=namespace, reflector_options={"clock": clock, **FAST}
        )
        informer = factory.informer_for(CONFIGMAPS)
        reflector = informer.reflector
        obs = Observability(
            factories=[factory], process_metrics=False, clock=clock, unreachable_after=60.0
        )
        with anyio.fail_after(60):
            async with (
                obs.serve(metrics_address=None, health_address="127.0.0.1:0") as endpoints,
                factory,
            ):
                port = endpoints.health_port
                assert port is not None
                assert await factory.wait_for_cache_sync(timeout=WITHIN)

                def first_watch() -> None:
                    assert reflector.is_watching, "the first watch"

                await eventually(first_watch, timeout=WITHIN, interval=POLL)
                assert await http_get(port, "/readyz") == (200, "ok")

                accepted = proxy.connections_accepted
                proxy.cut()  # the open watch breaks
                if fault == "stalled":
                    proxy.stall()

                    def stalled() -> None:
                        assert proxy.connections_accepted > accepted, "a new connection"
                        assert reflector.state.value == "connecting", "stalled in its handshake"

                    await eventually(stalled, timeout=WITHIN, interval=POLL)
                else:
                    errors = reflector.stats.errors

                    def three_failed() -> None:
                        assert reflector.stats.errors >= errors + 3, "three failed attempts"
                        assert isinstance(reflector.last_error, ConnectionFailed)

                    await eventually(three_failed, timeout=WITHIN, interval=POLL)
                assert reflector.stats.connecting_since == clock.now
                assert await http_get(port, "/readyz") == (200, "ok")
                clock.now += 61.0
                status, body = await http_get(port, "/readyz")
                assert status == 500, body
                line = next(x for x in body.splitlines() if x.startswith("[-]"))
                assert line.startswith(
                    f"[-]watches failed: {informer.name}: no answer from the API server for "
                    "61s (limit 60s; "
                ), line
                assert "ConnectionFailed: cannot reach the API server at https://127.0.0.1:" in line
                if fault == "stalled":
                    assert "limit 60s; connecting;" in line
                assert "[+]informers ok" in body  # the cache is there, only stale
                # Not liveness (the event-loop check is not asked: the clock jumped).
                assert await http_get(port, "/healthz/watches") == (200, "ok\n")
                print(line)

                proxy.restore()

                def watching_again() -> None:
                    assert reflector.is_watching, "the reflector watches again"
                    assert reflector.stats.connecting_since is None

                # A stalled handshake resumes; a refused one retries within 1 s.
                await eventually(watching_again, timeout=40, interval=POLL)
                assert await http_get(port, "/readyz") == (200, "ok")


# ------------------------------------------------------------------------- credentials


async def test_a_revoked_token_fails_readiness_and_is_counted(
    control_plane: ControlPlane, api_client: Any, client: Client, namespace: str, tmp_path: Path
) -> None:
    """A client whose token (from a tokenFile) is revoked and never replaced: every
    answer is 401, so past the threshold ``/readyz`` says so and the metrics count the
    401s; a client with valid credentials, beside it, stays ready with no failure."""
    sa = "revoked"
    ns_path = f"/api/v1/namespaces/{namespace}"
    with anyio.fail_after(80):
        await request_json(
            api_client, "POST", f"{ns_path}/serviceaccounts", body={"metadata": {"name": sa}}
        )
        await allow_configmaps(api_client, namespace, sa)
        await client.create(core_object("Secret", "binding", namespace))
        token = await bound_token(api_client, namespace, sa, "binding")
        (tmp_path / "token").write_text(token)
        kubeconfig = tmp_path / "kubeconfig"
        write_kubeconfig(kubeconfig, control_plane, {"tokenFile": str(tmp_path / "token")})

        async with await new_api_client(kubeconfig=str(kubeconfig)) as api:
            status = auth_status(api)
            served: list[tuple[Observability, SharedInformerFactory]] = []
            for each in (api, api_client):
                factory = SharedInformerFactory(
                    each,
                    namespace=namespace,
                    # Re-watch every 1-2 s: the revocation is met within seconds.
                    reflector_options={"min_watch_timeout": 1, **FAST},
                )
                factory.informer_for(CONFIGMAPS)
                obs = Observability(
                    factories=[factory],
                    api_client=each,
                    process_metrics=False,
                    auth_failure_threshold=1.0,
                )
                served.append((obs, factory))
            (bad_obs, bad_factory), (good_obs, good_factory) = served
            async with (
                bad_obs.serve(metrics_address="127.0.0.1:0", health_address="127.0.0.1:0") as bad,
                good_obs.serve(metrics_address="127.0.0.1:0", health_address="127.0.0.1:0") as good,
                bad_factory,
                good_factory,
            ):
                assert bad.health_port and bad.metrics_port
                assert good.health_port and good.metrics_port
                assert await bad_factory.wait_for_cache_sync(timeout=WITHIN)
                assert await good_factory.wait_for_cache_sync(timeout=WITHIN)
                assert await http_get(bad.health_port, "/readyz") == (200, "ok")
                assert await http_get(bad.health_port, "/readyz/credentials") == (200, "ok\n")
                _, metrics = await http_get(bad.metrics_port, "/metrics")
                assert sample(metrics, "informer_auth_failures_total", code="401") == 0
                assert sample(metrics, "informer_auth_failing_seconds") == 0

                await client.delete(SECRETS, "binding", namespace=namespace)  # revokes the token
                await until_rejected(control_plane, token)

                def unauthorized() -> None:
                    assert status.unauthorized_total > 0, "a 401"

                await eventually(unauthorized, timeout=WITHIN, interval=0.02)

                async def red() -> str:
                    code, body = await http_get(bad.health_port, "/readyz")
                    assert code == 500, f"/readyz still answers {code}: {body}"
                    return body

                body = await eventually(red, timeout=WITHIN, interval=0.1)
                line = next(x for x in body.splitlines() if "credentials" in x)
                assert line.startswith(
                    f"[-]credentials failed: {control_plane.host}: every answer for "
                ), line
                assert "was 401/403 (" in line and "limit 1s), the last 401 Unauthorized" in line
                assert "check the token file or the kubeconfig user" in line
                print(line)

                _, metrics = await http_get(bad.metrics_port, "/metrics")
                failures = sample(metrics, "informer_auth_failures_total", code="401")
                assert failures is not None and failures >= status.consecutive_failures >= 1
                assert sample(metrics, "informer_auth_failures_total", code="403") == 0
                failing = sample(metrics, "informer_auth_failing_seconds")
                assert failing is not None and failing > 1.0
                assert sample(metrics, "informer_credential_reloads_total", kind="token") == 0

                # The valid client beside it: ready, not a single rejection.
                assert await http_get(good.health_port, "/readyz") == (200, "ok")
                _, metrics = await http_get(good.metrics_port, "/metrics")
                assert sample(metrics, "informer_auth_failures_total", code="401") == 0
                assert sample(metrics, "informer_auth_failing_seconds") == 0
