"""kube-controller-manager beside the control plane: ``ControlPlane(controller_manager=True)``.

This goes beyond controller-runtime's envtest, which runs no controller-manager
(controller-runtime#880): there, owner references never cascade and a deleted namespace
stays ``Terminating`` forever, so an operator built on owner references and finalizers
cannot test its deletion paths. Here kube-controller-manager runs the controllers of
:data:`CONTROLLERS` only, the ones an operator's tests need and nothing that would act on
workloads the way a cluster with nodes does (no Deployment, ReplicaSet or Job
controller: no Pods appear):

- ``garbage-collector-controller``: deleting an owner deletes its dependents, in the
  background or in the foreground (``propagationPolicy``), or orphans them;
- ``namespace-controller``: a deleted namespace's objects are deleted (their finalizers
  honoured), then the namespace goes away;
- ``serviceaccount-controller``: every namespace gets its ``default`` ServiceAccount, as
  in a cluster (RBAC subjects and Pod specs refer to it);
- ``serviceaccount-token-controller``: a Secret of type
  ``kubernetes.io/service-account-token`` gets its token, CA and namespace filled in.

It runs as a ``system:masters`` identity (no per-controller service accounts), without
leader election, serving its health endpoints on ``127.0.0.1`` with the control plane's
serving certificate; ready when ``/healthz`` answers 200. The garbage collector starts
once its informers synced, and notices custom resources defined later on its discovery
resync (every 30 s), as in a cluster. ``controller_manager_args`` override any flag of
:func:`controller_manager_flags`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["CONTROLLERS", "CONTROLLER_MANAGER_USER", "controller_manager_flags"]

CONTROLLERS: Final = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
)
"""The controllers kube-controller-manager runs (see the module docstring for why)."""

CONTROLLER_MANAGER_USER: Final = ("system:kube-controller-manager", ("system:masters",))
"""Its identity: the usual user name, in the admin group."""


def controller_manager_flags(folder: Path, *, kubeconfig: Path, port: int) -> list[str]:
    """kube-controller-manager with :data:`CONTROLLERS`, talking to the apiserver through
    ``kubeconfig``, serving ``/healthz`` on ``127.0.0.1:port``."""
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--controllers={','.join(CONTROLLERS)}",
        "--leader-elect=false",
        "--use-service-account-credentials=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={folder / 'controller-manager-certs'}",
        f"--tls-cert-file={folder / 'apiserver.crt'}",
        f"--tls-private-key-file={folder / 'apiserver.key'}",
        f"--service-account-private-key-file={folder / 'sa.key'}",
        f"--root-ca-file={folder / 'ca.crt'}",
    ]
