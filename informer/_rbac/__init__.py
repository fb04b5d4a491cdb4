"""RBAC from code: what a controller may do, declared on its class, checked at run time,
and the Role or ClusterRole generated from it (kubebuilder's ``+kubebuilder:rbac``
markers, without markers).

The public home is :mod:`informer.rbac` (and ``python -m informer.rbac``).

- ``access.py``: ``Access``, one declared grant (a resource, verbs, a subresource, names);
- ``guard.py``: ``AccessGuard``, the run-time check of a controller's client calls
  against its declarations (strict in tests, a warning in production);
- ``needs.py``: what a set of controllers needs (their watches, writes, reads, Events,
  the Leases of leader election and sharding), found by building them offline;
- ``rules.py``: those needs as RBAC rules and Role/ClusterRole manifests.
"""
