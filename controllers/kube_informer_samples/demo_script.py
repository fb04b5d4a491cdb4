"""The scripted part of ``python -m kube_informer_samples.demo``: changes to the demo's
objects and what the controllers and the webhooks did about them, one ``[demo]`` line
per step on stdout.

:func:`run_script` runs once the runner serves the samples and their webhooks. In order:

1. waits until the reloader stamped the opted-in Deployments and the inventory exists;
2. edits ``app-config``'s data: ``web`` and ``worker`` roll once, ``legacy`` (it does
   not opt in) is untouched;
3. scales ``web``: the inventory follows;
4. deletes the inventory by hand: it is recreated;
5. creates a ConfigMapMirror of ``app-config`` into namespace ``demo-copy``: the copy
   appears, the mirror's status turns Ready, a ``Synced`` Event is recorded;
6. applies the ConfigMapMirror webhooks' configurations and the CRD configured for its
   conversion (:func:`informer.webhook.webhook_manifests`, pointing at the runner's
   webhook server with the demo's CA), then applies a mirror that targets its own
   namespace until the validating webhook rejects it (kube-apiserver loads new
   configurations asynchronously: an apply right after may be admitted, and is then
   deleted), creates a mirror at ``v1beta1`` and reads it at ``v1alpha1`` (the storage
   version: converted by the conversion webhook, labelled by the defaulting one), and
   waits until the controller copied its source.

Every wait is bounded by :data:`STEP_TIMEOUT` and calls ``alive`` between polls, which
raises :class:`~kube_informer_samples.demo_commands.DemoError` when a child process died.
Writes use the demo's field manager; nothing here reads a cache (there is no informer in
the demo process).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import anyio
import yaml

from informer import ApiError, Client, NotFound, Obj, get_condition, labels_of
from informer.resources import CONFIGMAPS, DEPLOYMENTS, EVENTS
from informer.testing import wait_for_crds
from informer.webhook import ClientConfig, webhook_manifests

from .configmap_mirror import MIRROR_LABEL, MIRRORS
from .configmap_mirror_webhooks import CRD_PATH, MIRRORS_V1BETA1, SOURCE_LABEL, WEBHOOKS
from .configmap_reloader import CONFIG_HASH_ANNOTATION, RELOAD_ANNOTATION
from .demo_commands import DEMO_NAMESPACE, DemoError, config_hash_of, described, inventory, short
from .deployment_inventory import INVENTORY_NAME

__all__ = ["STEP_TIMEOUT", "run_script", "say", "until"]

_T = TypeVar("_T")

STEP_TIMEOUT: Final = 60.0
"""Seconds each awaited step may take (the controllers act within a few)."""
MIRROR_NAME: Final = "app-config-mirror"
MIRROR_TARGET: Final = "demo-copy"
SELF_MIRROR_NAME: Final = "self-mirror"
"""A mirror targeting its own namespace: the validating webhook rejects it."""
BETA_MIRROR_NAME: Final = "feature-flags-mirror"
"""A mirror written at ``v1beta1``, read at ``v1alpha1``."""
WEBHOOKS_NAME: Final = "configmap-mirror"
"""The name of the webhook configurations the demo applies."""
REJECTION: Final = "cannot be mirrored onto itself"
"""In the validating webhook's message for a mirror targeting its own namespace."""


def say(message: str) -> None:
    """One narrative line on stdout."""
    print(f"[demo] {message}", flush=True)


async def until(
    what: str,
    probe: Callable[[], Awaitable[_T | None]],
    alive: Callable[[], None],
    within: float = STEP_TIMEOUT,
) -> _T:
    """Poll ``probe`` until it returns something other than None (bounded by ``within``)."""
    try:
        with anyio.fail_after(within):
            while True:
                alive()
                value = await probe()
                if value is not None:
                    return value
                await anyio.sleep(0.1)
    except TimeoutError:
        raise DemoError(f"timed out after {within:g}s waiting for {what}") from None


# ----------------------------------------------------------------------------- the script


async def run_script(client: Client, alive: Callable[[], None], *, webhooks: ClientConfig) -> None:
    """The scripted changes (module docstring), in order; ``webhooks`` is how the API
    server reaches the runner's webhook server."""

    async def opted_in_hashes() -> dict[str, Obj] | None:
        listing = await client.list(DEPLOYMENTS, namespace=DEMO_NAMESPACE)
        items = {d["metadata"]["name"]: d for d in listing}
        opted = {
            n: d
            for n, d in items.items()
            if (d["metadata"].get("annotations") or {}).get(RELOAD_ANNOTATION) == "true"
        }
        if opted and all(config_hash_of(d) for d in opted.values()):
            return items
        return None

    async def inventory_with(names: set[str]) -> Obj | None:
        inv = await inventory(client)
        return inv if inv is not None and set(inv.get("data") or {}) == names else None

    # 1. The controllers' first actions.
    items = await until("the reloader to stamp the opted-in Deployments", opted_in_hashes, alive)
    for name, d in sorted(items.items()):
        if config_hash_of(d):
            say(
                f"configmap-reloader stamped {DEMO_NAMESPACE}/{name}: "
                f"{CONFIG_HASH_ANNOTATION}={short(config_hash_of(d))} "
                f"(generation {d['metadata']['generation']})"
            )
        else:
            say(f"configmap-reloader left {DEMO_NAMESPACE}/{name} alone (it does not opt in)")
    inv = await until("the inventory", lambda: inventory_with(set(items)), alive)
    say(
        f"deployment-inventory wrote {DEMO_NAMESPACE}/{INVENTORY_NAME} listing "
        f"{', '.join(sorted(inv['data']))} (owners: "
        f"{', '.join(r['name'] for r in inv['metadata'].get('ownerReferences', []))})"
    )

    # 2. Edit a consumed ConfigMap's data: each opted-in consumer rolls once.
    say("scripted change 1: set LOG_LEVEL=debug in ConfigMap demo/app-config")
    before = items
    await client.patch(
        CONFIGMAPS, "app-config", {"data": {"LOG_LEVEL": "debug"}}, namespace=DEMO_NAMESPACE
    )

    async def rolled() -> dict[str, Obj] | None:
        now = await opted_in_hashes()
        if now is None:
            return None
        changed = [
            n
            for n, d in now.items()
            if config_hash_of(d) and config_hash_of(d) != config_hash_of(before[n])
        ]
        opted = [n for n, d in now.items() if config_hash_of(d)]
        return now if sorted(changed) == sorted(opted) else None

    after = await until("the reloader to roll web and worker", rolled, alive)
    for name in sorted(after):
        old, new = before[name], after[name]
        if config_hash_of(new):
            say(
                f"configmap-reloader rolled {DEMO_NAMESPACE}/{name}: {CONFIG_HASH_ANNOTATION} "
                f"{short(config_hash_of(old))} -> {short(config_hash_of(new))} (generation "
                f"{old['metadata']['generation']} -> {new['metadata']['generation']})"
            )
        else:
            say(
                f"{DEMO_NAMESPACE}/{name} consumes app-config but does not opt in: untouched "
                f"(generation {new['metadata']['generation']})"
            )

    # 3. Scale a Deployment (the scale subresource): the inventory follows.
    say("scripted change 2: scale Deployment demo/web to 4 replicas")
    await client.patch(
        DEPLOYMENTS, "web", {"spec": {"replicas": 4}}, namespace=DEMO_NAMESPACE, subresource="scale"
    )

    async def scaled() -> Obj | None:
        inv = await inventory(client)
        entry = yaml.safe_load(((inv or {}).get("data") or {}).get("web", "")) or {}
        return inv if entry.get("replicas") == 4 else None

    inv = await until("the inventory to show 4 replicas of web", scaled, alive)
    say(f"deployment-inventory updated {DEMO_NAMESPACE}/{INVENTORY_NAME}, key web:")
    for line in inv["data"]["web"].splitlines():
        print(f"         {line}", flush=True)

    # 4. Delete the inventory by hand: it is recreated.
    say(f"scripted change 3: delete ConfigMap {DEMO_NAMESPACE}/{INVENTORY_NAME} by hand")
    old_uid = inv["metadata"]["uid"]
    await client.delete(CONFIGMAPS, INVENTORY_NAME, namespace=DEMO_NAMESPACE)

    async def recreated() -> Obj | None:
        inv = await inventory(client)
        return inv if inv is not None and inv["metadata"]["uid"] != old_uid else None

    inv = await until("the inventory to be recreated", recreated, alive)
    say(
        f"deployment-inventory recreated {DEMO_NAMESPACE}/{INVENTORY_NAME} "
        f"(uid {old_uid[:8]}... -> {inv['metadata']['uid'][:8]}...)"
    )

    # 5. A ConfigMapMirror (the operator sample): a copy, a Ready status, an Event.
    await _mirror(client, alive)

    # 6. Its webhooks: a rejected apply, a mirror written at v1beta1 and read at v1alpha1.
    await _install_webhooks(client, webhooks)
    await _rejected_apply(client, alive)
    await _converted_read(client, alive)


async def _mirror(client: Client, alive: Callable[[], None]) -> None:
    say(
        f"scripted change 4: create ConfigMapMirror {DEMO_NAMESPACE}/{MIRROR_NAME} copying "
        f"app-config into namespace {MIRROR_TARGET}"
    )
    namespace: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MIRROR_TARGET}}
    await client.create_or_update(namespace, lambda ns: None)
    spec = {"source": "app-config", "targetNamespaces": [MIRROR_TARGET]}
    mirror: Obj = {
        "apiVersion": "mirror.informer.dev/v1alpha1",
        "kind": "ConfigMapMirror",
        "metadata": {"name": MIRROR_NAME, "namespace": DEMO_NAMESPACE},
        "spec": spec,
    }
    await client.create_or_update(mirror, lambda m: m.update(spec=spec), resource=MIRRORS)

    copy = await until(
        f"the copy of app-config in {MIRROR_TARGET}", lambda: _copy(client, "app-config"), alive
    )
    say(
        f"configmap-mirror copied {DEMO_NAMESPACE}/app-config to {MIRROR_TARGET}/app-config "
        f"(keys {', '.join(sorted(copy.get('data') or {}))})"
    )

    async def ready() -> Obj | None:
        current = await client.get(MIRRORS, MIRROR_NAME, namespace=DEMO_NAMESPACE)
        condition = get_condition(current, "Ready")
        return condition if condition is not None and condition["status"] == "True" else None

    condition = await until("the mirror's Ready condition", ready, alive)
    say(
        f"configmap-mirror set {DEMO_NAMESPACE}/{MIRROR_NAME} status: Ready=True "
        f"({condition['reason']}: {condition.get('message', '')})"
    )

    async def synced_event() -> Obj | None:
        events = await client.list(EVENTS, namespace=DEMO_NAMESPACE)
        for event in events:
            regarding = event.get("regarding") or {}
            if regarding.get("name") == MIRROR_NAME and event.get("reason") == "Synced":
                return event
        return None

    event = await until("the mirror's Synced Event", synced_event, alive)
    say(f"configmap-mirror recorded an Event on the mirror: {event['reason']}: {event['note']}")


async def _copy(client: Client, name: str) -> Obj | None:
    """The mirror's copy of ConfigMap ``name`` in :data:`MIRROR_TARGET`, or None."""
    try:
        cm = await client.get(CONFIGMAPS, name, namespace=MIRROR_TARGET)
    except NotFound:
        return None
    return cm if MIRROR_LABEL in labels_of(cm) else None


async def _install_webhooks(client: Client, webhooks: ClientConfig) -> None:
    """Apply (force) the webhook configurations and the CRD configured for its conversion
    webhook; return once the CRD's versions are served."""
    crd = yaml.safe_load(CRD_PATH.read_text())
    manifests = webhook_manifests(WEBHOOKS, webhooks, name=WEBHOOKS_NAME, crds=[crd])
    for manifest in manifests:
        await client.apply(manifest, force=True)
    configured = [m for m in manifests if m["kind"] == "CustomResourceDefinition"]
    await wait_for_crds(client.api_client, configured, timeout=STEP_TIMEOUT)
    say(
        f"the runner serves the configmap-mirror webhooks at {webhooks.url}; applied "
        f"{', '.join(described(m) for m in manifests)} (v1beta1 served through the "
        "conversion webhook)"
    )


async def _rejected_apply(client: Client, alive: Callable[[], None]) -> None:
    say(
        f"scripted change 5: apply ConfigMapMirror {DEMO_NAMESPACE}/{SELF_MIRROR_NAME} "
        f"copying app-config into its own namespace {DEMO_NAMESPACE}"
    )
    spec = {"source": "app-config", "targetNamespaces": [DEMO_NAMESPACE]}
    own: Obj = {
        "apiVersion": MIRRORS.api_version,
        "kind": "ConfigMapMirror",
        "metadata": {"name": SELF_MIRROR_NAME, "namespace": DEMO_NAMESPACE},
        "spec": spec,
    }
    admitted = False

    async def rejected() -> ApiError | None:
        nonlocal admitted
        try:
            await client.apply(own, force=True, resource=MIRRORS)
        except ApiError as exc:
            return exc if REJECTION in exc.message else None  # else: not called yet
        admitted = True  # the configuration was not loaded yet: apply again (an update)
        return None

    error = await until("the validating webhook to reject the mirror", rejected, alive)
    say(f"the validating webhook rejected it ({error.status}): {error.message}")
    if admitted:
        await client.delete(MIRRORS, SELF_MIRROR_NAME, namespace=DEMO_NAMESPACE, missing_ok=True)


async def _converted_read(client: Client, alive: Callable[[], None]) -> None:
    source = "feature-flags"
    beta: Obj = {
        "apiVersion": MIRRORS_V1BETA1.api_version,
        "kind": "ConfigMapMirror",
        "metadata": {"name": BETA_MIRROR_NAME, "namespace": DEMO_NAMESPACE},
        "spec": {"source": {"name": source}, "targets": {"namespaces": [MIRROR_TARGET]}},
    }
    say(
        f"scripted change 6: create ConfigMapMirror {DEMO_NAMESPACE}/{BETA_MIRROR_NAME} at "
        f"{MIRRORS_V1BETA1.api_version}, spec {json.dumps(beta['spec'])}"
    )
    created = await client.create(beta, resource=MIRRORS_V1BETA1)
    say(f"created; the answer at {created['apiVersion']}: spec {json.dumps(created['spec'])}")
    stored = await client.get(MIRRORS, BETA_MIRROR_NAME, namespace=DEMO_NAMESPACE)
    label = labels_of(stored).get(SOURCE_LABEL)
    defaulted = f", labelled {SOURCE_LABEL}={label} by the defaulting webhook" if label else ""
    say(
        f"read at {stored['apiVersion']} (the storage version, converted by the conversion "
        f"webhook): spec {json.dumps(stored['spec'])}{defaulted}"
    )
    await until(f"the copy of {source} in {MIRROR_TARGET}", lambda: _copy(client, source), alive)
    say(
        f"configmap-mirror copied {DEMO_NAMESPACE}/{source} to {MIRROR_TARGET}/{source} "
        "(it reads mirrors at v1alpha1, whatever version wrote them)"
    )
