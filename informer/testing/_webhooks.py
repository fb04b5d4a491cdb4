"""``serve_webhooks``: a Manager's webhooks served to the test control plane, in one call.

::

    manager = Manager(api_client, namespaces=[namespace])
    manager.add_webhook(ValidatingWebhook(MIRRORS, MirrorValidator(), name="vmirror.example.com"))
    async with serve_webhooks(manager) as served:   # the Manager runs inside the block
        ...                                         # kube-apiserver calls the webhooks

What it does, in order (controller-runtime envtest's ``WebhookInstallOptions``):

1. generates a CA and a serving certificate for ``127.0.0.1`` signed by it (a private
   folder, removed on exit) and points the Manager's webhook server at it, on a free
   loopback port (the test control plane's kube-apiserver reaches ``127.0.0.1``);
2. starts the Manager (``async with manager``);
3. installs a ValidatingWebhookConfiguration and a MutatingWebhookConfiguration of the
   admission webhooks (:func:`~informer.webhook.webhook_configurations`), calling
   ``https://127.0.0.1:<port>/<path>`` with the CA as ``caBundle``. Each webhook is
   limited to the Manager's namespaces (unless it watches all of them) by a
   ``namespaceSelector`` on ``kubernetes.io/metadata.name``, so that tests sharing the
   control plane never meet another test's webhooks;
4. waits until kube-apiserver calls them: each configuration carries a probe webhook
   denying ConfigMaps labelled for it, and a dry-run create of such a ConfigMap is
   repeated until the probe's denial comes back (the API server loads configurations
   asynchronously: a create right after installing one may not be checked yet);
5. configures each conversion webhook's CRD (:func:`~informer.webhook.configure_crd`):
   a definition given in ``crds`` is installed configured (so its conversion calls the
   webhook from its first object on); one already in the cluster is updated (and put
   back as it was on exit); then waits until every served version is served
   (:func:`~informer.testing.wait_for_crds`).

On exit the configurations are deleted and the CRDs it updated restored before the
Manager stops. :class:`ServedWebhooks` gives the URL, the CA and
:meth:`ServedWebhooks.rotate_certificate` (a new serving certificate from the same CA,
written over the old one, as cert-manager renews one).
"""

from __future__ import annotations

import copy
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio

from .._client.client import Client
from .._exceptions import InformerError, NotFound
from .._http.tls import CERT_NAME, KEY_NAME
from .._manager.manager import Manager
from .._meta.resource import CONFIGMAPS, CUSTOM_RESOURCE_DEFINITIONS, Resource
from .._meta.types import Obj
from .._rest.request import request_json
from .._webhook.admission import Denied, ValidatingWebhook
from .._webhook.base import Webhook
from .._webhook.configuration import ClientConfig, configure_crd, webhook_configurations
from .._webhook.conversion import ConversionWebhook
from .._webhook.review import AdmissionRequest
from .._webhook.server import WebhookServer
from ._crds import CrdSource, load_crds, wait_for_crds
from ._eventually import eventually
from .control_plane._certs import CertificateAuthority

__all__ = ["ServedWebhooks", "serve_webhooks", "write_webhook_certificates"]

PROBE_LABEL: Final = "webhooks.informer.dev/probe"
PROBE_PATH: Final = "/informer-testing-probe"
_PROBE_MESSAGE: Final = "kube-informer testing probe"
_ADMISSION = Resource("admissionregistration.k8s.io", "v1", "", namespaced=False)
_HOSTS: Final = ("127.0.0.1", "localhost")


def write_webhook_certificates(
    folder: str | os.PathLike[str], hosts: Iterable[str] = _HOSTS
) -> bytes:
    """A fresh CA and a serving certificate for ``hosts`` signed by it, written into
    ``folder`` as ``tls.crt`` and ``tls.key`` (a webhook server's ``cert_dir``); returns
    the CA certificate (PEM), the ``caBundle`` of the configurations. For a webhook
    server run outside a cluster (a runner child, ``make run``); :func:`serve_webhooks`
    does this itself."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority("kube-informer-webhook-ca")
    ca.issue_serving(list(hosts)).write(path / CERT_NAME, path / KEY_NAME)
    return ca.cert_pem


def _deny_probe(request: AdmissionRequest) -> None:
    raise Denied(f"{_PROBE_MESSAGE} {request.name}", code=409)


@dataclass
class ServedWebhooks:
    """What :func:`serve_webhooks` set up (see its module docstring)."""

    manager: Manager
    url: str
    ca_pem: bytes
    cert_dir: Path
    configurations: list[Obj]
    crds: list[Obj] = field(default_factory=list)
    _ca: CertificateAuthority | None = field(default=None, repr=False)

    @property
    def server(self) -> WebhookServer:
        server = self.manager.webhook_server
        assert server is not None
        return server

    @property
    def port(self) -> int:
        port = self.server.port
        assert port is not None
        return port

    def rotate_certificate(self, *, check_interval: float = 0.2) -> bytes:
        """Write a new serving certificate and key (same CA) over the old ones and make
        the server look for changes every ``check_interval`` seconds; returns the new
        certificate (PEM). Connections opened after the server noticed use it."""
        certificates = self.server.certificates
        assert self._ca is not None and certificates is not None
        certificates.check_interval = check_interval
        pair = self._ca.issue_serving(_HOSTS)
        pair.write(self.cert_dir / CERT_NAME, self.cert_dir / KEY_NAME)
        return pair.cert_pem


def _scoped(entry: Obj, namespaces: list[str]) -> Obj:
    """``entry`` also limited to ``namespaces`` (``kubernetes.io/metadata.name``)."""
    selector = copy.deepcopy(entry.get("namespaceSelector") or {})
    expressions = selector.setdefault("matchExpressions", [])
    expressions.append(
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}
    )
    entry["namespaceSelector"] = selector
    return entry


def _probe_entry(configuration: str, client_config: ClientConfig) -> Obj:
    return {
        "name": "probe.webhooks.informer.dev",
        "admissionReviewVersions": ["v1"],
        "clientConfig": client_config.for_path(PROBE_PATH),
        "rules": [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["configmaps"],
                "operations": ["CREATE"],
                "scope": "*",
            }
        ],
        "objectSelector": {"matchLabels": {PROBE_LABEL: configuration}},
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "timeoutSeconds": 5,
    }


async def _probe(api_client: Any, configuration: str, within: float) -> None:
    """Until kube-apiserver calls the probe of ``configuration`` (step 4)."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"generateName": "probe-", "labels": {PROBE_LABEL: configuration}},
    }

    async def denied() -> bool:
        try:
            await request_json(
                api_client,
                "POST",
                CONFIGMAPS.path(namespace="default"),
                query={"dryRun": "All"},
                body=body,
            )
        except InformerError as exc:
            if _PROBE_MESSAGE in str(exc):
                return True
            raise AssertionError(f"{configuration}: the probe was not called yet: {exc}") from exc
        raise AssertionError(f"{configuration}: the probe was not called yet")

    await eventually(denied, timeout=within)  # type: ignore[arg-type]  # T | Awaitable[T] meets a coroutine function


@asynccontextmanager
async def serve_webhooks(
    manager: Manager,
    *,
    crds: CrdSource | Iterable[CrdSource] = (),
    namespaces: Iterable[str] | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 - bounds the setup
) -> AsyncIterator[ServedWebhooks]:
    """Serve ``manager``'s webhooks to its cluster (module docstring) and run the Manager
    inside the block. ``manager`` must be built with an ``api_client`` (the test's) and
    not started; ``namespaces`` overrides the namespaces the admission webhooks are
    limited to (default: the Manager's; ``[]``: none, every namespace); ``crds`` are the
    definitions of the conversion webhooks' CRDs to install. ``TimeoutError`` when the
    API server does not call the webhooks within ``timeout`` seconds."""
    api = manager.api_client
    scope = (
        list(namespaces)
        if namespaces is not None
        else [ns for ns in manager.namespaces if ns is not None]
    )
    given = {c["metadata"]["name"]: c for c in load_crds(crds) if crds != ()}
    hooks: list[Webhook] = manager.webhooks
    tag = secrets.token_hex(4)
    ca = CertificateAuthority("kube-informer-webhook-test-ca")
    with tempfile.TemporaryDirectory(prefix="kube-informer-webhooks-") as folder:
        cert_dir = Path(folder)
        ca.issue_serving(_HOSTS).write(cert_dir / CERT_NAME, cert_dir / KEY_NAME)
        manager.webhook_bind_address = "127.0.0.1:0"
        manager.webhook_cert_dir = str(cert_dir)
        manager.add_webhook(
            ValidatingWebhook(
                CONFIGMAPS, _deny_probe, name="probe.webhooks.informer.dev", path=PROBE_PATH
            )
        )
        client = Client(api, field_manager="kube-informer-testing")
        async with manager:
            port = manager.webhook_server.port if manager.webhook_server else None
            assert port is not None, "the Manager did not serve its webhooks"
            url = f"https://127.0.0.1:{port}"
            client_config = ClientConfig(url=url, ca_bundle=ca.cert_pem)
            configurations = webhook_configurations(
                hooks, client_config, name=f"kube-informer-test-{tag}"
            )
            served = ServedWebhooks(manager, url, ca.cert_pem, cert_dir, configurations, _ca=ca)
            restore: list[Obj] = []
            try:
                await _install(client, api, configurations, scope, client_config, timeout)
                for hook in hooks:
                    if isinstance(hook, ConversionWebhook):
                        crd, original = await _configure(client, hook, client_config, given)
                        served.crds.append(crd)
                        if original is not None:
                            restore.append(original)
                if served.crds:
                    await wait_for_crds(api, served.crds, timeout=timeout)
                yield served
            finally:
                with anyio.CancelScope(shield=True):
                    await _uninstall(client, configurations, restore)


async def _install(
    client: Client,
    api: Any,
    configurations: list[Obj],
    scope: list[str],
    client_config: ClientConfig,
    within: float,
) -> None:
    for configuration in configurations:
        name = configuration["metadata"]["name"]
        label = f"{name}-{configuration['kind'][:1].lower()}"
        if scope:
            configuration["webhooks"] = [_scoped(e, scope) for e in configuration["webhooks"]]
        configuration["webhooks"].append(_probe_entry(label, client_config))
        await client.create(configuration, resource=_configuration_resource(configuration))
        await _probe(api, label, within)


def _configuration_resource(configuration: Obj) -> Resource:
    plural = configuration["kind"].lower() + "s"
    return Resource(
        _ADMISSION.group, _ADMISSION.version, plural, kind=configuration["kind"], namespaced=False
    )


async def _configure(
    client: Client,
    hook: ConversionWebhook,
    client_config: ClientConfig,
    given: Mapping[str, Obj],
) -> tuple[Obj, Obj | None]:
    """The CRD of ``hook`` configured for it, and the definition to restore on exit
    (``None``: it was installed here)."""
    if hook.crd_name in given:
        crd = configure_crd(given[hook.crd_name], hook, client_config)
        await client.apply(crd, force=True, resource=CUSTOM_RESOURCE_DEFINITIONS)
        return crd, None
    try:
        current = await client.get(CUSTOM_RESOURCE_DEFINITIONS, hook.crd_name)
    except NotFound:
        raise ValueError(
            f"serve_webhooks: the CRD {hook.crd_name} is not installed: pass its definition "
            f"in crds= (or install it first)"
        ) from None
    crd = configure_crd(current, hook, client_config)
    await client.update(crd, resource=CUSTOM_RESOURCE_DEFINITIONS)
    return crd, current


async def _uninstall(client: Client, configurations: list[Obj], restore: list[Obj]) -> None:
    for configuration in configurations:
        await client.delete(
            _configuration_resource(configuration),
            configuration["metadata"]["name"],
            missing_ok=True,
        )
    for original in restore:
        try:
            current = await client.get(CUSTOM_RESOURCE_DEFINITIONS, original["metadata"]["name"])
        except NotFound:
            continue
        current["spec"]["conversion"] = original["spec"].get("conversion", {"strategy": "None"})
        served = {v["name"]: v.get("served", True) for v in original["spec"]["versions"]}
        for version in current["spec"]["versions"]:
            if version["name"] in served:
                version["served"] = served[version["name"]]
        await client.update(current, resource=CUSTOM_RESOURCE_DEFINITIONS)
