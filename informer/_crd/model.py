"""Typed objects: pydantic models read from, and written back to, plain object dicts.

:class:`Schema` is the base of a resource's spec, status and their parts: Python names
in snake_case, the object's field names in camelCase (``target_namespaces`` <->
``targetNamespaces``, either accepted on input), attribute docstrings as descriptions,
and **unknown fields kept** (``extra="allow"``), so an object round-trips through its
model whatever fields a newer version of the resource added.

:class:`CustomResource` is one version of a resource (``apiVersion``, ``kind``,
``metadata``, and the subclass's ``spec`` / ``status``), declared with a
:class:`~informer.crd.Definition` and a :class:`~informer.crd.Version`:

- ``Model.parse(obj)`` validates a dict (e.g. a lister's cached object) into a new
  model. The dict is not copied first and never mutated; values typed ``Any`` (and
  unknown fields) are *shared* with it, so copy them before changing them in place.
  Errors raise :class:`~informer.crd.InvalidObject` naming the object and each field path.
- ``model.to_dict()`` is the whole object for ``Client.create`` / ``update`` /
  ``update_status``: every field the object had (known or not, server-set ones such as
  ``resourceVersion`` included) with the model's changes. A field that was absent stays
  absent unless it was assigned or differs from its default; ``None`` means absent.
- ``model.to_apply()`` is an apply configuration for ``Client.apply``: ``apiVersion``,
  ``kind``, the name and namespace, and only the fields that were *set* (passed to the
  constructor, parsed, or assigned), without server-set metadata; ``to_apply(status=True)``
  the same for ``Client.apply_status`` (the status only).

Parsing costs microseconds per object (bench/RESULTS.md, "Typed access"): keep the cache
and the hot path (mappers, predicates, indexers) on dicts; parse in ``reconcile``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticUndefined

from .._exceptions import InvalidObject
from .._meta.resource import Resource
from .._meta.types import Obj
from .declaration import Definition, Version

__all__ = ["CustomResource", "ObjectMeta", "Schema", "describe"]

_SERVER_SET = ("uid", "resourceVersion", "generation", "creationTimestamp",
               "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields",
               "selfLink")  # fmt: skip
"""``metadata`` fields an apply configuration never carries."""


class Schema(BaseModel):
    """Base of the models of a resource's parts (see the module docstring)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
        use_attribute_docstrings=True,
    )


class ObjectMeta(Schema):
    """The object's ``metadata`` (the usual fields typed; the rest kept as they are)."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    owner_references: list[dict[str, Any]] | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None


class CustomResource(Schema):
    """One version of a custom resource; subclasses declare ``definition``, ``version``
    and the ``spec`` (and ``status``) fields. ``resource`` (the
    :class:`~informer.Resource` to watch and write) is derived from them."""

    definition: ClassVar[Definition]
    version: ClassVar[Version]
    resource: ClassVar[Resource]

    api_version: str = Field(default="", alias="apiVersion")
    kind: str = ""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        definition = getattr(cls, "definition", None)
        version = getattr(cls, "version", None)
        if definition is None or version is None:
            return  # an abstract intermediate class
        if not isinstance(definition, Definition) or not isinstance(version, Version):
            raise TypeError(
                f"{cls.__qualname__}: definition must be a Definition and version a Version"
            )
        cls.resource = Resource(
            definition.group,
            version.name,
            definition.plural_name,
            kind=definition.kind,
            namespaced=definition.namespaced,
        )

    @classmethod
    def declared(cls) -> bool:
        """Whether this class is a concrete version (has a definition and a version)."""
        return hasattr(cls, "resource")

    def model_post_init(self, context: Any, /) -> None:
        if not self.api_version and hasattr(type(self), "resource"):
            self.api_version = type(self).resource.api_version
            self.model_fields_set.discard("api_version")
        if not self.kind and hasattr(type(self), "resource"):
            self.kind = type(self).resource.kind
            self.model_fields_set.discard("kind")

    @classmethod
    def parse(cls, obj: Obj) -> Self:
        """``obj`` as this model (a new object; ``obj`` is neither copied nor mutated).

        Raises :class:`~informer.crd.InvalidObject` naming the object (``Kind ns/name``) and
        every failing field path, also when ``obj`` is of another apiVersion or kind.
        """
        resource = cls.resource
        if (
            obj.get("apiVersion", resource.api_version) != resource.api_version
            or obj.get("kind", resource.kind) != resource.kind
        ):
            found = f"{obj.get('apiVersion')} {obj.get('kind')}"
            raise InvalidObject(
                describe(obj, resource.kind),
                [("apiVersion", f"{found} is not {resource.api_version} {resource.kind}")],
            )
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            errors = [(field_path(e["loc"]), e["msg"]) for e in exc.errors()]
            raise InvalidObject(describe(obj, resource.kind), errors) from None

    def to_dict(self) -> Obj:
        """The whole object (module docstring): for create, update and update_status."""
        exclude: Any = _unchanged(self) or None
        obj: Obj = self.model_dump(mode="json", by_alias=True, exclude=exclude)
        obj["apiVersion"], obj["kind"] = self.api_version, self.kind
        return obj

    def to_apply(self, *, status: bool = False) -> Obj:
        """An apply configuration of the fields set (module docstring); ``status=True``:
        of the status only, for ``Client.apply_status``."""
        set_fields: Obj = self.model_dump(
            mode="json", by_alias=True, exclude_unset=True, exclude_none=True
        )
        metadata = {k: v for k, v in (set_fields.get("metadata") or {}).items()}
        for key in _SERVER_SET:
            metadata.pop(key, None)
        if self.metadata.name is not None:
            metadata["name"] = self.metadata.name
        if self.metadata.namespace is not None:
            metadata["namespace"] = self.metadata.namespace
        config: Obj = {"apiVersion": self.api_version, "kind": self.kind}
        if status:
            config["metadata"] = {k: metadata[k] for k in ("name", "namespace") if k in metadata}
            if "status" in set_fields:
                config["status"] = set_fields["status"]
            return config
        config["metadata"] = metadata
        for key, value in set_fields.items():
            if key not in ("apiVersion", "kind", "metadata", "status"):
                config[key] = value
        return config


def describe(obj: Obj, kind: str = "") -> str:
    """``Kind namespace/name`` (or ``Kind name``) of an object dict, for messages."""
    found = obj.get("metadata")
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    name = meta.get("name") or meta.get("generateName") or "<unnamed>"
    namespace = meta.get("namespace")
    return f"{obj.get('kind') or kind} {f'{namespace}/' if namespace else ''}{name}"


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a field path: ``spec.targetNamespaces[0]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _unchanged(model: BaseModel) -> dict[str | int, Any]:
    """pydantic's ``exclude`` of the fields ``to_dict`` leaves out: ``None`` ones, and
    those never set that still hold their default."""
    out: dict[str | int, Any] = {}
    fields_set = model.model_fields_set
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            out[name] = True
            continue
        if name not in fields_set:
            if info.default is not PydanticUndefined:
                default = info.default
            elif info.default_factory is not None:
                default = info.default_factory()  # type: ignore[call-arg]
            else:
                default = PydanticUndefined
            if value == default:
                out[name] = True
                continue
        nested = _nested(value)
        if nested:
            out[name] = nested
    return out


def _nested(value: Any) -> dict[str | int, Any]:
    if isinstance(value, BaseModel):
        return _unchanged(value)
    if isinstance(value, list | tuple):
        return {i: sub for i, item in enumerate(value) if (sub := _nested(item))}
    if isinstance(value, dict):
        return {k: sub for k, item in value.items() if (sub := _nested(item))}
    return {}
