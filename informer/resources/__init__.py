"""The resources: :class:`Resource` (group, version, plural, kind, scope) and constants for
the built-in kinds controllers most often watch. ``Resource`` is also exported by
:mod:`informer`.
"""

from __future__ import annotations

from .._meta.resource import CONFIGMAPS as CONFIGMAPS
from .._meta.resource import CRONJOBS as CRONJOBS
from .._meta.resource import CUSTOM_RESOURCE_DEFINITIONS as CUSTOM_RESOURCE_DEFINITIONS
from .._meta.resource import DAEMONSETS as DAEMONSETS
from .._meta.resource import DEPLOYMENTS as DEPLOYMENTS
from .._meta.resource import EVENTS as EVENTS
from .._meta.resource import JOBS as JOBS
from .._meta.resource import LEASES as LEASES
from .._meta.resource import NAMESPACES as NAMESPACES
from .._meta.resource import NODES as NODES
from .._meta.resource import PODS as PODS
from .._meta.resource import REPLICASETS as REPLICASETS
from .._meta.resource import SECRETS as SECRETS
from .._meta.resource import SERVICE_ACCOUNTS as SERVICE_ACCOUNTS
from .._meta.resource import SERVICES as SERVICES
from .._meta.resource import STATEFULSETS as STATEFULSETS
from .._meta.resource import Resource as Resource

__all__ = [
    "CONFIGMAPS",
    "CRONJOBS",
    "CUSTOM_RESOURCE_DEFINITIONS",
    "DAEMONSETS",
    "DEPLOYMENTS",
    "EVENTS",
    "JOBS",
    "LEASES",
    "NAMESPACES",
    "NODES",
    "PODS",
    "REPLICASETS",
    "SECRETS",
    "SERVICES",
    "SERVICE_ACCOUNTS",
    "STATEFULSETS",
    "Resource",
]
