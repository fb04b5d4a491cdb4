"""Leader election on a ``coordination.k8s.io`` Lease, as client-go's
``tools/leaderelection``: the elector for programs of their own, and the configuration a
:class:`~informer.Manager` takes.
"""

from __future__ import annotations

from ._exceptions import LeaderElectionLost as LeaderElectionLost
from ._leaderelection.elector import LeaderElector as LeaderElector
from ._manager.leader import LeaderElectionConfig as LeaderElectionConfig

__all__ = [
    "LeaderElectionConfig",
    "LeaderElectionLost",
    "LeaderElector",
]
