"""Leader election on a ``coordination.k8s.io`` Lease, as client-go's
``tools/leaderelection``: the elector for programs of their own, its timings, and the
configuration a :class:`~informer.Manager` takes.
"""

from __future__ import annotations

from .._exceptions import LeaderElectionLost as LeaderElectionLost
from .._leaderelection.config import LeaderElectionConfig as LeaderElectionConfig
from .._leaderelection.elector import LeaderElector as LeaderElector
from .._leaderelection.timings import LeaseTimings as LeaseTimings

__all__ = [
    "LeaderElectionConfig",
    "LeaderElectionLost",
    "LeaderElector",
    "LeaseTimings",
]
