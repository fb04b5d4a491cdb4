"""The transport (``informer._rest.transport``, ``request``, ``stream``, ``errors``): raw
requests through an ApiClient, error mapping, streams and their session. The server is a
local aiohttp server (:class:`Server`, also used by ``test_api_client``)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import orjson
import pytest
from aiohttp import web
from fake_http import serving
from kubernetes_asyncio.client import ApiClient, Configuration

from informer._exceptions import (
    ApiError,
    ConfigError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    TooManyRequests,
)
from informer._rest import transport
from informer._rest.request import request_json
from informer._rest.stream import stream_request

pytestmark = pytest.mark.anyio

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class Recorded:
    """What the server saw of one request."""

    def __init__(self, request: web.BaseRequest, body: bytes) -> None:
        self.method = request.method
        self.path = request.path
        self.query = dict(request.query)
        self.headers = dict(request.headers)
        self.body = body


class Server:
    def __init__(self) -> None:
        self.seen: list[Recorded] = []
        self.url = ""
        self.answer: Handler = self.echo

    async def dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        self.seen.append(Recorded(request, await request.read()))
        return await self.answer(request)

    async def echo(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer a JSON object describing the request."""
        seen = self.seen[-1]
        return web.json_response(
            {"method": seen.method, "path": seen.path, "body": seen.body.decode()}
        )

    def reply(self, body: bytes, *, code: int = 200, headers: dict[str, str] | None = None) -> None:
        async def answer(request: web.BaseRequest) -> web.StreamResponse:
            return web.Response(status=code, body=body, headers=headers)

        self.answer = answer


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    fake = Server()
    async with serving(fake.dispatch) as fake.url:
        yield fake


@pytest.fixture
async def api_client(server: Server) -> AsyncIterator[ApiClient]:
    cfg = Configuration(host=server.url)
    cfg.api_key["BearerToken"] = "Bearer tok-1"
    async with ApiClient(configuration=cfg) as client:
        yield client


# ------------------------------------------------------------------------ requests


async def test_get_sends_auth_and_default_headers(server: Server, api_client: ApiClient) -> None:
    api_client.set_default_header("X-Extra", "1")
    got = await request_json(api_client, "get", "/api/v1/namespaces/ns/configmaps/a")
    assert got == {"method": "GET", "path": "/api/v1/namespaces/ns/configmaps/a", "body": ""}
    headers = server.seen[-1].headers
    assert headers["Authorization"] == "Bearer tok-1"
    assert headers["Accept"] == "application/json"
    assert headers["X-Extra"] == "1"
    assert "User-Agent" in headers
    assert "Content-Type" not in headers


async def test_refresh_hook_runs_on_every_request(server: Server, api_client: ApiClient) -> None:
    """Token rotation (in-cluster files, exec plugins) goes through refresh_api_key_hook."""
    calls = 0

    def refresh(cfg: Configuration) -> None:
        nonlocal calls
        calls += 1
        cfg.api_key["BearerToken"] = f"Bearer tok-{calls + 1}"

    api_client.configuration.refresh_api_key_hook = refresh
    await request_json(api_client, "GET", "/x")
    async with stream_request(api_client, "/y"):
        pass
    assert [s.headers["Authorization"] for s in server.seen] == ["Bearer tok-2", "Bearer tok-3"]


async def test_failing_credentials_hook_is_config_error(
    server: Server, api_client: ApiClient
) -> None:
    def refresh(cfg: Configuration) -> None:
        raise FileNotFoundError("/var/run/secrets/kubernetes.io/serviceaccount/token")

    api_client.configuration.refresh_api_key_hook = refresh
    with pytest.raises(ConfigError, match="cannot obtain credentials") as info:
        await request_json(api_client, "GET", "/x")
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert server.seen == []


async def test_host_with_path_prefix(server: Server) -> None:
    async with ApiClient(configuration=Configuration(host=server.url + "/k8s/c1/")) as client:
        got = await request_json(client, "GET", "/api/v1/namespaces")
    assert got["path"] == "/k8s/c1/api/v1/namespaces"


@pytest.mark.parametrize(
    ("method", "body", "content_type", "sent"),
    [
        ("POST", {"metadata": {"name": "é"}}, "application/json",
         '{"metadata":{"name":"é"}}'.encode()),
        ("PUT", {"a": 1}, "application/json", b'{"a":1}'),
        ("PATCH", {"data": {"k": None}}, "application/merge-patch+json", b'{"data":{"k":null}}'),
        ("PATCH", [{"op": "remove", "path": "/x"}], "application/json-patch+json",
         b'[{"op":"remove","path":"/x"}]'),
        ("PATCH", b"kind: X\n", "application/apply-patch+yaml", b"kind: X\n"),
        ("DELETE", {"propagationPolicy": "Background"}, "application/json",
         b'{"propagationPolicy":"Background"}'),
    ],
    ids=["post", "put", "merge-patch", "json-patch", "apply-bytes", "delete-options"],
)  # fmt: skip
async def test_bodies_are_orjson_encoded(
    server: Server,
    api_client: ApiClient,
    method: str,
    body: Any,
    content_type: str,
    sent: bytes,
) -> None:
    got = await request_json(
        api_client,
        method,
        "/apis/apps/v1/namespaces/ns/deployments/d",
        query={"fieldManager": "me", "dryRun": "All", "force": True},
        body=body,
        content_type=content_type,
    )
    seen = server.seen[-1]
    assert got["method"] == seen.method == method
    assert seen.body == sent
    assert seen.headers["Content-Type"] == content_type
    assert seen.query == {"fieldManager": "me", "dryRun": "All", "force": "true"}


@pytest.mark.parametrize(
    ("content_type", "sent"),
    [
        (None, "application/merge-patch+json"),
        ("merge", "application/merge-patch+json"),
        ("strategic", "application/strategic-merge-patch+json"),
        ("json", "application/json-patch+json"),
        ("apply", "application/apply-patch+yaml"),
        ("application/merge-patch+json; charset=utf-8",
         "application/merge-patch+json; charset=utf-8"),
    ],
    ids=["default-merge", "merge", "strategic", "json", "apply", "media-type-with-parameter"],
)  # fmt: skip
async def test_patch_content_type(
    server: Server, api_client: ApiClient, content_type: str | None, sent: str
) -> None:
    await request_json(api_client, "PATCH", "/x", body={"a": 1}, content_type=content_type)
    assert server.seen[-1].headers["Content-Type"] == sent


@pytest.mark.parametrize("content_type", ["application/json", "yaml", "Merge"])
async def test_patch_with_unknown_type_is_not_sent(
    server: Server, api_client: ApiClient, content_type: str
) -> None:
    with pytest.raises(ValueError, match=r"PATCH /x: content_type=.* is not a patch type") as info:
        await request_json(api_client, "PATCH", "/x", body={"a": 1}, content_type=content_type)
    for name in ("merge", "strategic", "json", "apply"):
        assert repr(name) in str(info.value)
    assert server.seen == []


async def test_default_content_type_of_other_methods(server: Server, api_client: ApiClient) -> None:
    await request_json(api_client, "POST", "/x", body={"a": 1})
    assert server.seen[-1].headers["Content-Type"] == "application/json"


async def test_empty_answer_is_empty_dict(server: Server, api_client: ApiClient) -> None:
    server.reply(b"", code=204)
    assert await request_json(api_client, "DELETE", "/x") == {}


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"], ids=["not-json", "not-an-object"])
async def test_answer_not_a_json_object(server: Server, api_client: ApiClient, body: bytes) -> None:
    server.reply(body)
    with pytest.raises(ApiError, match="GET /x"):
        await request_json(api_client, "GET", "/x")


# ------------------------------------------------------------------------- failures


def failure(code: int, reason: str, message: str, **extra: Any) -> bytes:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason}
    return orjson.dumps({**status, "message": message, "code": code, **extra})


@pytest.mark.parametrize(
    ("method", "verb"),
    [("GET", "get"), ("POST", "create"), ("PUT", "update"), ("PATCH", "patch"),
     ("DELETE", "delete")],
)  # fmt: skip
async def test_forbidden_names_verb_resource_namespace(
    server: Server, api_client: ApiClient, method: str, verb: str
) -> None:
    server.reply(failure(403, "Forbidden", "leases is forbidden: User x ..."), code=403)
    with pytest.raises(Forbidden) as info:
        await request_json(
            api_client,
            method,
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l",
            body={} if method != "GET" else None,
            resource="leases.coordination.k8s.io",
            namespace="kube-system",
        )
    err = info.value
    assert str(err).startswith(
        f"forbidden: cannot {verb} leases.coordination.k8s.io in namespace 'kube-system'"
    )
    assert (err.verb, err.resource, err.namespace) == (
        verb,
        "leases.coordination.k8s.io",
        "kube-system",
    )


async def test_explicit_verb_wins(server: Server, api_client: ApiClient) -> None:
    server.reply(failure(403, "Forbidden", "no"), code=403)
    with pytest.raises(Forbidden, match="cannot deletecollection pods at cluster scope"):
        await request_json(api_client, "DELETE", "/api/v1/pods", verb="deletecollection",
                           resource="pods")  # fmt: skip


@pytest.mark.parametrize(
    ("code", "body", "headers", "cls", "retry_after"),
    [
        (404, failure(404, "NotFound", 'configmaps "a" not found'), None, NotFound, None),
        (409, failure(409, "Conflict", "the object has been modified"), None, Conflict, None),
        (429, failure(429, "TooManyRequests", "slow down"), {"Retry-After": "3"},
         TooManyRequests, 3.0),
        (429, failure(429, "TooManyRequests", "slow down",
                      details={"retryAfterSeconds": 2}), None, TooManyRequests, 2.0),
        (404, b"404 page not found\n", None, NotFound, None),
    ],
    ids=["404", "409", "429-header", "429-details", "404-text"],
)  # fmt: skip
async def test_status_mapping(
    server: Server,
    api_client: ApiClient,
    code: int,
    body: bytes,
    headers: dict[str, str] | None,
    cls: type[ApiError],
    retry_after: float | None,
) -> None:
    server.reply(body, code=code, headers=headers)
    with pytest.raises(ApiError) as info:
        await request_json(api_client, "GET", "/api/v1/namespaces/ns/configmaps/a")
    err = info.value
    assert type(err) is cls
    assert err.status == code
    if isinstance(err, TooManyRequests):
        assert err.retry_after == retry_after
    if body.startswith(b"{"):
        assert err.body == orjson.loads(body)
        assert err.message == orjson.loads(body)["message"]
    else:
        assert err.body is None
        assert "GET /api/v1/namespaces/ns/configmaps/a: 404 page not found" in str(err)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connection_refused_names_address() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    async with ApiClient(configuration=Configuration(host=address)) as client:
        with anyio.fail_after(10), pytest.raises(ConnectionFailed) as info:
            await request_json(client, "GET", "/version")
    assert info.value.address == address
    assert str(info.value).startswith(f"cannot reach the API server at {address}: ")
    assert isinstance(info.value.__cause__, OSError)


async def test_tls_failure_is_connection_failed(server: Server) -> None:
    """An https client against a plain-http server fails the TLS handshake."""
    address = server.url.replace("http://", "https://")
    cfg = Configuration(host=address)
    cfg.verify_ssl = False
    async with ApiClient(configuration=cfg) as client:
        with anyio.fail_after(10), pytest.raises(ConnectionFailed) as info:
            await request_json(client, "GET", "/version")
    assert info.value.address == address


async def test_stream_read_timeout_is_connection_failed(
    server: Server, api_client: ApiClient
) -> None:
    gone = anyio.Event()

    async def silent(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"first")
        try:
            await anyio.sleep_forever()
        finally:
            gone.set()
        return resp  # pragma: no cover

    server.answer = silent
    with anyio.fail_after(10):
        with pytest.raises(ConnectionFailed, match="timed out"):
            async with stream_request(api_client, "/w", read_timeout=0.2) as stream:
                assert await stream.read_chunk() == b"first"
                await stream.read_chunk()
        await gone.wait()


async def test_stream_read_after_close_is_end(server: Server, api_client: ApiClient) -> None:
    server.reply(b"abc")
    async with stream_request(api_client, "/w") as stream:
        pass
    assert await stream.read_chunk() == b""


# ------------------------------------------------------------------ stream session


async def test_open_streams_never_take_the_request_pool(server: Server) -> None:
    """Watches hold their connection; with more of them than the ApiClient's pool has
    connections, a request still goes through at once."""
    release = anyio.Event()
    opened = 0

    async def endless(request: web.BaseRequest) -> web.StreamResponse:
        nonlocal opened
        if request.path != "/watch":
            return await server.echo(request)
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"{}\n")
        opened += 1
        await release.wait()
        return resp

    server.answer = endless
    cfg = Configuration(host=server.url)
    cfg.connection_pool_maxsize = 2
    async with ApiClient(configuration=cfg) as client, contextlib.AsyncExitStack() as stack:
        with anyio.fail_after(10):
            for _ in range(5):
                stream = await stack.enter_async_context(stream_request(client, "/watch"))
                assert await stream.read_chunk() == b"{}\n"
            assert opened == 5
            got = await request_json(client, "POST", "/write", body={"a": 1})
        assert got["path"] == "/write"
        release.set()


async def test_closing_the_client_closes_its_streams(server: Server) -> None:
    gone = anyio.Event()

    async def endless(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"x")
        try:
            await anyio.sleep_forever()
        finally:
            gone.set()
        return resp  # pragma: no cover

    server.answer = endless
    client = ApiClient(configuration=Configuration(host=server.url))
    with anyio.fail_after(10):
        async with stream_request(client, "/watch") as stream:
            assert await stream.read_chunk() == b"x"
            await client.close()
            await gone.wait()
        with pytest.raises(RuntimeError, match="closed"):  # as a closed ApiClient always did
            async with stream_request(client, "/watch"):
                pass


async def test_stream_that_cannot_connect_in_time_is_connection_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that accepts TCP but never answers the TLS handshake."""
    monkeypatch.setattr(transport, "CONNECT_TIMEOUT", 0.3)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes TCP handshakes; nobody reads
        address = f"https://127.0.0.1:{listener.getsockname()[1]}"
        cfg = Configuration(host=address)
        cfg.verify_ssl = False
        async with ApiClient(configuration=cfg) as client:
            with anyio.fail_after(10), pytest.raises(ConnectionFailed, match="timed out"):
                async with stream_request(client, "/api/v1/configmaps", query={"watch": True}):
                    pass
