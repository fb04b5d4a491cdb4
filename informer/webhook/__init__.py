"""Admission and conversion webhooks (controller-runtime's ``pkg/webhook``).

Write a handler on object dicts, wrap it in a webhook, and add it to the Manager, which
serves every webhook over HTTPS on ``webhook_bind_address`` (default ``:9443``) on every
replica (neither leader election nor sharding gates webhooks)::

    from informer.webhook import Denied, ValidatingWebhook, Validator

    class MirrorValidator(Validator):
        def validate_create(self, obj, request):
            if namespace_of(obj) in obj["spec"].get("targetNamespaces", ()):
                raise Denied("a mirror cannot target its own namespace", code=422)

    manager.add_webhook(ValidatingWebhook(MIRRORS, MirrorValidator(), name="vmirror.example.com"))

The guide is ``docs/guides/webhooks.md``; the contracts are in the modules of
``informer/_webhook/``.
"""

from .._webhook.admission import AdmissionWebhook as AdmissionWebhook
from .._webhook.admission import Defaulter as Defaulter
from .._webhook.admission import Denied as Denied
from .._webhook.admission import MutateFunc as MutateFunc
from .._webhook.admission import MutatingWebhook as MutatingWebhook
from .._webhook.admission import ValidateFunc as ValidateFunc
from .._webhook.admission import ValidatingWebhook as ValidatingWebhook
from .._webhook.admission import Validator as Validator
from .._webhook.admission import Warnings as Warnings
from .._webhook.base import Webhook as Webhook
from .._webhook.configuration import CERT_MANAGER_INJECT_CA_FROM as CERT_MANAGER_INJECT_CA_FROM
from .._webhook.configuration import ClientConfig as ClientConfig
from .._webhook.configuration import ServiceReference as ServiceReference
from .._webhook.configuration import configure_crd as configure_crd
from .._webhook.configuration import crd_conversion as crd_conversion
from .._webhook.configuration import webhook_configurations as webhook_configurations
from .._webhook.configuration import webhook_manifests as webhook_manifests
from .._webhook.conversion import ConversionWebhook as ConversionWebhook
from .._webhook.conversion import Convertible as Convertible
from .._webhook.conversion import Spoke as Spoke
from .._webhook.conversion import check_round_trip as check_round_trip
from .._webhook.patch import JsonPatchError as JsonPatchError
from .._webhook.patch import apply_json_patch as apply_json_patch
from .._webhook.patch import json_patch as json_patch
from .._webhook.review import AdmissionRequest as AdmissionRequest
from .._webhook.review import AdmissionResponse as AdmissionResponse
from .._webhook.server import DEFAULT_CERT_DIR as DEFAULT_CERT_DIR
from .._webhook.server import WebhookServer as WebhookServer

__all__ = [
    "CERT_MANAGER_INJECT_CA_FROM",
    "DEFAULT_CERT_DIR",
    "AdmissionRequest",
    "AdmissionResponse",
    "AdmissionWebhook",
    "ClientConfig",
    "ConversionWebhook",
    "Convertible",
    "Defaulter",
    "Denied",
    "JsonPatchError",
    "MutateFunc",
    "MutatingWebhook",
    "ServiceReference",
    "Spoke",
    "ValidateFunc",
    "ValidatingWebhook",
    "Validator",
    "Warnings",
    "Webhook",
    "WebhookServer",
    "apply_json_patch",
    "check_round_trip",
    "configure_crd",
    "crd_conversion",
    "json_patch",
    "webhook_configurations",
    "webhook_manifests",
]
