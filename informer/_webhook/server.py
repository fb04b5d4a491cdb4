"""The webhook server: every registered webhook over HTTPS on one address
(controller-runtime's ``webhook.Server``).

It is the package's one HTTP server (:class:`~informer._http.server.HttpServer`) with
the webhooks as POST routes, each at its ``path``. TLS 1.2 or later, the certificate and
key from ``cert_dir`` (``tls.crt``, ``tls.key``; default :data:`DEFAULT_CERT_DIR`,
controller-runtime's), re-read when either file changes (checked at most every
``cert_check_interval`` seconds, on the next connection: a renewal is picked up without
a restart and without dropping a request; a broken pair is logged and the previous one
kept; :mod:`informer._http.tls`). There is no self-signed fallback: the API server must
trust the certificate, so a missing pair is a :class:`~informer.ConfigError` at startup.

Requests are bounded as the metrics server's are (:data:`WEBHOOK_LIMITS`: header and
body timeouts, a 7 MiB body), but idle connections are kept for 120 s: the API server
keeps its idle connections to a webhook for 90 s, and a server closing one first can
lose the request the API server sends on it at that moment.

Answers: 200 with the review's answer (a denial is an answer), 400 (a JSON ``Status``)
to a body that is not a review the webhook answers, 415 to a body that is not
``application/json``, and the HTTP server's own (404, 405, 408, 411, 413...).
:class:`~informer._webhook.metrics.WebhookMetrics` counts them; :meth:`WebhookServer.check`
is the ``webhooks`` readiness check (serving, and the certificate loaded and valid).
"""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import anyio
import anyio.abc
import orjson
import structlog

from .._exceptions import ConfigError
from .._http.server import HttpLimits, HttpRequest, HttpResponse, HttpServer, PostHandler
from .._http.tls import CERT_NAME, KEY_NAME, CertificateFiles
from .base import ReviewError, Webhook
from .metrics import WebhookMetrics

__all__ = ["DEFAULT_CERT_DIR", "WEBHOOK_LIMITS", "WebhookServer"]

log = structlog.get_logger(__name__)

DEFAULT_CERT_DIR: Final = os.path.join(tempfile.gettempdir(), "k8s-webhook-server", "serving-certs")
"""Where the certificate is read from without ``cert_dir`` (controller-runtime's default)."""

WEBHOOK_LIMITS: Final = HttpLimits(idle_timeout=120.0, max_connections=256)
"""The webhook server's HTTP limits (module docstring)."""

_JSON: Final = "application/json"


def _status(code: int, reason: str, message: str) -> HttpResponse:
    body = {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }
    return HttpResponse(code, orjson.dumps(body), _JSON)


class WebhookServer:
    """Serves ``webhooks`` (module docstring): :meth:`bind`, then :meth:`serve` until
    cancelled. ``ValueError`` at construction when two webhooks share a path.
    Everything runs on the event loop."""

    def __init__(
        self,
        webhooks: Iterable[Webhook],
        *,
        cert_dir: str | os.PathLike[str] | None = None,
        cert_check_interval: float = 10.0,
        limits: HttpLimits = WEBHOOK_LIMITS,
    ) -> None:
        self.webhooks = list(webhooks)
        paths = [w.path for w in self.webhooks]
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        if dupes:
            raise ValueError(f"two webhooks are served at the same path: {', '.join(dupes)}")
        self.cert_dir = Path(cert_dir if cert_dir is not None else DEFAULT_CERT_DIR)
        self.cert_check_interval = cert_check_interval
        self.limits = limits
        self.metrics = WebhookMetrics(paths)
        self._tls: CertificateFiles | None = None
        self._server: HttpServer | None = None
        self._serving = False
        self._expiry: tuple[int, datetime.datetime | None] = (0, None)

    @property
    def port(self) -> int | None:
        """The bound port (``None`` before :meth:`bind`)."""
        return None if self._server is None else self._server.port

    @property
    def certificates(self) -> CertificateFiles | None:
        """The serving certificate files (after :meth:`bind`)."""
        return self._tls

    async def bind(self, address: str) -> int:
        """Load the certificate and listen on ``address``; returns the port.
        :class:`~informer.ConfigError` naming the folder when the pair cannot be loaded,
        :class:`~informer.BindError` when the address cannot be used."""
        try:
            self._tls = CertificateFiles(
                self.cert_dir / CERT_NAME,
                self.cert_dir / KEY_NAME,
                check_interval=self.cert_check_interval,
            )
        except ConfigError as exc:
            raise ConfigError(
                f"webhook server: {exc}; put the serving certificate in {self.cert_dir} "
                f"(--webhook-cert-dir), e.g. a kubernetes.io/tls Secret mounted there"
            ) from exc
        routes: dict[str, PostHandler] = {w.path: self._route(w) for w in self.webhooks}
        self._server = await HttpServer.bind(
            address, {}, name="webhook", limits=self.limits, tls=self._tls, post_routes=routes
        )
        log.info(
            "webhook.serving",
            address=address,
            port=self._server.port,
            webhooks={w.path: w.name for w in self.webhooks},
            cert_dir=str(self.cert_dir),
        )
        return self._server.port

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Answer requests until cancelled (after :meth:`bind`); ``task_status.started()``
        once serving."""
        if self._server is None:
            raise RuntimeError("bind() the webhook server before serve()")
        self._serving = True
        task_status.started()
        try:
            await self._server.serve()
        finally:
            self._serving = False

    async def aclose(self) -> None:
        """Close the listener when :meth:`serve` never ran."""
        if self._server is not None:
            await self._server.aclose()

    def check(self) -> str | None:
        """The ``webhooks`` readiness check: ``None`` while serving with a valid
        certificate, else why not."""
        if not self._serving or self._tls is None:
            return "the webhook server is not serving yet"
        self._tls()  # re-reads a renewed pair (at most every cert_check_interval)
        generation, expiry = self._expiry
        if generation != self._tls.generation:
            expiry = _not_after(self._tls.cert_file)
            self._expiry = (self._tls.generation, expiry)
        if expiry is not None and expiry <= datetime.datetime.now(datetime.UTC):
            when = f"{expiry:%Y-%m-%dT%H:%M:%SZ}"
            return f"the serving certificate {self._tls.cert_file} expired at {when}"
        return None

    def _route(self, webhook: Webhook) -> PostHandler:
        metrics = self.metrics

        async def handle(request: HttpRequest) -> HttpResponse:
            started = metrics.started(webhook.path)
            code = 500
            try:
                response = await self._answer(webhook, request)
                code = response.status
                return response
            finally:
                metrics.finished(webhook.path, code, started)

        return handle

    async def _answer(self, webhook: Webhook, request: HttpRequest) -> HttpResponse:
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media != _JSON:
            return _status(
                415, "UnsupportedMediaType", f"expected Content-Type {_JSON}, got {media!r}"
            )
        try:
            body = await webhook.review(request.body or b"")
        except ReviewError as exc:
            log.info("webhook.bad_request", webhook=webhook.name, error=str(exc))
            return _status(400, "BadRequest", f"{webhook.name}: {exc}")
        return HttpResponse(200, body, _JSON)


def _not_after(cert_file: Path) -> datetime.datetime | None:
    """When the first certificate of ``cert_file`` expires (``None``: unreadable)."""
    try:
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError, ImportError):
        return None
    return cert.not_valid_after_utc
