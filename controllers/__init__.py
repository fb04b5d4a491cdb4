"""Sample controllers: the ConfigMap reloader, the Deployment inventory, and the
ConfigMapMirror operator (a custom resource: install ``controllers/crds/`` first).

``python -m informer.run`` finds them through their entry points (group
``kube_informer.controllers`` in ``pyproject.toml``) and runs them all, or those chosen
with ``--controllers``; it never imports this package by name. ``SAMPLE_CONTROLLERS``
maps each name to its class, for programs that run them with an ``informer.Manager``.
See each module's docstring for its contract: :mod:`controllers.configmap_reloader`,
:mod:`controllers.deployment_inventory`, :mod:`controllers.configmap_mirror`.
"""

from __future__ import annotations

from informer import Controller

from .configmap_mirror import ConfigMapMirror
from .configmap_reloader import ConfigMapReloader
from .deployment_inventory import DeploymentInventory

__all__ = ["SAMPLE_CONTROLLERS", "ConfigMapMirror", "ConfigMapReloader", "DeploymentInventory"]

SAMPLE_CONTROLLERS: dict[str, type[Controller]] = {
    ConfigMapMirror.name: ConfigMapMirror,
    ConfigMapReloader.name: ConfigMapReloader,
    DeploymentInventory.name: DeploymentInventory,
}
"""Controller name -> class (the names are also the entry-point names), by name."""
