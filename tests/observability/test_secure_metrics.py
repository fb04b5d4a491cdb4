"""Secure metrics (``metrics_secure``): HTTPS, and scrapers' bearer tokens authenticated
(TokenReview) and authorized (SubjectAccessReview on the ``/metrics`` non-resource URL)
by the real API server; the reviews' cache; the certificate's sources (self-signed,
a folder, reloaded when it changes).

ServiceAccount tokens come from the TokenRequest API; RBAC is real. Every test is bounded
by ``anyio.fail_after``.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography import x509
from http_client import Response, connect, get, request

from informer import ConfigError, NotFound
from informer._http.authn import DelegatingAuthorizer, bearer_token
from informer._http.server import HttpRequest, HttpResponse, HttpServer
from informer._http.tls import CERT_NAME, KEY_NAME, CertificateFiles, server_tls
from informer._observability.endpoints import Observability
from informer._observability.metrics import Metrics, metrics_routes
from informer._rest.request import request_json
from informer.testing import eventually
from informer.testing.control_plane._certs import CertificateAuthority

pytestmark = pytest.mark.anyio

TIMEOUT = 30.0
RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC = f"/apis/{RBAC_GROUP}/v1"


def insecure() -> ssl.SSLContext:
    """What a scraper of a self-signed endpoint uses (``insecure_skip_verify``)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def trusting(ca: CertificateAuthority) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.cert_pem.decode())


def scrape(token: str | None = None, *, method: str = "GET") -> bytes:
    auth = [f"Authorization: Bearer {token}"] if token is not None else []
    return get("/metrics", *auth).replace(b"GET ", f"{method} ".encode(), 1)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------ cluster setup


async def service_account_token(api: Any, namespace: str, name: str) -> str:
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    await request_json(api, "POST", path, body={"metadata": {"name": name}})
    answer = await request_json(
        api,
        "POST",
        f"{path}/{name}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    return str(answer["status"]["token"])


async def allowed(api: Any, user: str, path: str = "/metrics") -> bool:
    review = await request_json(
        api,
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        body={
            "spec": {"user": user, "nonResourceAttributes": {"path": path, "verb": "get"}},
        },
    )
    return bool(review["status"].get("allowed"))


@asynccontextmanager
async def cluster_role(api: Any, name: str, rules: list[dict[str, Any]]) -> AsyncIterator[None]:
    await request_json(
        api, "POST", f"{RBAC}/clusterroles", body={"metadata": {"name": name}, "rules": rules}
    )
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True), suppress(NotFound):
            await request_json(api, "DELETE", f"{RBAC}/clusterroles/{name}")


@asynccontextmanager
async def bound(api: Any, role: str, subject: dict[str, str]) -> AsyncIterator[None]:
    """Bind ``role`` to ``subject`` (RBAC sees it a moment later: see ``wait_allowed``)."""
    name = f"{role[:40]}-{subject['name'][:12]}-{secrets.token_hex(4)}"
    await request_json(
        api,
        "POST",
        f"{RBAC}/clusterrolebindings",
        body={
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [subject],
        },
    )
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True), suppress(NotFound):
            await request_json(api, "DELETE", f"{RBAC}/clusterrolebindings/{name}")


async def wait_allowed(api: Any, user: str, want: bool = True) -> None:
    """Until RBAC (whose informers see bindings a moment later) says ``want``."""

    async def settled() -> None:
        assert await allowed(api, user) == want, f"RBAC allows {user}: want {want}"

    await eventually(settled, timeout=10, interval=0.05)


def service_account(namespace: str, name: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def sa_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


METRICS_READER = [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]


# ------------------------------------------------------------------- the real API server


async def test_secure_metrics_need_a_token_allowed_to_get_metrics(
    api_client: Any, namespace: str
) -> None:
    """No token, a wrong token: 401; a valid token without the RBAC rule: 403; with it:
    200 (GET and HEAD). Probes stay plain HTTP and need no token."""
    reader = f"metrics-reader-{namespace}"
    obs = Observability(process_metrics=False)
    with anyio.fail_after(TIMEOUT):
        scraper = await service_account_token(api_client, namespace, "scraper")
        stranger = await service_account_token(api_client, namespace, "stranger")
        async with (
            cluster_role(api_client, reader, METRICS_READER),
            bound(api_client, reader, service_account(namespace, "scraper")),
            obs.serve(
                metrics_address="127.0.0.1:0",
                health_address="127.0.0.1:0",
                metrics_secure=True,
                api_client=api_client,
            ) as endpoints,
        ):
            await wait_allowed(api_client, sa_user(namespace, "scraper"))
            port = endpoints.metrics_port
            assert port is not None and endpoints.health_port is not None

            missing = await request(port, scrape(), insecure())
            assert missing.status == 401 and missing.headers["www-authenticate"].startswith(
                "Bearer"
            )
            assert (await request(port, scrape("not-a-token"), insecure())).status == 401
            tampered = scraper[:-4] + ("AAAA" if not scraper.endswith("AAAA") else "BBBB")
            assert (await request(port, scrape(tampered), insecure())).status == 401
            denied = await request(port, scrape(stranger), insecure())
            assert denied.status == 403
            assert denied.body.decode().startswith(
                f"Authorization denied for user {sa_user(namespace, 'stranger')}"
            )
            good = await request(port, scrape(scraper), insecure())
            assert good.status == 200 and b"leader_election_master_status" in good.body
            head = await request(port, scrape(scraper, method="HEAD"), insecure())
            assert head.status == 200 and head.body == b""

            # The probes: plain HTTP, no token.
            assert (await request(endpoints.health_port, get("/healthz"))).status == 200
            # Plain HTTP on the metrics port gets no answer (a failed TLS handshake).
            assert not await plain_http_answers(port)


async def plain_http_answers(port: int) -> bool:
    async with await connect(port) as stream:
        await stream.send(get("/metrics"))
        try:
            with anyio.fail_after(10):
                return bool(await stream.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
            return False


async def test_reviews_are_cached_and_denials_expire_sooner(
    api_client: Any, namespace: str
) -> None:
    reader = f"metrics-reader-{namespace}"
    clock = FakeClock()
    authorizer = DelegatingAuthorizer(api_client, allowed_ttl=60, denied_ttl=10, clock=clock)
    server = await HttpServer.bind(
        "127.0.0.1:0",
        metrics_routes(Metrics(process_metrics=False)),
        request_filter=authorizer,
    )
    with anyio.fail_after(TIMEOUT):
        token = await service_account_token(api_client, namespace, "late")
        user = sa_user(namespace, "late")
        async with (
            cluster_role(api_client, reader, METRICS_READER),
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(server.serve)
            assert (await request(server.port, scrape(token))).status == 403
            assert authorizer.reviews == 2  # a TokenReview and a SubjectAccessReview
            assert (await request(server.port, scrape(token))).status == 403
            assert authorizer.reviews == 2  # both cached

            async with bound(api_client, reader, service_account(namespace, "late")):
                await wait_allowed(api_client, user)
                clock.now += 9
                assert (await request(server.port, scrape(token))).status == 403  # still cached
                clock.now += 2  # the denial expired (10 s); the user is still known (60 s)
                assert (await request(server.port, scrape(token))).status == 200
                assert authorizer.reviews == 3
                # Concurrent scrapes with a new token: one review of each kind, not ten.
                fresh = await service_account_token(api_client, namespace, "fresh")
                async with bound(api_client, reader, service_account(namespace, "fresh")):
                    await wait_allowed(api_client, sa_user(namespace, "fresh"))
                    answers: list[Response] = []

                    async def one() -> None:
                        answers.append(await request(server.port, scrape(fresh)))

                    async with anyio.create_task_group() as burst:
                        for _ in range(10):
                            burst.start_soon(one)
                    assert [a.status for a in answers] == [200] * 10
                    assert authorizer.reviews == 5
            await wait_allowed(api_client, user, want=False)
            # Allowed results live 60 s: the removed binding is noticed after that.
            clock.now += 30
            assert (await request(server.port, scrape(token))).status == 200
            clock.now += 31
            assert (await request(server.port, scrape(token))).status == 403
            tg.cancel_scope.cancel()


async def test_an_identity_that_may_not_review_refuses_scrapes_and_says_why(
    control_plane: Any, api_client: Any, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without ``create`` on tokenreviews: 401; with it but not on subjectaccessreviews:
    500; the log names the missing permission."""
    token = await service_account_token(api_client, namespace, "scraper")
    user = control_plane.user(f"runner-{namespace}")
    role = f"token-reviewer-{namespace}"
    rules = [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}
    ]
    with anyio.fail_after(TIMEOUT):
        async with user.api_client() as runner_api:
            authorizer = DelegatingAuthorizer(runner_api)
            authn_failed = await authorizer(req(token))
            assert authn_failed is not None and authn_failed.status == 401
            assert authn_failed.body == b"Authentication failed\n"
            async with (
                cluster_role(api_client, role, rules),
                bound(api_client, role, {"kind": "User", "name": user.name}),
            ):

                async def authenticated() -> Any:
                    answer = await authorizer(req(token))
                    assert answer is not None
                    # The binding reaches the authorizer a moment later.
                    assert answer.status != 401, "the token still fails authentication"
                    return answer

                answer = await eventually(authenticated, timeout=10, interval=0.05)
                assert answer.status == 500
                assert answer.body.startswith(b"Authorization for user system:serviceaccount:")
    logged = capsys.readouterr().out
    assert "metrics.authentication_failed" in logged and "metrics.authorization_failed" in logged
    assert "subjectaccessreviews.authorization.k8s.io" in logged
    assert token not in logged


def req(token: str | None, path: str = "/metrics") -> HttpRequest:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return HttpRequest("GET", path, {}, headers)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
    ],
    ids=["absent", "empty", "no-token", "basic", "bearer", "case-and-spaces"],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


# --------------------------------------------------------------------------- certificates


@asynccontextmanager
async def tls_server(tls: Any) -> AsyncIterator[int]:
    server = await HttpServer.bind(
        "127.0.0.1:0", {"/": lambda r: HttpResponse.text(200, "hi")}, tls=tls
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        yield server.port
        tg.cancel_scope.cancel()


async def peer_certificate(port: int, context: ssl.SSLContext) -> x509.Certificate:
    async with await connect(port, context) as stream:
        der = stream.extra(anyio.streams.tls.TLSAttribute.peer_certificate_binary)
    assert der is not None
    return x509.load_der_x509_certificate(der)


async def test_a_self_signed_certificate_without_a_folder() -> None:
    with anyio.fail_after(TIMEOUT):
        async with tls_server(server_tls(None)) as port:
            answer = await request(port, get("/"), insecure())
            assert (answer.status, answer.body) == (200, b"hi")
            cert = await peer_certificate(port, insecure())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1"}


async def test_a_certificate_folder_is_served_and_reloaded_when_it_changes(tmp_path: Path) -> None:
    first, second = CertificateAuthority("first-ca"), CertificateAuthority("second-ca")
    first.issue_serving(["127.0.0.1"]).write(tmp_path / CERT_NAME, tmp_path / KEY_NAME)
    clock = FakeClock()
    files = CertificateFiles(tmp_path / CERT_NAME, tmp_path / KEY_NAME, clock=clock)
    with anyio.fail_after(TIMEOUT):
        async with tls_server(files) as port:
            assert (await request(port, get("/"), trusting(first))).status == 200
            second.issue_serving(["127.0.0.1"]).write(tmp_path / CERT_NAME, tmp_path / KEY_NAME)
            # Not re-read before the next check: still the first certificate.
            assert (await request(port, get("/"), trusting(first))).status == 200
            clock.now += files.check_interval
            assert (await request(port, get("/"), trusting(second))).status == 200
            with pytest.raises(ssl.SSLCertVerificationError):
                await request(port, get("/"), trusting(first))
            # A broken pair is not loaded: the last good one is kept.
            (tmp_path / KEY_NAME).write_text("garbage")
            clock.now += files.check_interval
            assert (await request(port, get("/"), trusting(second))).status == 200


@pytest.mark.parametrize("what", ["missing", "garbage"], ids=["missing", "garbage"])
def test_an_unusable_certificate_folder_is_a_config_error(tmp_path: Path, what: str) -> None:
    if what == "garbage":
        (tmp_path / CERT_NAME).write_text("not a certificate")
        (tmp_path / KEY_NAME).write_text("not a key")
    with pytest.raises(ConfigError, match=f"{tmp_path / CERT_NAME}|tls.crt"):
        server_tls(tmp_path)


async def test_secure_metrics_options_are_checked(tmp_path: Path) -> None:
    obs = Observability(process_metrics=False)
    with pytest.raises(ConfigError, match="api_client"):
        async with obs.serve(
            metrics_address="127.0.0.1:0", health_address=None, metrics_secure=True
        ):
            pass
    with pytest.raises(ConfigError, match="only used with secure metrics"):
        async with obs.serve(
            metrics_address="127.0.0.1:0", health_address=None, metrics_cert_dir=str(tmp_path)
        ):
            pass
