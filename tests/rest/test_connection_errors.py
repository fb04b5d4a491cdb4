"""A failed connection in words: ``describe_connection_error`` and the transport's
``ConnectionFailed`` (one sentence, the address and the cause, no object reprs)."""

from __future__ import annotations

import errno
import socket
import ssl
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp.client_reqrep import ConnectionKey
from kubernetes_asyncio.client import ApiClient, Configuration

from informer import ConnectionFailed
from informer._rest.connection_errors import describe_connection_error
from informer._rest.request import request_json

pytestmark = pytest.mark.anyio


def key(host: str = "127.0.0.1", port: int = 1) -> Any:
    return ConnectionKey(host, port, True, True, None, None, None)


@pytest.mark.parametrize(
    ("exc", "text", "refused"),
    [
        pytest.param(
            aiohttp.ClientConnectorError(key(), ConnectionRefusedError(errno.ECONNREFUSED, "x")),
            "connection refused (nothing listens on 127.0.0.1:1)",
            True,
            id="refused",
        ),
        pytest.param(
            aiohttp.ClientConnectorDNSError(
                key("api.example.invalid", 6443), socket.gaierror(-2, "Name or service not known")
            ),
            "the host name api.example.invalid does not resolve (name or service not known)",
            False,
            id="dns",
        ),
        pytest.param(
            aiohttp.ClientConnectorError(key(), OSError(errno.EHOSTUNREACH, "No route to host")),
            "no route to host",
            False,
            id="no-route",
        ),
        pytest.param(
            aiohttp.ClientConnectorCertificateError(
                key(), ssl.SSLCertVerificationError(1, "certificate verify failed")
            ),
            "TLS certificate verification failed",
            False,
            id="certificate",
        ),
        pytest.param(aiohttp.ServerDisconnectedError(), "the server closed the connection", False),
        pytest.param(TimeoutError(), "timed out", False, id="timeout"),
        pytest.param(aiohttp.ConnectionTimeoutError(), "timed out", False, id="aiohttp-timeout"),
        pytest.param(
            ConnectionResetError(104, "Connection reset by peer"), "connection reset by peer", False
        ),
    ],
)
def test_causes_in_words(exc: BaseException, text: str, refused: bool) -> None:
    cause = describe_connection_error(exc)
    assert cause.text.startswith(text), cause.text
    assert cause.refused is refused
    assert " object at 0x" not in cause.text and "SSLContext" not in cause.text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_refused_connection_is_one_sentence(scheme: str) -> None:
    port = free_port()
    address = f"{scheme}://127.0.0.1:{port}"
    async with ApiClient(configuration=Configuration(host=address)) as client:
        with anyio.fail_after(10), pytest.raises(ConnectionFailed) as info:
            await request_json(client, "GET", "/version")
    assert str(info.value) == (
        f"cannot reach the API server at {address}: "
        f"connection refused (nothing listens on 127.0.0.1:{port})"
    )
    assert info.value.refused
