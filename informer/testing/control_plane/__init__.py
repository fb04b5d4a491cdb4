"""A local control plane for tests: a real etcd and a real kube-apiserver (envtest for
Python), and with ``controller_manager=True`` a real kube-controller-manager collecting
garbage.

``python -m informer.testing.control_plane`` runs one in the foreground; ``python -m
informer.testing.envtest install`` gets the binaries.
"""

from ._plane import ControlPlane as ControlPlane
from ._process import ControlPlaneError as ControlPlaneError
from ._users import User as User

__all__ = ["ControlPlane", "ControlPlaneError", "User"]
