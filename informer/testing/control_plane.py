"""A local control plane for tests: a real etcd and a real kube-apiserver.

This is kube-informer's counterpart of controller-runtime's *envtest*. ``ControlPlane``
starts etcd and kube-apiserver as child processes bound to free ``127.0.0.1`` ports, in a
folder holding generated certificates, logs, etcd's data and an admin kubeconfig::

    async with ControlPlane() as cp:
        async with cp.api_client() as api:          # cluster admin (O=system:masters)
            ...
        alice = cp.user("alice", groups=["dev"])    # a non-admin identity, for RBAC tests
        await cp.restart_apiserver()                # open watches drop; data survives
        await cp.compact_etcd()                     # old resourceVersions become 410 Gone

There is no scheduler, kubelet or controller-manager: objects are stored and served, and
nothing acts on them (a Deployment gets no ReplicaSet or Pod; a deleted Namespace stays
``Terminating``).

Binaries come from ``assets_dir``, else from ``$KUBEBUILDER_ASSETS`` (a folder holding
``kube-apiserver`` and ``etcd``, the envtest convention); ``make control-plane`` builds
them.

Process lifetime contract (Linux only): the children never outlive the control plane.
They are stopped (SIGTERM, then SIGKILL after a grace period) when the ``async with``
block exits for any reason, including cancellation (cleanup is shielded). They also carry
Linux's ``PR_SET_PDEATHSIG`` = SIGKILL, so they die with the parent even when it is
SIGKILLed. PDEATHSIG fires when the *thread* that forked them exits, so children are
always spawned from the event-loop thread; run a ``ControlPlane`` on a loop whose thread
lives as long as it does (the normal case). Children run in their own session so that a
terminal's Ctrl-C reaches only the parent, which then stops them in order (apiserver,
then etcd). A temporary state folder is removed on stop; one left by a SIGKILLed parent
is removed by the next ``ControlPlane`` to start (each holds a ``flock`` on its own).

Open watches on a graceful apiserver stop *end* (the response completes); on
``kill=True`` they *break*. The default flags are listed in ``_start_etcd`` and
``_start_apiserver``; ``etcd_args`` / ``apiserver_args`` override any of them.

``python -m informer.testing.control_plane`` runs one in the foreground (see ``main``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self, TypeVar

import anyio
import structlog

from .._exceptions import InformerError
from .._kube import ApiClient, new_api_client

if TYPE_CHECKING:
    from ._certs import CertificateAuthority

__all__ = ["ControlPlane", "ControlPlaneError", "User", "main"]

log = structlog.get_logger(__name__)
_T = TypeVar("_T")

#: How to get the binaries; part of every "binaries not found" error.
HOW_TO_GET_BINARIES = (
    "run `make control-plane` in a kube-informer checkout (needs Go 1.26+) or set "
    "KUBEBUILDER_ASSETS to a folder holding kube-apiserver and etcd"
)
ADMIN_USER = "kube-informer-admin"
ADMIN_GROUPS = ("system:masters",)
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"

_STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
_POLL_INTERVAL = 0.05  # seconds between checks of a child's liveness / readiness
_PROBE_TIMEOUT = 2.0  # seconds for one HTTP readiness probe
_LOG_TAIL_LINES = 20
_BIND_RETRIES = 3  # fresh ports after "address already in use"
_TEMP_PREFIX = "kube-informer-cp-"

_PR_SET_PDEATHSIG = 1
# Loaded in the parent: the child (after fork, before exec) must not load libraries.
_libc = ctypes.CDLL(None, use_errno=True)


class ControlPlaneError(InformerError):
    """The control plane could not be started or driven.

    Raised for missing binaries, a child that exits early, a readiness timeout (the
    message then holds the last lines of the child's log), or misuse (e.g. calling
    ``restart_apiserver`` on a stopped control plane).
    """


@dataclass(frozen=True)
class User:
    """An identity on a running control plane: a client certificate and a kubeconfig.

    ``name`` is the Kubernetes user name (certificate ``CN``), ``groups`` its groups
    (``O``). Authorization is RBAC: a user outside ``system:masters`` can do only what
    Roles/ClusterRoles bound to it (or to its groups) allow.
    """

    name: str
    groups: tuple[str, ...]
    kubeconfig_path: Path

    def api_client(self) -> ApiClientContext:
        """A kubernetes_asyncio ``ApiClient`` for this identity.

        ``async with user.api_client() as api:`` closes it on exit;
        ``api = await user.api_client()`` hands ownership to the caller, who must
        ``await api.close()``.
        """
        return ApiClientContext(self.kubeconfig_path)


class ApiClientContext:
    """Awaitable (returns an ``ApiClient`` the caller closes) and async context manager
    (closes the client on exit)."""

    def __init__(self, kubeconfig_path: Path) -> None:
        self._kubeconfig_path = kubeconfig_path
        self._client: ApiClient | None = None

    def __await__(self) -> Generator[Any, None, ApiClient]:
        return new_api_client(kubeconfig=str(self._kubeconfig_path)).__await__()

    async def __aenter__(self) -> ApiClient:
        self._client = await new_api_client(kubeconfig=str(self._kubeconfig_path))
        return self._client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            with anyio.CancelScope(shield=True):
                await client.close()


@dataclass
class _Child:
    """One child process and the file its stdout and stderr go to."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the child's log."""
        return _tail(self.log_path, lines)

    def died_error(self, when: str) -> ControlPlaneError:
        return ControlPlaneError(
            f"{self.name} exited with code {self.popen.returncode} {when}; "
            f"{_failure_excerpt(self.log_path)}"
        )

    async def stop(self, grace: float = _STOP_GRACE) -> int | None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; reap. Returns the exit code.

        ``grace=0`` sends SIGKILL at once. Call it shielded from cancellation: it must run
        to completion.
        """
        if self.alive() and grace > 0:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with anyio.move_on_after(grace):
                await self.wait_exited()
            if self.alive():
                log.warning("control_plane.kill", child=self.name, pid=self.pid, grace=grace)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()
            await self.wait_exited()  # SIGKILL cannot be ignored: this ends quickly
        return self.popen.returncode

    async def wait_exited(self) -> None:
        """Return once the child has exited, and reap it."""
        if self.popen.returncode is not None:  # reaped: its pid may belong to another
            return
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            self.popen.wait()
            return
        try:
            await anyio.wait_readable(pidfd)  # a pidfd turns readable when the process exits
        finally:
            os.close(pidfd)
        self.popen.wait()


class ControlPlane:
    """A running etcd + kube-apiserver pair, as an async context manager.

    ``apiserver_args`` and ``etcd_args`` are extra flags (``--name=value``, ``--name value``
    or ``--flag``); a flag the control plane also sets is replaced, not repeated.
    ``assets_dir`` is the folder holding ``kube-apiserver`` and ``etcd`` (default
    ``$KUBEBUILDER_ASSETS``). ``start_timeout`` bounds each start in seconds (from
    spawning etcd to the apiserver's ``/readyz`` green; for ``start_apiserver``, from
    spawning the apiserver). ``state_dir`` keeps the state folder at a fixed path
    instead of a temporary folder: it is created if missing, locked while in use, its
    previous control-plane files (etcd data, certificates, logs) are replaced, and it is
    left in place on stop; a temporary folder is deleted on stop.

    After ``__aenter__``: ``dir``, ``host`` (``https://127.0.0.1:<port>``), ``etcd_url``,
    ``kubeconfig_path`` (admin), ``admin`` (a :class:`User`), ``apiserver_pid`` and
    ``etcd_pid``. One instance is started at most once.
    """

    def __init__(
        self,
        *,
        apiserver_args: Sequence[str] = (),
        etcd_args: Sequence[str] = (),
        assets_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 90.0,
        state_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._apiserver_extra = list(apiserver_args)
        self._etcd_extra = list(etcd_args)
        self._assets_dir = assets_dir
        self.start_timeout = start_timeout
        self._state_dir = Path(state_dir).absolute() if state_dir is not None else None

        self._dir: Path | None = None
        self._owns_dir = False
        self._lock_file: IO[bytes] | None = None
        self._apiserver_bin = Path()
        self._etcd_bin = Path()
        self._ca: CertificateAuthority | None = None  # cryptography is imported lazily
        self._admin: User | None = None
        self._users: dict[tuple[str, tuple[str, ...]], User] = {}
        self._apiserver_port = 0
        self._etcd_port = 0
        self._etcd_peer_port = 0
        self._apiserver: _Child | None = None
        self._etcd: _Child | None = None
        self._live: list[_Child] = []  # shared with the finalizer
        self._deadline = 0.0
        self._started = False
        self._stopped = False
        self._finalizer = weakref.finalize(self, _kill_children, self._live)

    # -- attributes ----------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        """The state folder: certificates, ``kubeconfig``, ``*.log``, ``etcd-data``."""
        return self._require(self._dir)

    @property
    def host(self) -> str:
        """The apiserver's URL, ``https://127.0.0.1:<port>``."""
        return f"https://127.0.0.1:{self._require(self._apiserver_port or None)}"

    @property
    def etcd_url(self) -> str:
        """etcd's client URL, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._require(self._etcd_port or None)}"

    @property
    def admin(self) -> User:
        """The cluster-admin identity (``O=system:masters``)."""
        return self._require(self._admin)

    @property
    def kubeconfig_path(self) -> Path:
        """The admin kubeconfig (file paths to the CA and the client certificate)."""
        return self.admin.kubeconfig_path

    @property
    def apiserver_pid(self) -> int | None:
        """The running kube-apiserver's pid, ``None`` while it is stopped."""
        return self._apiserver.pid if self._apiserver and self._apiserver.alive() else None

    @property
    def etcd_pid(self) -> int | None:
        """The running etcd's pid, ``None`` once stopped."""
        return self._etcd.pid if self._etcd and self._etcd.alive() else None

    def _require(self, value: _T | None) -> _T:
        if value is None or not self._started:
            raise ControlPlaneError("the control plane is not started")
        return value

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start etcd, then kube-apiserver, and wait until both are ready.

        On any failure (or cancellation) everything started so far is stopped before the
        error propagates. Raises :class:`ControlPlaneError`.
        """
        if self._started:
            raise ControlPlaneError("a ControlPlane can be started only once")
        self._apiserver_bin, self._etcd_bin = find_binaries(self._assets_dir)
        began = time.monotonic()
        self._started = True
        try:
            self._deadline = time.monotonic() + self.start_timeout
            (self._apiserver_port,) = _free_ports(1)
            await self._prepare_dir()
            await self._start_etcd()
            await self._start_apiserver_with_retries()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._shutdown()
            raise
        log.info(
            "control_plane.ready",
            host=self.host,
            dir=str(self._dir),
            seconds=round(time.monotonic() - began, 2),
        )

    async def stop(self) -> None:
        """Stop kube-apiserver, then etcd; delete the temporary folder. Idempotent.

        Shielded from cancellation: it completes even in a cancelled scope.
        """
        with anyio.CancelScope(shield=True):
            await self._shutdown()

    async def stop_apiserver(self, *, kill: bool = False) -> None:
        """Stop kube-apiserver; etcd keeps running and keeps the data. No-op when stopped.

        By default the shutdown is graceful (SIGTERM): open watches *end normally* (the
        response completes, as when a watch times out) within about a second, then the
        process exits; SIGKILL follows if it takes more than a few seconds. With
        ``kill=True`` it is SIGKILLed at once: connections *break* (a client reading a
        watch sees an incomplete response). Either way new connections are refused
        until ``start_apiserver``. Shielded from cancellation.
        """
        self._check_running()
        if self._apiserver is None:
            return
        with anyio.CancelScope(shield=True):
            child, self._apiserver = self._apiserver, None
            code = await child.stop(grace=0.0 if kill else _STOP_GRACE)
            self._forget(child)
        log.info("control_plane.apiserver_stopped", exit_code=code, kill=kill)

    async def start_apiserver(self) -> None:
        """Start kube-apiserver again on the same port with the same flags; wait for ready."""
        self._check_running()
        if self._apiserver is not None:
            raise ControlPlaneError("kube-apiserver is already running")
        self._deadline = time.monotonic() + self.start_timeout
        try:
            await self._start_apiserver()
        except BaseException:
            if self._apiserver is not None:
                child, self._apiserver = self._apiserver, None
                await self._discard(child)
            raise

    async def restart_apiserver(self, *, kill: bool = False) -> None:
        """``stop_apiserver(kill=kill)`` then ``start_apiserver()``: same etcd, port and
        flags. If cancelled while starting, the apiserver is left stopped."""
        await self.stop_apiserver(kill=kill)
        await self.start_apiserver()

    async def compact_etcd(self) -> int:
        """Compact etcd at its current revision; return that revision.

        With the apiserver's watch cache off (``--watch-cache=false``), a watch or a
        list at any older resourceVersion then fails with 410 Gone. With the watch cache
        on, the cache keeps answering from its own window until that window moves on.
        """
        self._check_running()
        header = await _post_json(f"{self.etcd_url}/v3/kv/range", {"key": _b64(b"\0")})
        revision = int(header["header"]["revision"])
        try:
            await _post_json(
                f"{self.etcd_url}/v3/kv/compaction", {"revision": revision, "physical": True}
            )
        except ControlPlaneError as exc:
            if "compacted" not in str(exc):  # already compacted at this revision: fine
                raise
        log.info("control_plane.etcd_compacted", revision=revision)
        return revision

    def user(self, name: str, groups: Iterable[str] = ()) -> User:
        """An identity ``name`` in ``groups``, with its own client certificate and kubeconfig.

        The same ``(name, groups)`` returns the same :class:`User`.
        """
        self._check_running()
        key = (name, tuple(groups))
        if key not in self._users:
            self._users[key] = self._new_user(*key)
        return self._users[key]

    def api_client(self) -> ApiClientContext:
        """A kubernetes_asyncio ``ApiClient`` for the admin; see :meth:`User.api_client`."""
        return self.admin.api_client()

    async def wait_child_exit(self) -> str:
        """Wait until etcd or kube-apiserver exits; return its name (``"etcd"`` or
        ``"kube-apiserver"``). Meant for a foreground runner that has no restarts.
        """
        self._check_running()
        children = [c for c in (self._etcd, self._apiserver) if c is not None]
        exited: list[str] = []
        async with anyio.create_task_group() as tg:

            async def watch(child: _Child) -> None:
                await child.wait_exited()
                exited.append(child.name)
                tg.cancel_scope.cancel()

            for child in children:
                tg.start_soon(watch, child)
        return exited[0]

    def log_tail(self, name: str, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of ``etcd.log`` or ``kube-apiserver.log``."""
        return _tail(self.dir / f"{name}.log", lines)

    # -- internals -----------------------------------------------------------------------

    def _check_running(self) -> None:
        if not self._started or self._stopped or self._etcd is None:
            raise ControlPlaneError("the control plane is not running")

    async def _prepare_dir(self) -> None:
        if self._state_dir is None:
            _remove_stale_temp_dirs()
            self._dir = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX))
            self._owns_dir = True
            self._lock_dir(self._dir)
        else:
            self._dir = self._state_dir
            self._dir.mkdir(parents=True, exist_ok=True)
            self._lock_dir(self._dir)
            shutil.rmtree(self._dir / "etcd-data", ignore_errors=True)
            shutil.rmtree(self._dir / "users", ignore_errors=True)
        await anyio.to_thread.run_sync(self._write_certs, self._dir)
        self._admin = self._new_user(ADMIN_USER, ADMIN_GROUPS, path=self._dir / "kubeconfig")

    def _lock_dir(self, folder: Path) -> None:
        lock = open(folder / ".lock", "wb")  # noqa: SIM115 - held open while running
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ControlPlaneError(
                f"{folder} is in use by another running control plane"
            ) from None
        self._lock_file = lock

    def _write_certs(self, folder: Path) -> None:
        from . import _certs  # cryptography is an optional dependency (extra "testing")

        ca = self._ca = _certs.CertificateAuthority()
        (folder / "ca.crt").write_bytes(ca.cert_pem)
        ca.issue_serving().write(folder / "apiserver.crt", folder / "apiserver.key")
        _certs.write_service_account_keys(folder / "sa.key", folder / "sa.pub")

    def _new_user(self, name: str, groups: tuple[str, ...], path: Path | None = None) -> User:
        folder = self.dir if path is not None else self._user_dir(name, groups)
        folder.mkdir(parents=True, exist_ok=True)
        stem = "admin" if path is not None else "client"
        cert, key = folder / f"{stem}.crt", folder / f"{stem}.key"
        assert self._ca is not None, "certificates are written before any user"
        self._ca.issue_client(name, groups).write(cert, key)
        kubeconfig = path or folder / "kubeconfig"
        _write_kubeconfig(
            kubeconfig,
            server=self.host,
            ca=self.dir / "ca.crt",
            user=name,
            cert=cert,
            key=key,
        )
        return User(name=name, groups=groups, kubeconfig_path=kubeconfig)

    def _user_dir(self, name: str, groups: tuple[str, ...]) -> Path:
        digest = hashlib.sha256(json.dumps([name, groups]).encode()).hexdigest()[:8]
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40]
        return self.dir / "users" / f"{safe}-{digest}"

    async def _start_etcd(self) -> None:
        folder = self.dir
        for attempt in range(_BIND_RETRIES):
            self._etcd_port, self._etcd_peer_port = _free_ports(2)
            client = f"http://127.0.0.1:{self._etcd_port}"
            peer = f"http://127.0.0.1:{self._etcd_peer_port}"
            defaults = [
                "--name=default",
                f"--data-dir={folder / 'etcd-data'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--unsafe-no-fsync=true",
            ]
            argv = [str(self._etcd_bin), *merge_args(defaults, self._etcd_extra)]
            self._etcd = self._spawn("etcd", argv)
            try:
                await self._wait_ready(self._etcd, f"{client}/health", _etcd_healthy)
                return
            except ControlPlaneError:
                if attempt + 1 < _BIND_RETRIES and _bind_failed(self._etcd):
                    child, self._etcd = self._etcd, None
                    await self._discard(child)
                    continue
                raise

    async def _start_apiserver_with_retries(self) -> None:
        for attempt in range(_BIND_RETRIES):
            (self._apiserver_port,) = _free_ports(1)
            self._rewrite_kubeconfigs()
            try:
                await self._start_apiserver()
                return
            except ControlPlaneError:
                child = self._apiserver
                if attempt + 1 < _BIND_RETRIES and child is not None and _bind_failed(child):
                    self._apiserver = None
                    await self._discard(child)
                    continue
                raise

    async def _start_apiserver(self) -> None:
        folder = self.dir
        defaults = [
            f"--etcd-servers={self.etcd_url}",
            f"--cert-dir={folder / 'apiserver-certs'}",
            f"--tls-cert-file={folder / 'apiserver.crt'}",
            f"--tls-private-key-file={folder / 'apiserver.key'}",
            f"--client-ca-file={folder / 'ca.crt'}",
            f"--secure-port={self._apiserver_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # The "kubernetes" Endpoints cannot hold a loopback address: without this the
            # reconciler logs a validation error every 10 s.
            "--endpoint-reconciler-type=none",
            # On SIGTERM, end open watches cleanly and exit in ~1 s. Without it the
            # apiserver waits for watches to go away (up to its 60 s shutdown timeout).
            "--shutdown-watch-termination-grace-period=1s",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={folder / 'sa.pub'}",
            f"--service-account-signing-key-file={folder / 'sa.key'}",
        ]
        argv = [str(self._apiserver_bin), *merge_args(defaults, self._apiserver_extra)]
        self._apiserver = self._spawn("kube-apiserver", argv)
        context = ssl.create_default_context(cafile=str(folder / "ca.crt"))
        context.load_cert_chain(folder / "admin.crt", folder / "admin.key")
        await self._wait_ready(self._apiserver, f"{self.host}/readyz", _is_ok, context)

    def _rewrite_kubeconfigs(self) -> None:
        for user in [self.admin, *self._users.values()]:
            config = json.loads(user.kubeconfig_path.read_text())
            config["clusters"][0]["cluster"]["server"] = self.host
            _atomic_write(user.kubeconfig_path, json.dumps(config, indent=2).encode())

    def _spawn(self, name: str, argv: list[str]) -> _Child:
        """Start a child from the current (event-loop) thread; see the module docstring."""
        log_path = self.dir / f"{name}.log"
        with open(log_path, "ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {shlex.join(argv)}\n".encode())
            out.flush()
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        child = _Child(name=name, argv=argv, log_path=log_path, popen=popen)
        self._live.append(child)
        log.debug("control_plane.spawned", child=name, pid=popen.pid)
        return child

    async def _wait_ready(
        self,
        child: _Child,
        url: str,
        ready: Callable[[int, bytes], bool],
        context: ssl.SSLContext | None = None,
    ) -> None:
        """Poll ``url`` until ``ready(status, body)``; fail if the child exits or on timeout."""
        last = "no answer yet"
        while True:
            if not child.alive():
                raise child.died_error("before becoming ready")
            status, body, error = await anyio.to_thread.run_sync(
                _probe, url, context, abandon_on_cancel=True
            )
            if ready(status, body):
                log.debug(
                    "control_plane.child_ready",
                    child=child.name,
                    seconds=round(time.monotonic() - child.started_at, 2),
                )
                return
            last = error or f"HTTP {status}: {body.decode('utf-8', 'replace')[-2000:]}"
            if time.monotonic() >= self._deadline:
                raise ControlPlaneError(
                    f"{child.name} not ready after {self.start_timeout:g} s "
                    f"(GET {url} -> {last}); {_failure_excerpt(child.log_path)}"
                )
            await anyio.sleep(_POLL_INTERVAL * 2)

    async def _discard(self, child: _Child) -> None:
        with anyio.CancelScope(shield=True):
            await child.stop()
        self._forget(child)

    def _forget(self, child: _Child) -> None:
        with contextlib.suppress(ValueError):
            self._live.remove(child)

    async def _shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for attr in ("_apiserver", "_etcd"):
            child: _Child | None = getattr(self, attr)
            if child is None:
                continue
            exited_before = not child.alive()
            code = await child.stop()
            self._forget(child)
            if exited_before:
                log.warning(
                    "control_plane.child_died",
                    child=child.name,
                    exit_code=code,
                    log_tail=child.tail(),
                )
        # Anything spawned but not recorded (e.g. a failed start's leftovers).
        for child in list(self._live):
            await child.stop()
            self._forget(child)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        if self._owns_dir and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        log.info("control_plane.stopped", dir=str(self._dir) if self._dir else None)


# -- helpers ------------------------------------------------------------------------------


def find_binaries(assets_dir: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """``(kube-apiserver, etcd)`` from ``assets_dir``, else ``$KUBEBUILDER_ASSETS``.

    Raises :class:`ControlPlaneError` saying how to get them when they are missing.
    """
    if assets_dir is not None:
        source = f"assets_dir={os.fspath(assets_dir)!r}"
        folder = Path(assets_dir)
    elif os.environ.get("KUBEBUILDER_ASSETS"):
        folder = Path(os.environ["KUBEBUILDER_ASSETS"])
        source = f"KUBEBUILDER_ASSETS={os.fspath(folder)!r}"
    else:
        raise ControlPlaneError(
            f"control-plane binaries not found: no assets_dir and KUBEBUILDER_ASSETS is "
            f"not set; {HOW_TO_GET_BINARIES}"
        )
    binaries = folder / "kube-apiserver", folder / "etcd"
    missing = [b.name for b in binaries if not (b.is_file() and os.access(b, os.X_OK))]
    if missing:
        raise ControlPlaneError(
            f"control-plane binaries not found: {source} has no executable "
            f"{' or '.join(missing)}; {HOW_TO_GET_BINARIES}"
        )
    return binaries


def merge_args(defaults: Sequence[str], extra: Sequence[str]) -> list[str]:
    """``defaults`` with ``extra`` applied: a flag in ``extra`` replaces the same flag.

    Flags are ``--name=value``, ``--name value`` or a bare ``--name``; the result uses
    the ``--name=value`` form (write a value starting with ``-`` as ``--name=-1``).
    Order: defaults first, then new flags from ``extra``. Raises ``ValueError`` for a
    value with no flag before it.
    """

    def is_flag(arg: str) -> bool:
        return arg.startswith("-") and arg != "-"

    merged: dict[str, str | None] = {}
    for args in (defaults, extra):
        i = 0
        while i < len(args):
            arg = args[i]
            if not is_flag(arg):
                raise ValueError(f"expected a flag, got {arg!r} in {list(args)!r}")
            name, eq, value = arg.partition("=")
            if not eq and i + 1 < len(args) and not is_flag(args[i + 1]):
                value, eq = args[i + 1], "="
                i += 1
            merged[name.lstrip("-")] = value if eq else None
            i += 1
    return [f"--{k}" if v is None else f"--{k}={v}" for k, v in merged.items()]


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` giving the child PDEATHSIG=SIGKILL (closing the fork race)."""

    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _kill_children(children: list[_Child]) -> None:
    """Last resort (garbage collection or interpreter exit): SIGKILL and reap."""
    for child in children:
        if child.alive():
            with contextlib.suppress(ProcessLookupError):
                child.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=5)


def _tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log file (empty if unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _remove_stale_temp_dirs() -> None:
    """Delete temporary state folders whose owner died without cleaning up (SIGKILL).

    A live owner holds an exclusive ``flock`` on ``.lock``; a folder younger than a
    minute is left alone (its owner may not have locked it yet).
    """
    root = Path(tempfile.gettempdir())
    for folder in root.glob(f"{_TEMP_PREFIX}*"):
        lock_path = folder / ".lock"
        try:
            if time.time() - lock_path.stat().st_mtime < 60:
                continue
            with open(lock_path, "rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # no lock file, or locked by a live owner
            continue
        log.debug("control_plane.stale_dir_removed", dir=str(folder))
        shutil.rmtree(folder, ignore_errors=True)


# A fatal line that may scroll out of the tail (etcd prints its usage after a bad flag).
_FATAL_LINE = re.compile(
    r'^(F\d{4} |panic:|Error:|flag provided but not defined)|"level":"(fatal|panic)"'
)


def _failure_excerpt(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log, preceded by its first fatal line if that one
    is older."""
    text = _tail(path, 10_000).splitlines()
    head = [line for line in text[:-lines] if _FATAL_LINE.search(line)][:1]
    excerpt = "\n".join([*head, *(["..."] if head else []), *text[-lines:]])
    return f"last lines of {path}:\n{excerpt}"


def _free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (the kernel picks them)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _bind_failed(child: _Child) -> bool:
    return not child.alive() and "address already in use" in child.tail(50)


def _probe(url: str, context: ssl.SSLContext | None) -> tuple[int, bytes, str | None]:
    """GET ``url`` (blocking): ``(status, body, None)`` or ``(0, b"", error)``."""
    try:
        with _opener(context).open(url, timeout=_PROBE_TIMEOUT) as resp:
            return resp.status, resp.read(), None
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(), None
    except (OSError, ValueError) as exc:
        return 0, b"", repr(exc)


def _opener(context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    """An opener that ignores ``*_proxy`` variables: everything here is on 127.0.0.1."""
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )


def _is_ok(status: int, body: bytes) -> bool:
    return status == 200


def _etcd_healthy(status: int, body: bytes) -> bool:
    if status != 200:
        return False
    try:
        return json.loads(body).get("health") == "true"  # type: ignore[no-any-return]
    except ValueError:
        return False


async def _post_json(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    def post() -> dict[str, Any]:
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with _opener(None).open(request, timeout=30) as resp:
                return json.loads(resp.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read().decode("utf-8", "replace")
            raise ControlPlaneError(f"POST {url} -> HTTP {exc.code}: {body}") from None
        except OSError as exc:
            raise ControlPlaneError(f"POST {url} failed: {exc!r}") from exc

    return await anyio.to_thread.run_sync(post)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _write_kubeconfig(
    path: Path, *, server: str, ca: Path, user: str, cert: Path, key: Path
) -> None:
    """A kubeconfig (JSON, which is YAML) with one cluster, user and current context."""
    cluster = "kube-informer-test"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster, "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [
            {"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [{"name": f"{user}@{cluster}", "context": {"cluster": cluster, "user": user}}],
        "current-context": f"{user}@{cluster}",
        "preferences": {},
    }
    _atomic_write(path, json.dumps(config, indent=2).encode())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# -- command line -------------------------------------------------------------------------


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m informer.testing.control_plane",
        description=(
            "Run a local etcd + kube-apiserver in the foreground until Ctrl-C or SIGTERM. "
            "Arguments after `--` go to kube-apiserver."
        ),
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="state folder to use (kept after exit; its kubeconfig path is stable) "
        "instead of a temporary folder",
    )
    parser.add_argument(
        "--assets-dir",
        type=Path,
        help="folder holding kube-apiserver and etcd (default: $KUBEBUILDER_ASSETS)",
    )
    parser.add_argument("--start-timeout", type=float, default=90.0, metavar="SECONDS")
    parser.add_argument(
        "--apiserver-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra kube-apiserver flag, e.g. --apiserver-arg=--watch-cache=false (repeatable)",
    )
    parser.add_argument(
        "--etcd-arg", action="append", default=[], metavar="FLAG", help="extra etcd flag"
    )
    ns = parser.parse_args(argv)
    ns.apiserver_arg += passthrough
    return ns


async def _serve(ns: argparse.Namespace) -> int:
    code = 0
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                async for signum in signals:
                    log.info("control_plane.signal", signal=signal.Signals(signum).name)
                    tg.cancel_scope.cancel()
                    return

            tg.start_soon(stop_on_signal)
            cp = ControlPlane(
                apiserver_args=ns.apiserver_arg,
                etcd_args=ns.etcd_arg,
                assets_dir=ns.assets_dir,
                start_timeout=ns.start_timeout,
                state_dir=ns.dir,
            )
            try:
                async with cp:
                    print(f"kubeconfig: {cp.kubeconfig_path}", flush=True)
                    print(f"apiserver: {cp.host}", flush=True)
                    print(f"export KUBECONFIG={shlex.quote(str(cp.kubeconfig_path))}", flush=True)
                    dead = await cp.wait_child_exit()
                    raise ControlPlaneError(
                        f"{dead} exited unexpectedly; last lines of its log:\n{cp.log_tail(dead)}"
                    )
            except ControlPlaneError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                code = 1
            tg.cancel_scope.cancel()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m informer.testing.control_plane [--dir DIR] [...] [-- APISERVER_FLAGS]``.

    Starts a control plane, prints ``kubeconfig: PATH``, ``apiserver: URL`` and an
    ``export KUBECONFIG=PATH`` line on stdout, and runs until SIGINT/SIGTERM/SIGHUP, then
    stops both children and exits 0. Exits 1 when the control plane fails to start or a
    child dies. Logs go to stderr.
    """
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    ns = _parse_args(sys.argv[1:] if argv is None else argv)
    return anyio.run(_serve, ns)


if __name__ == "__main__":
    sys.exit(main())
