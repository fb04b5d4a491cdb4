"""The demo's sub-commands (``python -m kube_informer_samples.demo status | set-config | scale``)
and the reads of the demo's state the scripted run shares with them.

Each sub-command opens its own ApiClient from ``--kubeconfig`` (default ``$KUBECONFIG``,
then ``~/.kube/config``: the demo prints the ``export KUBECONFIG=...`` to use), prints
to stdout and raises :class:`DemoError` (or an ``InformerError``) on failure;
:func:`kube_informer_samples.demo.main` turns those into one ``error:`` line and exit code 1.
"""

from __future__ import annotations

from typing import Final

from informer import Client, NotFound, Obj, new_api_client
from informer.resources import CONFIGMAPS, DEPLOYMENTS

from .configmap_reloader import CONFIG_HASH_ANNOTATION, RELOAD_ANNOTATION
from .deployment_inventory import INVENTORY_NAME

__all__ = [
    "DEMO_NAMESPACE",
    "FIELD_MANAGER",
    "DemoError",
    "config_hash_of",
    "described",
    "inventory",
    "scale",
    "set_config",
    "short",
    "show_status",
]

DEMO_NAMESPACE: Final = "demo"
FIELD_MANAGER: Final = "kube-informer-demo"


class DemoError(Exception):
    """A step of the demo failed; printed as one ``error:`` line, exit code 1."""


async def inventory(client: Client) -> Obj | None:
    """The demo's inventory ConfigMap (from the API), or None when there is none."""
    try:
        return await client.get(CONFIGMAPS, INVENTORY_NAME, namespace=DEMO_NAMESPACE)
    except NotFound:
        return None


def described(obj: Obj) -> str:
    """``kind/namespace/name`` (``kind/name`` for a cluster-scoped object), as kubectl."""
    meta = obj["metadata"]
    where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
    return f"{obj['kind'].lower()}/{where}"


def config_hash_of(deployment: Obj | None) -> str | None:
    if deployment is None:
        return None
    template_meta = deployment["spec"]["template"].get("metadata") or {}
    value = (template_meta.get("annotations") or {}).get(CONFIG_HASH_ANNOTATION)
    return value if isinstance(value, str) else None


def short(value: str | None) -> str:
    return "(none)" if value is None else value[:12] + "..."


async def show_status(kubeconfig: str | None) -> None:
    async with await new_api_client(kubeconfig=kubeconfig) as api:
        client = Client(api, field_manager=FIELD_MANAGER)
        listing = await client.list(DEPLOYMENTS, namespace=DEMO_NAMESPACE)
        print(f"Deployments in {DEMO_NAMESPACE}:")
        for d in sorted(listing, key=lambda d: d["metadata"]["name"]):
            opted = (d["metadata"].get("annotations") or {}).get(RELOAD_ANNOTATION) == "true"
            print(
                f"  {d['metadata']['name']:<10} replicas={d['spec'].get('replicas')} "
                f"generation={d['metadata'].get('generation')} "
                f"reload={'yes' if opted else 'no '} "
                f"{CONFIG_HASH_ANNOTATION}={short(config_hash_of(d))}"
            )
        inv = await inventory(client)
        if inv is None:
            print(f"ConfigMap {DEMO_NAMESPACE}/{INVENTORY_NAME}: absent")
            return
        print(f"ConfigMap {DEMO_NAMESPACE}/{INVENTORY_NAME}:")
        for key, text in sorted((inv.get("data") or {}).items()):
            print(f"  {key}:")
            for line in text.splitlines():
                print(f"    {line}")


async def set_config(kubeconfig: str | None, pairs: list[str]) -> None:
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DemoError(f"expected KEY=VALUE, got {pair!r}")
        data[key] = value
    async with await new_api_client(kubeconfig=kubeconfig) as api:
        client = Client(api, field_manager=FIELD_MANAGER)
        await client.patch(CONFIGMAPS, "app-config", {"data": data}, namespace=DEMO_NAMESPACE)
    print(f"ConfigMap {DEMO_NAMESPACE}/app-config: set {', '.join(sorted(data))}")


async def scale(kubeconfig: str | None, name: str, replicas: int) -> None:
    async with await new_api_client(kubeconfig=kubeconfig) as api:
        client = Client(api, field_manager=FIELD_MANAGER)
        scale = {"spec": {"replicas": replicas}}
        await client.patch(DEPLOYMENTS, name, scale, namespace=DEMO_NAMESPACE, subresource="scale")
    print(f"Deployment {DEMO_NAMESPACE}/{name}: replicas={replicas}")
