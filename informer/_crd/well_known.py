"""Kubernetes' own types that custom resources embed, as models with the schema
controller-gen writes for them (``metav1.Condition``, ``metav1.LabelSelector``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from .markers import Format, ListType
from .model import Schema

__all__ = ["Condition", "Conditions", "LabelSelector", "LabelSelectorRequirement"]

_CONDITION_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class Condition(Schema):
    """Condition contains details for one aspect of the current state of this API Resource."""

    # metav1.Condition, as informer.set_condition writes it; a status declares
    # ``conditions: Conditions = None`` (a list merged by type).

    type: Annotated[str, Field(max_length=316, pattern=_CONDITION_TYPE)]
    """The condition's type in CamelCase (or foo.example.com/CamelCase)."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    observed_generation: Annotated[int, Field(ge=0), Format("int64")] | None = None
    """The metadata.generation the condition was set from."""
    last_transition_time: datetime
    """When the status last changed."""
    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=_REASON)]
    """Why, as a CamelCase word."""
    message: Annotated[str, Field(max_length=32768)]
    """Why, for a person."""


Conditions = Annotated[list[Condition], ListType("map", keys=("type",))] | None
"""The type of a status' ``conditions`` (a list merged by ``type``)."""


class LabelSelectorRequirement(Schema):
    """One expression of a label selector."""

    key: str
    """The label key the selector applies to."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How the key's value is matched."""
    values: Annotated[list[str], ListType("atomic")] | None = None
    """The values for In and NotIn (empty for Exists and DoesNotExist)."""


class LabelSelector(Schema):
    """metav1.LabelSelector: every ``match_labels`` pair and every expression must match
    (an empty selector matches everything)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-map-type": "atomic"})

    match_labels: dict[str, str] | None = None
    """Labels that must all be present with these values."""
    match_expressions: Annotated[list[LabelSelectorRequirement], ListType("atomic")] | None = None
    """Expressions that must all hold."""
