"""A local control plane for tests: a real etcd, a real kube-apiserver and, when asked
for, a real kube-controller-manager.

This is kube-informer's counterpart of controller-runtime's *envtest*. ``ControlPlane``
starts etcd and kube-apiserver as child processes bound to free ``127.0.0.1`` ports, in a
folder holding generated certificates, logs, etcd's data and an admin kubeconfig::

    async with ControlPlane() as cp:
        async with cp.api_client() as api:          # cluster admin (O=system:masters)
            ...
        alice = cp.user("alice", groups=["dev"])    # a non-admin identity, for RBAC tests
        await cp.restart_apiserver()                # open watches drop; data survives
        await cp.compact_etcd()                     # old resourceVersions become 410 Gone

There is no scheduler or kubelet: objects are stored and served, and by default nothing
acts on them (a Deployment gets no ReplicaSet or Pod; a deleted Namespace stays
``Terminating``). ``ControlPlane(controller_manager=True)`` also runs kube-controller-manager
with the garbage collector, the namespace controller and the service-account controllers
(``_controller_manager.py``): owner references cascade and deleted namespaces go away,
which envtest does not offer.

Binaries come from ``assets_dir``, else from the first folder holding them among
``$KUBEBUILDER_ASSETS``, the user cache, a checkout's ``.cache/control-plane`` and
setup-envtest's folder (:mod:`informer.testing.envtest`); ``python -m
informer.testing.envtest install`` builds them.

Process lifetime contract (Linux only): the children never outlive the control plane.
They are stopped (SIGTERM, then SIGKILL after a grace period) in order
(controller-manager, apiserver, then etcd) when the ``async with`` block exits for any
reason, including cancellation (cleanup is shielded), and die with the parent even when
it is SIGKILLed (Linux's ``PR_SET_PDEATHSIG``, set from the event-loop thread: run a
``ControlPlane`` on a loop whose thread lives as long as it does, the normal case). See
``_process.py``. A temporary state folder is removed on stop; one left by a SIGKILLed
parent is removed by the next ``ControlPlane`` to start (``_state_dir.py``).

Open watches on a graceful apiserver stop *end* (the response completes); on
``kill=True`` they *break*. The default flags are listed in ``_flags.py`` (and
``_controller_manager.py``); ``etcd_args`` / ``apiserver_args`` /
``controller_manager_args`` override any of them.

``python -m informer.testing.control_plane`` runs one in the foreground (``_cli.py``).
"""

from __future__ import annotations

import base64
import os
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import anyio
import structlog

from ..envtest._locate import CONTROLLER_MANAGER, BinariesNotFound, find_binaries
from ._certs import CertificateAuthority, write_service_account_keys
from ._controller_manager import CONTROLLER_MANAGER_USER, controller_manager_flags
from ._flags import apiserver_flags, etcd_flags, merge_args
from ._process import (
    LOG_TAIL_LINES,
    STOP_GRACE,
    Child,
    Children,
    ControlPlaneError,
    bind_failed,
    etcd_healthy,
    free_ports,
    is_ok,
    post_json,
    tail,
)
from ._state_dir import StateDir
from ._users import ApiClientContext, User, set_kubeconfig_server, user_dir, write_kubeconfig

__all__ = ["ControlPlane", "ControlPlaneError", "User"]

log = structlog.get_logger(__name__)
_T = TypeVar("_T")

ADMIN_USER = "kube-informer-admin"
ADMIN_GROUPS = ("system:masters",)

_BIND_RETRIES = 3  # fresh ports after "address already in use"


class ControlPlane:
    """A running etcd + kube-apiserver pair (+ kube-controller-manager with
    ``controller_manager=True``), as an async context manager.

    ``apiserver_args``, ``etcd_args`` and ``controller_manager_args`` are extra flags
    (``--name=value``, ``--name value`` or ``--flag``); a flag the control plane also sets
    is replaced, not repeated. ``assets_dir`` is the folder holding the binaries (default:
    found as the module docstring says). ``start_timeout`` bounds each start in seconds (from
    spawning etcd to the apiserver's ``/readyz`` green; for ``start_apiserver``, from
    spawning the apiserver). ``state_dir`` keeps the state folder at a fixed path
    instead of a temporary folder: it is created if missing, locked while in use, its
    previous control-plane files (etcd data, certificates, logs) are replaced, and it is
    left in place on stop; a temporary folder is deleted on stop.

    After ``__aenter__``: ``dir``, ``host`` (``https://127.0.0.1:<port>``), ``etcd_url``,
    ``kubeconfig_path`` (admin), ``admin`` (a :class:`User`), ``apiserver_pid``,
    ``etcd_pid`` and ``controller_manager_pid``. One instance is started at most once.
    """

    def __init__(
        self,
        *,
        apiserver_args: Sequence[str] = (),
        etcd_args: Sequence[str] = (),
        assets_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 90.0,
        state_dir: str | os.PathLike[str] | None = None,
        controller_manager: bool = False,
        controller_manager_args: Sequence[str] = (),
    ) -> None:
        self.controller_manager = controller_manager
        self._controller_manager_extra = list(controller_manager_args)
        self._controller_manager_bin = Path()
        self._controller_manager: Child | None = None
        self._apiserver_extra = list(apiserver_args)
        self._etcd_extra = list(etcd_args)
        self._assets_dir = assets_dir
        self.start_timeout = start_timeout
        self._state = StateDir(Path(state_dir).absolute() if state_dir is not None else None)
        self._apiserver_bin = Path()
        self._etcd_bin = Path()
        self._ca: CertificateAuthority | None = None
        self._admin: User | None = None
        self._users: dict[tuple[str, tuple[str, ...]], User] = {}
        self._apiserver_port = 0
        self._etcd_port = 0
        self._etcd_peer_port = 0
        self._apiserver: Child | None = None
        self._etcd: Child | None = None
        self._children = Children()
        self._deadline = 0.0
        self._started = False
        self._stopped = False

    # -- attributes ----------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        """The state folder: certificates, ``kubeconfig``, ``*.log``, ``etcd-data``."""
        return self._require(self._state.path)

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

    @property
    def controller_manager_pid(self) -> int | None:
        """The running kube-controller-manager's pid; ``None`` without one, or stopped."""
        child = self._controller_manager
        return child.pid if child and child.alive() else None

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
        """Start etcd, then kube-apiserver (then kube-controller-manager), and wait until
        each is ready.

        On any failure (or cancellation) everything started so far is stopped before the
        error propagates. Raises :class:`ControlPlaneError`.
        """
        if self._started:
            raise ControlPlaneError("a ControlPlane can be started only once")
        try:
            folder = find_binaries(
                controller_manager=self.controller_manager, assets_dir=self._assets_dir
            )
        except BinariesNotFound as exc:
            raise ControlPlaneError(str(exc)) from None
        self._apiserver_bin, self._etcd_bin = folder / "kube-apiserver", folder / "etcd"
        self._controller_manager_bin = folder / CONTROLLER_MANAGER
        began = time.monotonic()
        self._started = True
        try:
            self._deadline = time.monotonic() + self.start_timeout
            (self._apiserver_port,) = free_ports(1)
            await self._prepare_dir()
            await self._start_etcd()
            await self._start_apiserver_with_retries()
            if self.controller_manager:
                await self._start_controller_manager()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._shutdown()
            raise
        log.info(
            "control_plane.ready",
            host=self.host,
            dir=str(self._state.path),
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
            code = await child.stop(grace=0.0 if kill else STOP_GRACE)
            self._children.forget(child)
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
                await self._children.discard(child)
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
        key = base64.b64encode(b"\0").decode()
        header = await post_json(f"{self.etcd_url}/v3/kv/range", {"key": key})
        revision = int(header["header"]["revision"])
        try:
            await post_json(
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
        """Wait until a child (etcd, kube-apiserver, kube-controller-manager) exits;
        return its name. Meant for a foreground runner that has no restarts.
        """
        self._check_running()
        children = [
            c for c in (self._etcd, self._apiserver, self._controller_manager) if c is not None
        ]
        exited: list[str] = []
        async with anyio.create_task_group() as tg:

            async def watch(child: Child) -> None:
                await child.wait_exited()
                exited.append(child.name)
                tg.cancel_scope.cancel()

            for child in children:
                tg.start_soon(watch, child)
        return exited[0]

    def log_tail(self, name: str, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of ``etcd.log``, ``kube-apiserver.log`` or
        ``kube-controller-manager.log``."""
        return tail(self.dir / f"{name}.log", lines)

    # -- internals -----------------------------------------------------------------------

    def _check_running(self) -> None:
        if not self._started or self._stopped or self._etcd is None:
            raise ControlPlaneError("the control plane is not running")

    async def _prepare_dir(self) -> None:
        folder = self._state.open()
        await anyio.to_thread.run_sync(self._write_certs, folder)
        self._admin = self._new_user(ADMIN_USER, ADMIN_GROUPS, path=folder / "kubeconfig")

    def _write_certs(self, folder: Path) -> None:
        ca = self._ca = CertificateAuthority()
        (folder / "ca.crt").write_bytes(ca.cert_pem)
        ca.issue_serving().write(folder / "apiserver.crt", folder / "apiserver.key")
        write_service_account_keys(folder / "sa.key", folder / "sa.pub")

    def _new_user(self, name: str, groups: tuple[str, ...], path: Path | None = None) -> User:
        folder = self.dir if path is not None else user_dir(self.dir, name, groups)
        folder.mkdir(parents=True, exist_ok=True)
        stem = "admin" if path is not None else "client"
        cert, key = folder / f"{stem}.crt", folder / f"{stem}.key"
        assert self._ca is not None, "certificates are written before any user"
        self._ca.issue_client(name, groups).write(cert, key)
        kubeconfig = path or folder / "kubeconfig"
        write_kubeconfig(
            kubeconfig,
            server=self.host,
            ca=self.dir / "ca.crt",
            user=name,
            cert=cert,
            key=key,
        )
        return User(name=name, groups=groups, kubeconfig_path=kubeconfig)

    async def _start_etcd(self) -> None:
        folder = self.dir
        for attempt in range(_BIND_RETRIES):
            self._etcd_port, self._etcd_peer_port = free_ports(2)
            client = f"http://127.0.0.1:{self._etcd_port}"
            peer = f"http://127.0.0.1:{self._etcd_peer_port}"
            defaults = etcd_flags(folder, client_url=client, peer_url=peer)
            argv = [str(self._etcd_bin), *merge_args(defaults, self._etcd_extra)]
            self._etcd = self._children.spawn("etcd", argv, cwd=folder)
            try:
                await self._wait_ready(self._etcd, f"{client}/health", etcd_healthy)
                return
            except ControlPlaneError:
                if attempt + 1 < _BIND_RETRIES and bind_failed(self._etcd):
                    child, self._etcd = self._etcd, None
                    await self._children.discard(child)
                    continue
                raise

    async def _start_apiserver_with_retries(self) -> None:
        for attempt in range(_BIND_RETRIES):
            (self._apiserver_port,) = free_ports(1)
            self._rewrite_kubeconfigs()
            try:
                await self._start_apiserver()
                return
            except ControlPlaneError:
                child = self._apiserver
                if attempt + 1 < _BIND_RETRIES and child is not None and bind_failed(child):
                    self._apiserver = None
                    await self._children.discard(child)
                    continue
                raise

    async def _start_apiserver(self) -> None:
        folder = self.dir
        defaults = apiserver_flags(folder, etcd_url=self.etcd_url, port=self._apiserver_port)
        argv = [str(self._apiserver_bin), *merge_args(defaults, self._apiserver_extra)]
        self._apiserver = self._children.spawn("kube-apiserver", argv, cwd=folder)
        context = ssl.create_default_context(cafile=str(folder / "ca.crt"))
        context.load_cert_chain(folder / "admin.crt", folder / "admin.key")
        await self._wait_ready(self._apiserver, f"{self.host}/readyz", is_ok, context)

    async def _start_controller_manager(self) -> None:
        folder = self.dir
        name, groups = CONTROLLER_MANAGER_USER
        identity = self.user(name, groups)
        for attempt in range(_BIND_RETRIES):
            (port,) = free_ports(1)
            defaults = controller_manager_flags(
                folder, kubeconfig=identity.kubeconfig_path, port=port
            )
            argv = [
                str(self._controller_manager_bin),
                *merge_args(defaults, self._controller_manager_extra),
            ]
            child = self._controller_manager = self._children.spawn(
                CONTROLLER_MANAGER, argv, cwd=folder
            )
            context = ssl.create_default_context(cafile=str(folder / "ca.crt"))
            try:
                await self._wait_ready(child, f"https://127.0.0.1:{port}/healthz", is_ok, context)
                return
            except ControlPlaneError:
                if attempt + 1 < _BIND_RETRIES and bind_failed(child):
                    self._controller_manager = None
                    await self._children.discard(child)
                    continue
                raise

    def _rewrite_kubeconfigs(self) -> None:
        for user in [self.admin, *self._users.values()]:
            set_kubeconfig_server(user.kubeconfig_path, self.host)

    async def _wait_ready(
        self,
        child: Child,
        url: str,
        ready: Callable[[int, bytes], bool],
        context: ssl.SSLContext | None = None,
    ) -> None:
        await self._children.wait_ready(
            child, url, ready, context, deadline=self._deadline, start_timeout=self.start_timeout
        )

    async def _shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for attr in ("_controller_manager", "_apiserver", "_etcd"):
            child: Child | None = getattr(self, attr)
            if child is None:
                continue
            exited_before = not child.alive()
            code = await child.stop()
            self._children.forget(child)
            if exited_before:
                log.warning(
                    "control_plane.child_died",
                    child=child.name,
                    exit_code=code,
                    log_tail=child.tail(),
                )
        # Anything spawned but not recorded (e.g. a failed start's leftovers).
        await self._children.stop_all()
        self._state.close()
        path = self._state.path
        log.info("control_plane.stopped", dir=str(path) if path else None)
