"""The test control plane's binaries, without a checkout (setup-envtest for Python).

::

    python -m informer.testing.envtest install            # the pinned Kubernetes version
    python -m informer.testing.envtest install --k8s 1.33 # another supported one
    python -m informer.testing.envtest path               # where the testing kit looks
    python -m informer.testing.envtest versions           # the supported versions

``install`` builds kube-apiserver, etcd and kube-controller-manager from Go modules (the
Go sources and each release's ``go.mod``/``go.sum`` ship in this package, under ``go/``)
into the user cache, ``~/.cache/kube-informer/control-plane/<release>/``, printing
progress on stderr and the folder as the last line of stdout. Nothing needs configuring
afterwards: :class:`~informer.testing.ControlPlane` and the pytest plugin find the
binaries in ``$KUBEBUILDER_ASSETS``, the user cache, a checkout's ``.cache/control-plane``,
then setup-envtest's folder (:mod:`._locate`). Supported: Kubernetes 1.33 to 1.36
(:data:`RELEASES`).
"""

from ._locate import BinariesNotFound as BinariesNotFound
from ._locate import candidates as candidates
from ._locate import find_binaries as find_binaries
from ._locate import user_cache_root as user_cache_root
from ._versions import PINNED as PINNED
from ._versions import RELEASES as RELEASES
from ._versions import Release as Release
from ._versions import release as release

__all__ = [
    "PINNED",
    "RELEASES",
    "BinariesNotFound",
    "Release",
    "candidates",
    "find_binaries",
    "release",
    "user_cache_root",
]
