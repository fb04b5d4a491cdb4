"""The command lines of the control plane's etcd and kube-apiserver.

:func:`etcd_flags` and :func:`apiserver_flags` are the defaults; ``ControlPlane``'s
``etcd_args`` / ``apiserver_args`` override any of them through :func:`merge_args` (a
flag given again replaces the default, it is not repeated).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["SERVICE_ACCOUNT_ISSUER", "apiserver_flags", "etcd_flags", "merge_args"]

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


def etcd_flags(folder: Path, *, client_url: str, peer_url: str) -> list[str]:
    """A single-member etcd keeping its data in ``folder/etcd-data``, without fsync."""
    return [
        "--name=default",
        f"--data-dir={folder / 'etcd-data'}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=default={peer_url}",
        "--unsafe-no-fsync=true",
    ]


def apiserver_flags(folder: Path, *, etcd_url: str, port: int) -> list[str]:
    """kube-apiserver on ``127.0.0.1:port`` with the certificates, CA and service-account
    keys written in ``folder``; RBAC; no ServiceAccount admission."""
    return [
        f"--etcd-servers={etcd_url}",
        f"--cert-dir={folder / 'apiserver-certs'}",
        f"--tls-cert-file={folder / 'apiserver.crt'}",
        f"--tls-private-key-file={folder / 'apiserver.key'}",
        f"--client-ca-file={folder / 'ca.crt'}",
        f"--secure-port={port}",
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
