"""Credentials read from files, kept fresh as client-go does, and the record of how the
API server answers them.

A kubeconfig ``tokenFile`` (or the in-cluster service-account token) and client
certificate files are rotated on disk by whoever issues them (kubelet projected volumes,
cert-manager, vault agents...). kubernetes_asyncio reads a ``tokenFile`` once; after the
old token is revoked every request would fail with 401 until a restart.

- :class:`FileToken` re-reads a token file as client-go's ``cachingTokenSource``
  (``transport/token_source.go``, ``NewCachedFileTokenSource``): a token read at ``t``
  is used until ``t + period - leeway`` (60 s and 10 s), and a 401 answer to a request
  sent after the token was read (:meth:`FileToken.reset_older_than`) makes the next
  request read the file again. An unreadable or empty file keeps the previous token
  (logged once per streak); without a previous token it is a :class:`ConfigError`.
  :class:`TokenFileHook` installs it as a ``Configuration.refresh_api_key_hook``.
- :class:`ExecToken` caches the token of a kubeconfig ``exec`` credential plugin as
  client-go's exec authenticator does (``plugin/pkg/client/auth/exec``): the plugin runs
  again when the token's ``expirationTimestamp`` has passed (never, without one) and
  after a 401 answer to a request sent with it (:meth:`ExecToken.reset_older_than`, the
  same path as a token file's). :class:`ExecTokenHook` installs it.
- :class:`CertFiles` notices a changed client certificate or key as client-go's
  ``certRotatingDialer`` does (every 5 minutes), and also after a 401.
- :class:`AuthStatus` counts 401/403 answers per client, so that health checks and
  metrics can see credentials that stopped working (written by ``informer._rest.transport``
  only).

Pure: the transport (``informer._rest.transport``) and the client builder
(``informer._rest.api_client``) call these; nothing here imports them.
"""

from __future__ import annotations

import hashlib
import math
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import anyio
import structlog

from .._exceptions import ConfigError

__all__ = [
    "CERT_FILE_PERIOD",
    "TOKEN_FILE_LEEWAY",
    "TOKEN_FILE_PERIOD",
    "AuthStatus",
    "CertFiles",
    "ClientCredentials",
    "ExecToken",
    "ExecTokenHook",
    "FileToken",
    "TokenFileHook",
    "ssl_context_for",
]

log = structlog.get_logger(__name__)

TOKEN_FILE_PERIOD: Final = 60.0
"""Seconds a token read from a file is used before the file is read again (client-go)."""

TOKEN_FILE_LEEWAY: Final = 10.0
"""Seconds before the end of ``TOKEN_FILE_PERIOD`` at which the file is read again."""

CERT_FILE_PERIOD: Final = 300.0
"""Seconds between two checks of the client certificate files (client-go's
``CertCallbackRefreshDuration``)."""

Clock = Callable[[], float]


class FileToken:
    """A bearer token read from ``path``, re-read every ``period - leeway`` seconds and
    after :meth:`reset_older_than`.

    Reads the file at construction (raising :class:`ConfigError` when it is unreadable or
    empty). Not thread-safe; one event loop uses it.
    """

    __slots__ = (
        "_clock",
        "_failing",
        "_leeway",
        "_period",
        "_read_at",
        "_token",
        "path",
        "reloads",
    )

    def __init__(
        self,
        path: str,
        *,
        period: float = TOKEN_FILE_PERIOD,
        leeway: float = TOKEN_FILE_LEEWAY,
        clock: Clock = time.monotonic,
    ) -> None:
        self.path = path
        self._period = period
        self._leeway = leeway
        self._clock = clock
        self._token: str | None = None
        self._read_at = -math.inf
        self._failing = False
        self.reloads = 0
        """How many times a re-read found a different token."""
        self.token()

    def token(self) -> str:
        """The current token, from the file when the cached one is stale."""
        now = self._clock()
        if self._token is not None and now < self._read_at + self._period - self._leeway:
            return self._token
        try:
            with open(self.path, "rb") as f:
                token = f.read().decode("utf-8").strip()
            if not token:
                raise ValueError("the file is empty")
        except (OSError, ValueError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc)
            if self._token is None:
                raise ConfigError(f"token file {self.path!r} cannot be used: {detail}") from exc
            if not self._failing:
                log.warning("token_file.unreadable", path=self.path, error=detail)
                self._failing = True
            return self._token  # as client-go: keep the last token that was read
        if self._failing:
            log.info("token_file.readable", path=self.path)
        self._failing = False
        if self._token is not None and token != self._token:
            self.reloads += 1
            log.info("token_file.rotated", path=self.path)
        self._token = token
        self._read_at = now
        return token

    def reset_older_than(self, when: float) -> None:
        """Forget the token if it was read before ``when`` (a ``clock()`` reading, taken
        before sending the request that got a 401): the next :meth:`token` reads the file.
        A token read after ``when`` is kept, so one 401 forces at most one read."""
        if self._read_at < when:
            self._read_at = -math.inf


class TokenFileHook:
    """A ``Configuration.refresh_api_key_hook`` setting ``api_key["BearerToken"]`` from a
    :class:`FileToken` (kubernetes_asyncio runs the hook before each request)."""

    __slots__ = ("source",)

    def __init__(self, source: FileToken) -> None:
        self.source = source

    def __call__(self, configuration: Any) -> None:
        configuration.api_key["BearerToken"] = f"Bearer {self.source.token()}"


class ExecToken:
    """The bearer token of a kubeconfig ``exec`` credential plugin, cached as client-go's
    exec authenticator caches it.

    ``run`` runs the plugin and returns its ``ExecCredential`` ``status``; ``token`` and
    ``expiry`` (``expirationTimestamp`` as a ``datetime``, or ``None``) are what the
    loader's own run at load time gave. The plugin runs again for the next
    :meth:`token` when ``expiry`` has passed (``wall_clock``; no margin, as client-go)
    or after :meth:`reset_older_than`; a token without expiry is kept until a 401.
    Concurrent callers wait for one run. When a run fails (the plugin exits non-zero,
    prints no token) the current token is kept while it has not expired (logged once per
    streak; the next call runs the plugin again); an expired one is a
    :class:`ConfigError`. One event loop uses it.
    """

    __slots__ = (
        "_clock",
        "_expiry",
        "_failing",
        "_lock",
        "_obtained_at",
        "_run",
        "_stale",
        "_token",
        "_wall_clock",
        "command",
        "reloads",
    )

    def __init__(
        self,
        run: Callable[[], Awaitable[Mapping[str, Any]]],
        *,
        token: str,
        expiry: datetime | None,
        command: str,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        self._run = run
        self.command = command
        self._clock = clock
        self._wall_clock = wall_clock
        self._token = token
        self._expiry = expiry.timestamp() if expiry is not None else None
        self._obtained_at = clock()
        self._stale = False
        self._failing = False
        self._lock = anyio.Lock()
        self.reloads = 0
        """How many times a run of the plugin gave a different token."""

    def _expired(self) -> bool:
        return self._expiry is not None and self._wall_clock() > self._expiry

    async def token(self) -> str:
        """The current token; runs the plugin first when it expired or was reset."""
        async with self._lock:
            if not self._stale and not self._expired():
                return self._token
            started = self._clock()
            try:
                status = await self._run()
                token = status.get("token")
                if not token or not isinstance(token, str):
                    raise ValueError("its ExecCredential status has no token")
                stamp = status.get("expirationTimestamp")
                expiry = None if not stamp else datetime.fromisoformat(str(stamp)).timestamp()
            except Exception as exc:
                detail = " ".join(str(exc).split()) or type(exc).__name__
                if self._expired():
                    raise ConfigError(
                        f"exec credential plugin {self.command!r} failed and its last "
                        f"token expired: {detail} (run it by hand to see why)"
                    ) from exc
                if not self._failing:
                    log.warning("exec_plugin.failed", command=self.command, error=detail)
                    self._failing = True
                return self._token  # as client-go after a 401: the cached token stays
            if self._failing:
                log.info("exec_plugin.recovered", command=self.command)
            self._failing = False
            if token != self._token:
                self.reloads += 1
                log.info("exec_plugin.rotated", command=self.command)
            self._token, self._expiry = token, expiry
            self._obtained_at, self._stale = started, False
            return token

    def reset_older_than(self, when: float) -> None:
        """Run the plugin for the next :meth:`token` if the token was obtained before
        ``when`` (as :meth:`FileToken.reset_older_than`: one 401 forces at most one run)."""
        if self._obtained_at < when:
            self._stale = True


class ExecTokenHook:
    """An async ``Configuration.refresh_api_key_hook`` setting ``api_key["BearerToken"]``
    from an :class:`ExecToken` (kubernetes_asyncio awaits it before each request)."""

    __slots__ = ("source",)

    def __init__(self, source: ExecToken) -> None:
        self.source = source

    async def __call__(self, configuration: Any) -> None:
        configuration.api_key["BearerToken"] = f"Bearer {await self.source.token()}"


class CertFiles:
    """Notices a change of the client certificate and key files.

    :meth:`changed` reads both files at most every ``period`` seconds (or when forced)
    and tells whether their content differs from the pair last :meth:`accept`-ed; the
    pair read at construction is accepted. A pair that fails to load is not accepted, so
    the next check offers it again.
    """

    __slots__ = ("_accepted", "_checked_at", "_clock", "_pending", "_period", "cert", "key")

    def __init__(
        self,
        cert: str,
        key: str | None,
        *,
        period: float = CERT_FILE_PERIOD,
        clock: Clock = time.monotonic,
    ) -> None:
        self.cert = cert
        self.key = key
        self._period = period
        self._clock = clock
        self._checked_at = clock()
        self._accepted = self._pending = self._digest()

    def changed(self, *, force: bool = False) -> bool:
        """True when the files differ from the accepted pair (checked when due or forced)."""
        now = self._clock()
        if not force and now < self._checked_at + self._period:
            return False
        self._checked_at = now
        self._pending = self._digest()
        return self._pending is not None and self._pending != self._accepted

    def accept(self) -> None:
        """The pair last seen by :meth:`changed` is now in use."""
        self._accepted = self._pending

    def _digest(self) -> bytes | None:
        digest = hashlib.sha256()
        try:
            for path in (self.cert, self.key):
                if path is not None:
                    with open(path, "rb") as f:
                        digest.update(f.read())
                digest.update(b"\0")
        except OSError as exc:
            log.warning("cert_file.unreadable", path=self.cert, key=self.key, error=exc.strerror)
            return None
        return digest.digest()


def ssl_context_for(configuration: Any) -> ssl.SSLContext:
    """The client SSL context of a kubernetes_asyncio ``Configuration``, as its
    ``RESTClientObject`` builds it: CA file, client certificate and key, ``verify_ssl``,
    ``disable_strict_ssl_verification``. Raises ``OSError`` / ``ssl.SSLError``."""
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if getattr(configuration, "disable_strict_ssl_verification", False):
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return context


class ClientCredentials:
    """The credential state of one ApiClient, kept by ``informer._rest.transport``.

    - The SSL context of new connections, built from the configuration as
      kubernetes_asyncio does (:func:`ssl_context_for`) and rebuilt when the client
      certificate files change (checked every ``CERT_FILE_PERIOD`` and after a 401).
      Open connections keep the context they were opened with until they end.
    - The :class:`AuthStatus` of the client's answers.
    - The reaction to a 401: a :class:`TokenFileHook`'s token is re-read and an
      :class:`ExecTokenHook`'s plugin run again by the next request (as client-go's
      ``ResetTokenOlderThan`` and exec ``maybeRefreshCreds``), and the certificate files
      are checked at once.
    """

    __slots__ = ("_certs", "_config", "_ssl", "auth")

    def __init__(self, configuration: Any) -> None:
        self._config = configuration
        self.auth = AuthStatus()
        self._ssl: ssl.SSLContext | None = None
        cert = configuration.cert_file
        self._certs = CertFiles(cert, configuration.key_file) if cert else None

    def ssl_context(self, *, recheck: bool = False) -> ssl.SSLContext:
        """The context for new connections; re-reads the certificate files when due."""
        if self._ssl is None:
            self._ssl = ssl_context_for(self._config)
        elif self._certs is not None and self._certs.changed(force=recheck):
            try:
                context = ssl_context_for(self._config)
            except (OSError, ssl.SSLError) as exc:  # e.g. a certificate without its key yet
                log.warning("cert_file.unusable", path=self._certs.cert, error=str(exc))
            else:
                self._ssl = context
                self._certs.accept()
                self.auth.certificate_reloads += 1
                log.info("cert_file.rotated", path=self._certs.cert)
        return self._ssl

    def answered(self, status: int, sent_at: float) -> None:
        """Record an answer to a request sent at ``sent_at`` (``time.monotonic()``, taken
        before its credentials were read)."""
        self.auth.record(status)
        hook = self._config.refresh_api_key_hook
        if isinstance(hook, TokenFileHook | ExecTokenHook):
            if status == 401:
                hook.source.reset_older_than(sent_at)
            self.auth.token_reloads = hook.source.reloads
        if status == 401 and self._ssl is not None and self._certs is not None:
            self.ssl_context(recheck=True)


@dataclass(slots=True)
class AuthStatus:
    """How the API server answered one client's credentials (written by
    ``informer._rest.transport`` on every answer; readers only read).

    ``consecutive_failures`` counts 401 and 403 answers since the last answer that proves
    the credentials work (any other status below 500); ``failing_since`` is the
    ``time.monotonic()`` of the first failure of that streak (``None`` when there is
    none). ``last_failure_at`` (``time.time()``) and ``last_failure_status`` describe the
    latest failure, ``last_success_at`` (``time.time()``) the latest proof.
    ``unauthorized_total`` and ``forbidden_total`` count every 401 and 403;
    ``token_reloads`` and ``certificate_reloads`` count token and client certificate
    files found rotated (and loaded).
    """

    consecutive_failures: int = 0
    failing_since: float | None = None
    last_failure_at: float | None = None
    last_failure_status: int | None = None
    last_success_at: float | None = None
    unauthorized_total: int = 0
    forbidden_total: int = 0
    token_reloads: int = 0
    certificate_reloads: int = 0

    def failing_for(self, now: float | None = None) -> float:
        """Seconds since the current streak of 401/403 began; ``0.0`` without one."""
        if self.failing_since is None:
            return 0.0
        return max(0.0, (time.monotonic() if now is None else now) - self.failing_since)

    def record(self, status: int) -> None:
        """Account for one HTTP answer (``informer._rest.transport`` calls this)."""
        if status in (401, 403):
            if status == 401:
                self.unauthorized_total += 1
            else:
                self.forbidden_total += 1
            if self.consecutive_failures == 0:
                self.failing_since = time.monotonic()
            self.consecutive_failures += 1
            self.last_failure_at = time.time()
            self.last_failure_status = status
        elif status < 500:
            self.consecutive_failures = 0
            self.failing_since = None
            self.last_success_at = time.time()
