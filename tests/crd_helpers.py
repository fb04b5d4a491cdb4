"""A throwaway CRD with a status subresource whose conditions use ``metav1.Condition``'s
schema (the kubebuilder markers of apimachinery's ``Condition``), for the tests of
conditions and predicates on the real server."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from informer import NotFound, Resource, TooManyRequests, request_json
from informer.resources import CUSTOM_RESOURCE_DEFINITIONS
from informer.testing import eventually

CONDITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "status", "lastTransitionTime", "reason", "message"],
    "properties": {
        "type": {
            "type": "string",
            "maxLength": 316,
            "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
            r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        },
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "reason": {
            "type": "string",
            "minLength": 1,
            "maxLength": 1024,
            "pattern": r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        },
        "message": {"type": "string", "maxLength": 32768},
    },
}


def widget_crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {
                                        "conditions": {
                                            "type": "array",
                                            "x-kubernetes-list-type": "map",
                                            "x-kubernetes-list-map-keys": ["type"],
                                            "items": CONDITION_SCHEMA,
                                        }
                                    },
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


@asynccontextmanager
async def widgets(api: Any, namespace: str, *, within: float = 30) -> AsyncIterator[Resource]:
    """Install a ``Widget`` CRD in a fresh group; yield its Resource once the server
    serves it (the first requests after Established may answer 404 or 429); delete it
    on exit."""
    group = f"t{secrets.token_hex(4)}.example.com"
    await request_json(api, "POST", CUSTOM_RESOURCE_DEFINITIONS.path(), body=widget_crd(group))
    resource = Resource(group, "v1", "widgets", kind="Widget")
    try:
        await eventually(  # 404: not served yet; 429: its storage is initialising
            lambda: request_json(api, "GET", resource.path(namespace=namespace)),
            timeout=within,
            interval=0.1,
            retry_on=(NotFound, TooManyRequests),
        )
        yield resource
    finally:
        with anyio.CancelScope(shield=True):
            await request_json(api, "DELETE", CUSTOM_RESOURCE_DEFINITIONS.path(f"widgets.{group}"))
