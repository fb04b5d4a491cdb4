"""Sample controllers: the ConfigMap reloader and the Deployment inventory.

``SAMPLE_CONTROLLERS`` maps each controller's name to its class; ``python -m informer.run``
runs them all (or those chosen with ``--controllers``). See each module's docstring for
its contract: :mod:`controllers.configmap_reloader`, :mod:`controllers.deployment_inventory`.
"""

from __future__ import annotations

from informer import Controller

from .configmap_reloader import ConfigMapReloader
from .deployment_inventory import DeploymentInventory

__all__ = ["SAMPLE_CONTROLLERS", "ConfigMapReloader", "DeploymentInventory"]

SAMPLE_CONTROLLERS: dict[str, type[Controller]] = {
    ConfigMapReloader.name: ConfigMapReloader,
    DeploymentInventory.name: DeploymentInventory,
}
"""Controller name -> class, in the order the runner starts them."""
