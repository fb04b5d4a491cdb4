"""Server TLS for the secure metrics endpoint (``--metrics-secure``) and the webhook server.

Like controller-runtime's metrics server: the certificate and key come from a folder
(``tls.crt`` and ``tls.key``, PEM, as a ``kubernetes.io/tls`` Secret mounts them), or,
without a folder, a self-signed certificate is generated at startup (valid one year for
``localhost``, ``127.0.0.1``, ``::1`` and the host name; scrapers then skip verification,
as Prometheus' ``insecure_skip_verify`` does for controller-runtime's default).

A provided pair is re-read when either file changes (checked at most every
``check_interval`` seconds, on the next connection), so cert-manager's renewals are
picked up without a restart; a pair that fails to load then is logged and the previous
one kept. TLS 1.2 is the minimum and only ``http/1.1`` is offered through ALPN.

Generating the self-signed certificate needs the ``cryptography`` package (a runtime
dependency of kube-informer for this reason; the standard library cannot create
certificates): :mod:`informer._http.certs` builds it, imported only when a certificate
is generated.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import structlog

from .._exceptions import ConfigError

if TYPE_CHECKING:
    from .certs import KeyPair

__all__ = [
    "CERT_NAME",
    "KEY_NAME",
    "CertificateFiles",
    "default_hosts",
    "self_signed_context",
    "server_tls",
]

log = structlog.get_logger(__name__)

CERT_NAME: Final = "tls.crt"
KEY_NAME: Final = "tls.key"


def server_tls(cert_dir: str | os.PathLike[str] | None) -> Callable[[], ssl.SSLContext]:
    """The function :class:`~informer._http.server.HttpServer` calls for each
    connection's context: the pair in ``cert_dir``, or a self-signed one. Raises
    :class:`~informer.ConfigError` naming the file and the problem when it cannot load."""
    if cert_dir is None:
        context = self_signed_context()
        return lambda: context
    folder = Path(cert_dir)
    return CertificateFiles(folder / CERT_NAME, folder / KEY_NAME)


class CertificateFiles:
    """A certificate and key on disk, reloaded when they change (module docstring).

    Calling it returns the current context; it loads at construction (so a bad pair is
    reported at startup). ``generation`` counts the pairs loaded (1 after construction);
    ``check_interval`` may be changed at any time.
    Runs on the event loop (a ``stat`` of two files per check).
    """

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        *,
        check_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.check_interval = check_interval
        self._clock = clock
        self._stamp = self._stat()
        self._context = _load(cert_file, key_file)
        self.generation = 1
        self._checked = clock()

    def __call__(self) -> ssl.SSLContext:
        now = self._clock()
        if now - self._checked >= self.check_interval:
            self._checked = now
            self._reload_if_changed()
        return self._context

    def _reload_if_changed(self) -> None:
        try:
            stamp = self._stat()
        except ConfigError as exc:
            log.warning("tls.reload_failed", error=str(exc))
            return
        if stamp == self._stamp:
            return
        try:
            self._context = _load(self.cert_file, self.key_file)
        except ConfigError as exc:
            log.warning("tls.reload_failed", error=str(exc), keeping="the previous certificate")
            return
        self._stamp = stamp
        self.generation += 1
        log.info("tls.reloaded", cert_file=str(self.cert_file))

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        stamps = []
        for path in (self.cert_file, self.key_file):
            try:
                st = path.stat()
            except OSError as exc:
                raise ConfigError(f"TLS: cannot read {path}: {exc.strerror or exc}") from exc
            stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(stamps)


def _context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


def _load(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = _context()
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"TLS: cannot load the certificate {cert_file} with the key {key_file}: {detail}"
            f" (the folder must hold {CERT_NAME} and {KEY_NAME}, PEM-encoded, the key"
            " matching the certificate)"
        ) from exc
    return context


def default_hosts() -> list[str]:
    """The names a self-signed certificate is valid for."""
    hosts = ["localhost", "127.0.0.1", "::1"]
    name = socket.gethostname()
    if name and name not in hosts:
        hosts.append(name)
    return hosts


def self_signed_context(hosts: Iterable[str] | None = None) -> ssl.SSLContext:
    """A context serving a fresh self-signed certificate for ``hosts``."""
    names = list(hosts) if hosts is not None else default_hosts()
    pair = _self_signed(names)
    # ssl loads a chain only from files: write them to a private folder, then delete it.
    with tempfile.TemporaryDirectory(prefix="kube-informer-tls-") as folder:
        cert_file, key_file = Path(folder) / CERT_NAME, Path(folder) / KEY_NAME
        pair.write(cert_file, key_file)
        context = _load(cert_file, key_file)
    log.info("tls.self_signed", hosts=names)
    return context


def _self_signed(hosts: list[str]) -> KeyPair:
    """A serving certificate for ``hosts``, signed by its own key, named as client-go's
    ``GenerateSelfSignedCertKey`` names one (``<first host>@<unix time>``)."""
    try:
        from cryptography.x509.oid import ExtendedKeyUsageOID

        from . import certs
    except ImportError as exc:  # pragma: no cover - a runtime dependency
        raise ConfigError(
            "TLS: generating a self-signed certificate needs the 'cryptography' package:"
            " install it, or provide tls.crt and tls.key in a certificate folder"
        ) from exc
    key = certs.new_key()
    cert = certs.build_certificate(
        key,
        subject=certs.subject_name(f"{hosts[0]}@{int(time.time())}"),
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        hosts=hosts,
    )
    return certs.KeyPair(cert_pem=certs.certificate_pem(cert), key_pem=certs.private_key_pem(key))
