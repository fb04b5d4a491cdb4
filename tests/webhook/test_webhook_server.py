"""The webhook server over HTTPS, without a control plane: answers, bad bodies, limits,
kept-alive connections, TLS 1.2+, certificate reload, metrics and the readiness check."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.streams.tls
import orjson
import pytest
from cryptography import x509
from http_client import Connection, Response, connect, request
from prometheus_client import CollectorRegistry, generate_latest

from informer import ConfigError
from informer._http.server import HttpLimits
from informer._http.tls import CERT_NAME, KEY_NAME
from informer.observability import Observability
from informer.resources import CONFIGMAPS
from informer.testing.control_plane._certs import CertificateAuthority
from informer.webhook import AdmissionRequest, Denied, ValidatingWebhook, WebhookServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

TIMEOUT = 10


def deny_bad(request: AdmissionRequest) -> str | None:
    if (request.object or {}).get("data", {}).get("bad"):
        raise Denied("bad data")
    return None


HOOK = ValidatingWebhook(CONFIGMAPS, deny_bad, name="vcm.example.com", path="/validate")


def review_body(uid: str = "u1", bad: bool = False) -> bytes:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"bad": "1"} if bad else {},
    }
    request = {
        "uid": uid,
        "operation": "CREATE",
        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "object": obj,
    }
    return orjson.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    )


def post(path: str, body: bytes, *headers: str, content_type: str = "application/json") -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def trusting(ca: CertificateAuthority) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.cert_pem.decode())


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    authority = CertificateAuthority("webhook-test-ca")
    authority.issue_serving(["127.0.0.1"]).write(tmp_path / CERT_NAME, tmp_path / KEY_NAME)
    return authority


@asynccontextmanager
async def serving(cert_dir: Path, **options: Any) -> AsyncIterator[WebhookServer]:
    server = WebhookServer([HOOK], cert_dir=cert_dir, **options)
    await server.bind("127.0.0.1:0")
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        yield server
        tg.cancel_scope.cancel()


async def test_reviews_are_answered_on_one_kept_alive_connection(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with serving(tmp_path) as server:
            assert server.port is not None
            async with await connect(server.port, trusting(ca)) as stream:
                conn = Connection(stream)
                for uid, bad in (("a", False), ("b", True), ("c", False)):
                    await conn.send(post("/validate", review_body(uid, bad)))
                    answer = await conn.response()
                    assert answer.status == 200
                    assert answer.headers["content-type"] == "application/json"
                    assert answer.headers["connection"] == "keep-alive"
                    response = orjson.loads(answer.body)["response"]
                    assert (response["uid"], response["allowed"]) == (uid, not bad)


async def send(port: int, raw: bytes, ca: CertificateAuthority) -> Response:
    return await request(port, raw, trusting(ca))


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (post("/validate", b"{"), 400, "not JSON"),
        (post("/validate", b'{"kind": "ConfigMap"}'), 400, "not an AdmissionReview"),
        (post("/validate", b""), 400, "not JSON"),
        (post("/validate", review_body(), content_type="text/plain"), 415, "expected Content-Type"),
        (b"GET /validate HTTP/1.1\r\nHost: x\r\n\r\n", 405, ""),
        (post("/nowhere", review_body()), 405, ""),
        (
            b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            411,
            "Content-Length",
        ),
        (post("/validate", b"x" * 2048), 413, "over 1024 bytes"),
        (post("/validate", b"{}", "Content-Length: abc"), 400, "malformed Content-Length"),
    ],
    ids=[
        "broken-json",
        "not-a-review",
        "empty",
        "wrong-content-type",
        "get",
        "unknown-path",
        "chunked",
        "too-large",
        "bad-length",
    ],
)
async def test_bad_requests_are_refused_and_nothing_breaks(
    tmp_path: Path, ca: CertificateAuthority, raw: bytes, status: int, message: str
) -> None:
    limits = HttpLimits(max_body_bytes=1024)
    with anyio.fail_after(TIMEOUT):
        async with serving(tmp_path, limits=limits) as server:
            assert server.port is not None
            answer = await send(server.port, raw, ca)
            assert answer.status == status
            assert message.encode() in answer.body
            if answer.headers["content-type"] == "application/json":
                status_obj = orjson.loads(answer.body)
                assert (status_obj["kind"], status_obj["code"]) == ("Status", status)
            good = await send(server.port, post("/validate", review_body()), ca)
            assert good.status == 200, "the server answers the next request"
            assert server.check() is None


async def test_expect_100_continue_is_answered_before_the_body(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    body = review_body("e")
    with anyio.fail_after(TIMEOUT):
        async with serving(tmp_path) as server:
            assert server.port is not None
            async with await connect(server.port, trusting(ca)) as stream:
                conn = Connection(stream)
                head = post("/validate", b"", "Expect: 100-continue").replace(
                    b"Content-Length: 0", f"Content-Length: {len(body)}".encode()
                )
                await conn.send(head)
                interim = await stream.receive()
                assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
                await conn.send(body)
                answer = await conn.response()
                assert answer.status == 200
                assert orjson.loads(answer.body)["response"]["uid"] == "e"


async def test_a_slow_body_gets_408(tmp_path: Path, ca: CertificateAuthority) -> None:
    limits = HttpLimits(body_timeout=0.2)
    with anyio.fail_after(TIMEOUT):
        async with serving(tmp_path, limits=limits) as server:
            assert server.port is not None
            async with await connect(server.port, trusting(ca)) as stream:
                conn = Connection(stream)
                await conn.send(post("/validate", review_body())[:-10])
                answer = await conn.response()
                assert (answer.status, answer.body) == (408, b"request body timeout\n")


async def test_tls_below_1_2_is_refused(tmp_path: Path, ca: CertificateAuthority) -> None:
    old = trusting(ca)
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with anyio.fail_after(TIMEOUT):
        async with serving(tmp_path) as server:
            assert server.port is not None
            with pytest.raises(
                (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream, OSError)
            ):
                await request(server.port, post("/validate", review_body()), old)
            old.maximum_version = ssl.TLSVersion.TLSv1_2  # the control: 1.2 is served
            assert (await request(server.port, post("/validate", review_body()), old)).status == 200


async def peer_serial(port: int, context: ssl.SSLContext) -> int:
    async with await connect(port, context) as stream:
        der = stream.extra(anyio.streams.tls.TLSAttribute.peer_certificate_binary)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_a_renewed_certificate_is_served_to_new_connections(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with serving(tmp_path, cert_check_interval=0.05) as server:
            assert server.port is not None
            first = await peer_serial(server.port, trusting(ca))
            async with await connect(server.port, trusting(ca)) as stream:
                kept = Connection(stream)
                await kept.send(post("/validate", review_body("before")))
                assert (await kept.response()).status == 200
                renewed = ca.issue_serving(["127.0.0.1"])
                renewed.write(tmp_path / CERT_NAME, tmp_path / KEY_NAME)
                expected = x509.load_pem_x509_certificate(renewed.cert_pem).serial_number

                async def renewed_served() -> None:
                    assert await peer_serial(server.port or 0, trusting(ca)) == expected

                from informer.testing import eventually

                await eventually(renewed_served, timeout=5)
                # the connection opened before the renewal still works
                await kept.send(post("/validate", review_body("after")))
                assert (await kept.response()).status == 200
            assert first != expected
            assert server.certificates is not None and server.certificates.generation == 2
            assert server.check() is None


async def test_an_expired_certificate_makes_the_server_unready(tmp_path: Path) -> None:
    import datetime

    from cryptography.x509.oid import ExtendedKeyUsageOID

    from informer._http import certs

    key = certs.new_key()
    builder = certs.build_certificate(
        key,
        subject=certs.subject_name("x"),
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        hosts=["127.0.0.1"],
    )
    expired = (
        x509.CertificateBuilder()
        .subject_name(builder.subject)
        .issuer_name(builder.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC))
        .sign(key, certs.hashes.SHA256())
    )
    certs.KeyPair(certs.certificate_pem(expired), certs.private_key_pem(key)).write(
        tmp_path / CERT_NAME, tmp_path / KEY_NAME
    )
    server = WebhookServer([HOOK], cert_dir=tmp_path)
    assert server.check() == "the webhook server is not serving yet"
    with anyio.fail_after(TIMEOUT):
        async with serving(tmp_path) as server:
            reason = server.check()
    assert reason is not None and "expired at 2021-01-01T00:00:00Z" in reason


async def test_a_missing_certificate_is_a_config_error_naming_the_folder(tmp_path: Path) -> None:
    server = WebhookServer([HOOK], cert_dir=tmp_path / "nothing")
    with pytest.raises(
        ConfigError, match=r"put the serving certificate in .*nothing \(--webhook-cert-dir\)"
    ):
        await server.bind("127.0.0.1:0")


def test_two_webhooks_cannot_share_a_path() -> None:
    twin = ValidatingWebhook(CONFIGMAPS, deny_bad, name="other.example.com", path="/validate")
    with pytest.raises(ValueError, match="same path: /validate"):
        WebhookServer([HOOK, twin])


async def test_metrics_use_controller_runtimes_names(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    registry = CollectorRegistry()
    with anyio.fail_after(TIMEOUT):
        async with serving(tmp_path) as server:
            registry.register(server.metrics)
            assert server.port is not None
            for raw in (
                post("/validate", review_body()),
                post("/validate", review_body(bad=True)),
                post("/validate", b"{"),
            ):
                await send(server.port, raw, ca)
    text = generate_latest(registry).decode()
    assert 'controller_runtime_webhook_requests_total{code="200",webhook="/validate"} 2.0' in text
    assert 'controller_runtime_webhook_requests_total{code="400",webhook="/validate"} 1.0' in text
    assert 'controller_runtime_webhook_requests_total{code="500",webhook="/validate"} 0.0' in text
    assert 'controller_runtime_webhook_latency_seconds_count{webhook="/validate"} 3.0' in text
    assert 'controller_runtime_webhook_requests_in_flight{webhook="/validate"} 0.0' in text


async def test_the_managers_wiring_registers_metrics_and_the_readiness_check(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    from informer._manager.webhooks import serving_webhooks

    obs = Observability(process_metrics=False)
    with anyio.fail_after(TIMEOUT):
        async with serving_webhooks([], address=":9443", cert_dir=None, observability=obs) as none:
            assert none is None, "nothing to serve: no server, no certificate needed"
        async with serving_webhooks([HOOK], address="0", cert_dir=None, observability=obs) as off:
            assert off is None
        async with serving_webhooks(
            [HOOK], address="127.0.0.1:0", cert_dir=str(tmp_path), observability=obs
        ) as server:
            assert server is not None
            (check,) = [c for c in obs.checks.readiness if c.name == "webhooks"]
            assert check.check() is None
            text = obs.metrics.render()[0].decode()
            assert 'controller_runtime_webhook_requests_in_flight{webhook="/validate"} 0.0' in text


async def test_the_managers_webhooks_outlive_a_stop_until_the_block_ends(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    """A stop (the Manager's scope cancelled) leaves the webhook server answering while
    the controllers drain (shielded, inside the block), as controller-runtime stops
    webhooks after the controllers; it stops when the block ends."""
    from informer._manager.webhooks import serving_webhooks

    obs = Observability(process_metrics=False)
    with anyio.fail_after(TIMEOUT):
        with anyio.CancelScope() as stop:
            async with serving_webhooks(
                [HOOK], address="127.0.0.1:0", cert_dir=str(tmp_path), observability=obs
            ) as server:
                assert server is not None and server.port is not None
                port = server.port
                stop.cancel()  # SIGTERM: everything under the Manager is cancelled
                with anyio.CancelScope(shield=True):  # a reconcile draining
                    answer = await send(port, post("/validate", review_body("drain")), ca)
                    assert answer.status == 200, "the webhook server stopped before the drain"
        with pytest.raises(OSError):
            await send(port, post("/validate", review_body("after")), ca)
