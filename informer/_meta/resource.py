"""``Resource``: which kind of object an informer lists and watches."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Resource:
    """A REST resource by group, version and plural (``group=""`` is the core group).

    >>> Resource("apps", "v1", "deployments", kind="Deployment").api_prefix
    '/apis/apps/v1'
    """

    group: str
    version: str
    plural: str
    kind: str = ""
    namespaced: bool = True

    @property
    def api_prefix(self) -> str:
        """``/api/v1`` for the core group, ``/apis/<group>/<version>`` otherwise."""
        if not self.group:
            return f"/api/{self.version}"
        return f"/apis/{self.group}/{self.version}"

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` of objects of this resource (``v1``, ``apps/v1``)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``plural.group`` as RBAC and error messages spell it (``deployments.apps``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(
        self,
        name: str | None = None,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The collection path, or the object's when ``name`` is given, namespaced when
        ``namespace`` is given (ignored for a cluster-scoped resource); ``subresource``
        (``"status"``, ``"scale"``) needs a ``name``.

        >>> DEPLOYMENTS.path("web", namespace="default", subresource="scale")
        '/apis/apps/v1/namespaces/default/deployments/web/scale'
        """
        p = self.api_prefix
        if namespace is not None and self.namespaced:
            p += f"/namespaces/{namespace}"
        p += f"/{self.plural}"
        if name is not None:
            p += f"/{name}"
        if subresource is not None:
            if name is None:
                raise ValueError(f"subresource {subresource!r} needs an object name")
            p += f"/{subresource}"
        return p


# Well-known resources (the informer factory and the samples use these).
PODS = Resource("", "v1", "pods", kind="Pod")
SERVICES = Resource("", "v1", "services", kind="Service")
CONFIGMAPS = Resource("", "v1", "configmaps", kind="ConfigMap")
SECRETS = Resource("", "v1", "secrets", kind="Secret")
NAMESPACES = Resource("", "v1", "namespaces", kind="Namespace", namespaced=False)
NODES = Resource("", "v1", "nodes", kind="Node", namespaced=False)
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", kind="ServiceAccount")
EVENTS = Resource("events.k8s.io", "v1", "events", kind="Event")
DEPLOYMENTS = Resource("apps", "v1", "deployments", kind="Deployment")
REPLICASETS = Resource("apps", "v1", "replicasets", kind="ReplicaSet")
STATEFULSETS = Resource("apps", "v1", "statefulsets", kind="StatefulSet")
DAEMONSETS = Resource("apps", "v1", "daemonsets", kind="DaemonSet")
JOBS = Resource("batch", "v1", "jobs", kind="Job")
CRONJOBS = Resource("batch", "v1", "cronjobs", kind="CronJob")
LEASES = Resource("coordination.k8s.io", "v1", "leases", kind="Lease")
CUSTOM_RESOURCE_DEFINITIONS = Resource(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    kind="CustomResourceDefinition",
    namespaced=False,
)
