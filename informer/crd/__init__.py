"""Custom resources defined in Python (kubebuilder's API types and controller-gen,
for pydantic models).

Define each version of a resource as a :class:`CustomResource` (``spec`` and ``status``
as :class:`Schema` models, constraints as pydantic ``Field`` arguments, Kubernetes'
extensions as markers), generate its CustomResourceDefinition with
``python -m informer.crd generate module:Resource -o crd.yaml`` (``--check`` in CI),
read cached objects typed with ``Resource.parse(obj)`` and write them back with
``to_dict()`` / ``to_apply()``. ``python -m informer.crd models crd.yaml`` writes models
for a CRD you did not write. Guide: docs/guides/custom-resources.md.

Needs pydantic v2: ``pip install kube-informer[crd]``.
"""

try:
    import pydantic as _pydantic
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError("informer.crd needs pydantic v2: pip install 'kube-informer[crd]'") from _exc

from .._crd.codegen import models_source as models_source
from .._crd.declaration import Definition as Definition
from .._crd.declaration import PrinterColumn as PrinterColumn
from .._crd.declaration import Scale as Scale
from .._crd.declaration import Version as Version
from .._crd.definition import definitions as definitions
from .._crd.markers import EmbeddedResource as EmbeddedResource
from .._crd.markers import Format as Format
from .._crd.markers import IntOrString as IntOrString
from .._crd.markers import ListType as ListType
from .._crd.markers import MapType as MapType
from .._crd.markers import PreserveUnknownFields as PreserveUnknownFields
from .._crd.markers import Validation as Validation
from .._crd.model import CustomResource as CustomResource
from .._crd.model import ObjectMeta as ObjectMeta
from .._crd.model import Schema as Schema
from .._crd.schema import SchemaError as SchemaError
from .._crd.well_known import Condition as Condition
from .._crd.well_known import Conditions as Conditions
from .._crd.well_known import LabelSelector as LabelSelector
from .._crd.well_known import LabelSelectorRequirement as LabelSelectorRequirement
from .._exceptions import InvalidObject as InvalidObject

del _pydantic

__all__ = [
    "Condition",
    "Conditions",
    "CustomResource",
    "Definition",
    "EmbeddedResource",
    "Format",
    "IntOrString",
    "InvalidObject",
    "LabelSelector",
    "LabelSelectorRequirement",
    "ListType",
    "MapType",
    "ObjectMeta",
    "PreserveUnknownFields",
    "PrinterColumn",
    "Scale",
    "Schema",
    "SchemaError",
    "Validation",
    "Version",
    "definitions",
    "models_source",
]
