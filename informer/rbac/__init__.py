"""RBAC from code (kubebuilder's ``+kubebuilder:rbac`` markers, without markers).

A controller declares what it writes on its class (``writes``, and ``reads`` for reads
of resources it does not watch) as :class:`Access` grants; its watches say what it
reads. ``python -m informer.rbac generate module:Controller [...]`` writes the Role or
ClusterRole those need (Events, and the Leases of ``--leader-elect`` / ``--shard``
included), ``--check`` in CI. At run time the controller's client checks every call
against the declarations: :class:`~informer.rbac.UndeclaredAccess` in strict mode (what the
pytest plugin turns on), a logged warning otherwise (:func:`set_access_mode`).
Guide: docs/guides/rbac.md.
"""

from .._exceptions import UndeclaredAccess as UndeclaredAccess
from .._rbac.access import Access as Access
from .._rbac.guard import AccessMode as AccessMode
from .._rbac.guard import access_mode as access_mode
from .._rbac.guard import set_access_mode as set_access_mode
from .._rbac.needs import Need as Need
from .._rbac.needs import controller_needs as controller_needs
from .._rbac.needs import lease_needs as lease_needs
from .._rbac.rules import policy_rules as policy_rules
from .._rbac.rules import role_documents as role_documents

__all__ = [
    "Access",
    "AccessMode",
    "Need",
    "UndeclaredAccess",
    "access_mode",
    "controller_needs",
    "lease_needs",
    "policy_rules",
    "role_documents",
    "set_access_mode",
]
