"""Sample controllers: the ConfigMap reloader, the Deployment inventory, and the
ConfigMapMirror operator (a custom resource: install ``crds/`` first).

This is the distribution ``kube-informer-samples`` (``controllers/pyproject.toml`` in the
kube-informer repository), apart from the library so that ``pip install kube-informer``
puts only ``informer`` on the import path. ``python -m informer.run`` finds the samples
through their entry points, never by importing this package by name: the reloader and
the inventory under ``kube_informer.controllers`` (run when no target is given), the
mirror under ``kube_informer.controllers.opt_in`` (run only when named with
``--controllers``, as it needs its CRD). ``SAMPLE_CONTROLLERS`` maps each name to its
class, for programs that run them with an ``informer.Manager``. See each module's
docstring for its contract: :mod:`kube_informer_samples.configmap_reloader`,
:mod:`kube_informer_samples.deployment_inventory`,
:mod:`kube_informer_samples.configmap_mirror`.
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
