"""Testing tools for kube-informer and for controllers built on it.

- :class:`ControlPlane`: a real kube-apiserver + etcd on loopback (envtest for Python),
  with restart, etcd compaction and non-admin identities, and optionally a
  kube-controller-manager collecting garbage (``controller_manager=True``); ``python -m
  informer.testing.control_plane`` runs one in the foreground.
- :mod:`informer.testing.envtest`: ``python -m informer.testing.envtest install`` builds
  (or finds) the binaries for a supported Kubernetes version into the user cache, where
  the kit finds them with no environment variable.
- :class:`FakeListerWatcher`: an in-memory ListerWatcher with fault injection, for the
  edge cases a real server will not produce on demand.
- :class:`TcpProxy`: a loopback proxy to cut or stall a client's connections.
- The pytest plugin (``informer.testing.pytest_plugin``, registered as an entry point,
  opt-in: ``kube_informer = true`` in a suite's pytest configuration, or a test using its
  fixtures) provides the ``control_plane``, ``gc_control_plane``, ``api_client`` and
  ``namespace`` fixtures, fails a test whose handlers or reconciles raised, and keeps
  debug logs quiet.
- The operator testing kit: :func:`install_crds` (CRDs applied and served; :func:`wait_for_crds`),
  :func:`run_controllers` (controllers in-process through a Manager),
  :func:`serve_webhooks` (a Manager's webhooks called by the control plane, with a
  generated CA; :func:`write_webhook_certificates` for a server run elsewhere) and
  :func:`eventually` (assertions on asynchronous state).

Names are imported lazily, so that loading the pytest plugin stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._crds import install_crds as install_crds
    from ._crds import wait_for_crds as wait_for_crds
    from ._eventually import eventually as eventually
    from ._fake import FakeListerWatcher as FakeListerWatcher
    from ._proxy import TcpProxy as TcpProxy
    from ._run_controllers import run_controllers as run_controllers
    from ._webhooks import ServedWebhooks as ServedWebhooks
    from ._webhooks import serve_webhooks as serve_webhooks
    from ._webhooks import write_webhook_certificates as write_webhook_certificates
    from .control_plane._plane import ControlPlane as ControlPlane
    from .control_plane._plane import ControlPlaneError as ControlPlaneError
    from .control_plane._plane import User as User

__all__ = [
    "ControlPlane",
    "ControlPlaneError",
    "FakeListerWatcher",
    "ServedWebhooks",
    "TcpProxy",
    "User",
    "eventually",
    "install_crds",
    "run_controllers",
    "serve_webhooks",
    "wait_for_crds",
    "write_webhook_certificates",
]

_WHERE = {
    "ControlPlane": ".control_plane",
    "ControlPlaneError": ".control_plane",
    "User": ".control_plane",
    "FakeListerWatcher": "._fake",
    "TcpProxy": "._proxy",
    "eventually": "._eventually",
    "install_crds": "._crds",
    "run_controllers": "._run_controllers",
    "ServedWebhooks": "._webhooks",
    "serve_webhooks": "._webhooks",
    "write_webhook_certificates": "._webhooks",
    "wait_for_crds": "._crds",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
