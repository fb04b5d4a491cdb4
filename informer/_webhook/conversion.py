"""Conversion webhooks for CustomResourceDefinitions with several versions
(``apiextensions.k8s.io/v1`` ConversionReview), hub and spoke as controller-runtime's
``conversion.Hub`` / ``conversion.Convertible``.

One version is the **hub** (usually the storage version); every other served version is
a **spoke** with two functions: ``to_hub(obj)`` and ``from_hub(obj)``. A conversion
between two spokes goes through the hub, so N versions need 2(N-1) functions, not
N(N-1). Each function receives a private copy of the object and returns the converted
dict (it may change and return its argument); the framework sets ``apiVersion``.
Functions are sync and pure: they run on the event loop, once per object of the review
(a list of a thousand objects at another version is one review of a thousand objects).
They must keep ``metadata`` as it is but for labels and annotations (the API server
refuses any other change) and should be lossless: :func:`check_round_trip` is the test.

A review is answered ``Success`` with every object converted, or ``Failure`` with a
message naming the object, the versions and the error (the API server then fails the
client's request with it); a function that raised is logged and reported as an absorbed
failure of kind ``webhook``. A body that is not a ConversionReview is a
:class:`~informer._webhook.base.ReviewError` (400).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol, runtime_checkable

import orjson
import structlog

from .._failures import report_failure
from .._meta.resource import Resource
from .._meta.types import Obj
from .base import ReviewError, Webhook, WebhookType, check_path, decode_review
from .patch import json_equal, json_patch

__all__ = [
    "CONVERSION_REVIEW_VERSIONS",
    "ConversionWebhook",
    "Convertible",
    "Spoke",
    "check_round_trip",
]

log = structlog.get_logger(__name__)

CONVERSION_REVIEW_VERSIONS: Final = ("apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1")
"""The ConversionReview versions this server answers (``v1`` is the one configured)."""


@runtime_checkable
class Convertible(Protocol):
    """A spoke version: how its objects become hub objects and back."""

    def to_hub(self, obj: Obj) -> Obj: ...

    def from_hub(self, obj: Obj) -> Obj: ...


@dataclass(frozen=True, slots=True)
class Spoke:
    """A :class:`Convertible` from two functions (``HandlerFuncs`` for conversions)."""

    to_hub: Callable[[Obj], Obj]
    from_hub: Callable[[Obj], Obj]


class _ConversionFailed(Exception):
    def __init__(self, message: str, error: BaseException | None = None) -> None:
        super().__init__(message)
        self.error = error


def _copy(obj: Obj) -> Obj:
    copied: Obj = orjson.loads(orjson.dumps(obj))
    return copied


def _version_of(obj: Obj) -> tuple[str, str]:
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str) or "/" not in api_version:
        raise _ConversionFailed(f"an object without a group/version apiVersion: {api_version!r}")
    group, _, version = api_version.rpartition("/")
    return group, version


class ConversionWebhook(Webhook):
    """Converts the objects of one CRD between its versions.

    ``hub`` is the :class:`~informer.Resource` of the hub version (its group, plural and
    kind name the CRD: ``<plural>.<group>``); ``spokes`` maps every other version to its
    :class:`Convertible` (a :class:`Spoke`, or any object with ``to_hub`` and
    ``from_hub``). ``path`` defaults to ``/convert-<plural>-<group>`` (one CRD per path;
    controller-runtime serves all of them at ``/convert``), ``name`` to the CRD's name.
    """

    type: ClassVar[WebhookType] = "conversion"

    def __init__(
        self,
        hub: Resource,
        spokes: Mapping[str, Convertible],
        *,
        path: str | None = None,
        name: str | None = None,
    ) -> None:
        if not hub.group or not hub.kind:
            raise ValueError(
                f"a conversion webhook's hub is a custom resource with a group and a kind, "
                f"got {hub!r}"
            )
        if not spokes:
            raise ValueError("a conversion webhook needs at least one spoke version")
        if hub.version in spokes:
            raise ValueError(f"version {hub.version!r} is the hub: it cannot be a spoke too")
        for version, spoke in spokes.items():
            if not isinstance(spoke, Convertible):
                raise TypeError(
                    f"spoke {version!r}: expected a Spoke(to_hub=..., from_hub=...) or an "
                    f"object with to_hub and from_hub, got {spoke!r}"
                )
        self.hub = hub
        self.spokes = dict(spokes)
        self.crd_name = f"{hub.plural}.{hub.group}"
        self.name = name or self.crd_name
        self.path = check_path(path or f"/convert-{hub.plural}-{hub.group.replace('.', '-')}")

    @property
    def versions(self) -> list[str]:
        """The versions it converts between: the hub, then the spokes."""
        return [self.hub.version, *self.spokes]

    def convert(self, obj: Obj, version: str) -> Obj:
        """``obj`` (unchanged) converted to ``version`` of the same group; ``ValueError``
        naming the versions and the error when it cannot be."""
        try:
            return self._convert(_copy(obj), version)
        except _ConversionFailed as exc:
            raise ValueError(str(exc)) from exc.error

    def _convert(self, obj: Obj, version: str) -> Obj:
        group, source = _version_of(obj)
        if group != self.hub.group or obj.get("kind") != self.hub.kind:
            raise _ConversionFailed(
                f"{self.name} converts {self.hub.kind} of {self.hub.group}, got "
                f"{obj.get('kind')} of {group!r}"
            )
        for v in (source, version):
            if v != self.hub.version and v not in self.spokes:
                raise _ConversionFailed(
                    f"{self.hub.kind} version {v!r} is unknown to {self.name} "
                    f"(it converts {', '.join(self.versions)})"
                )
        if source == version:
            return obj
        hub = obj if source == self.hub.version else self._step(obj, source, "to_hub")
        hub["apiVersion"] = self.hub.api_version
        if version == self.hub.version:
            return hub
        converted = self._step(hub, version, "from_hub")
        converted["apiVersion"] = f"{group}/{version}"
        return converted

    def _step(self, obj: Obj, spoke: str, direction: str) -> Obj:
        func = getattr(self.spokes[spoke], direction)
        try:
            out = func(obj)
        except Exception as exc:
            where = f"{spoke} to the hub" if direction == "to_hub" else f"the hub to {spoke}"
            raise _ConversionFailed(
                f"converting {_describe(obj)} from {where}: {type(exc).__name__}: {exc}", exc
            ) from exc
        if not isinstance(out, dict):
            raise _ConversionFailed(
                f"{type(self.spokes[spoke]).__qualname__}.{direction} returned "
                f"{type(out).__name__}, not the converted object dict"
            )
        return out

    async def review(self, body: bytes) -> bytes:
        api_version, uid, desired, objects = _decode(body)
        converted: list[Obj] = []
        result: Obj = {"status": "Success"}
        group, _, version = desired.rpartition("/")
        try:
            if group != self.hub.group:
                raise _ConversionFailed(
                    f"{self.name} converts objects of {self.hub.group}, not to {desired!r}"
                )
            converted = [self._convert(obj, version) for obj in objects]
        except _ConversionFailed as exc:
            converted, result = [], {"status": "Failure", "message": str(exc)}
            log.error("webhook.conversion_failed", webhook=self.name, error=str(exc))
            report_failure("webhook", self.name, exc.error or exc)
        response = {"uid": uid, "convertedObjects": converted, "result": result}
        return orjson.dumps(
            {"apiVersion": api_version, "kind": "ConversionReview", "response": response}
        )


def _describe(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "?") if isinstance(meta, dict) else "?"
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    return f"{obj.get('kind', '?')} {namespace + '/' if namespace else ''}{name}"


def _decode(body: bytes) -> tuple[str, str, str, list[Obj]]:
    api_version, request, uid = decode_review(
        body, kind="ConversionReview", versions=CONVERSION_REVIEW_VERSIONS
    )
    desired, objects = request.get("desiredAPIVersion"), request.get("objects")
    if not isinstance(desired, str) or "/" not in desired:
        raise ReviewError(f"bad desiredAPIVersion {desired!r}")
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise ReviewError("request.objects must be a list of objects")
    return api_version, uid, desired, objects


def check_round_trip(webhook: ConversionWebhook, obj: Obj) -> None:
    """Assert that ``obj`` survives the round trip through the hub: a spoke object
    spoke -> hub -> spoke, a hub object hub -> spoke -> hub for every spoke (each equal
    to ``obj``). Raises ``AssertionError`` naming the versions and the JSON patch of the
    difference; a conversion that fails raises its ``ValueError``. For tests."""
    _, version = _version_of(obj)
    group = webhook.hub.group
    hops = (
        [(spoke, webhook.hub.version) for spoke in webhook.spokes]
        if version == webhook.hub.version
        else [(webhook.hub.version, version)]
    )
    for via, back in hops:
        there = webhook.convert(obj, via)
        returned = webhook.convert(there, back)
        if not json_equal(returned, obj):
            raise AssertionError(
                f"{obj.get('kind')} {group}/{version} -> {via} -> {back} is not the "
                f"original: {json_patch(obj, returned)}"
            )
