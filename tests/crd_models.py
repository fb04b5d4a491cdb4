"""A custom resource using every feature of ``informer.crd`` (two versions), for the
tests of tests/crd/: schema generation, typed access, the real server's validation."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from informer.crd import (
    Conditions,
    CustomResource,
    Definition,
    Format,
    IntOrString,
    LabelSelector,
    ListType,
    PreserveUnknownFields,
    PrinterColumn,
    Scale,
    Schema,
    Validation,
    Version,
)

GROUP = "widgets.crd-test.informer.dev"

WIDGET = Definition(group=GROUP, kind="Widget", short_names=["wd"], categories=["informer-tests"])


class Port(Schema):
    """A named port."""

    name: Annotated[str, Field(pattern=r"^[a-z]+$", max_length=15)]
    """The port's name (lower-case letters)."""
    port: Annotated[int, Field(ge=1, le=65535), Format("int32")]
    """The port number."""
    target: IntOrString | None = None
    """A number or a name."""


class WidgetSpec(Schema):
    """What a widget should be."""

    name: Annotated[str, Field(min_length=2, max_length=20)]
    """The display name."""
    size: Annotated[int, Field(ge=1, le=10)] = 3
    """How big (defaults to 3)."""
    color: Literal["red", "green", "blue"] | None = None
    """One of three colours."""
    ratio: Annotated[float, Field(gt=0, lt=1)] | None = None
    """Strictly between 0 and 1."""
    tags: Annotated[list[Annotated[str, Field(min_length=1)]], ListType("set")] | None = None
    """Unique tags."""
    labels: Annotated[dict[str, str], Field(max_length=4)] | None = None
    """At most four labels."""
    ports: Annotated[list[Port], ListType("map", keys=("name",)), Field(max_length=3)] | None = None
    """Ports by name."""
    selector: LabelSelector | None = None
    """Which pods."""
    template: Annotated[dict[str, Any], PreserveUnknownFields()] | None = None
    """Anything (kept as is)."""
    enabled: bool = True
    """Off switch."""

    @model_validator(mode="after")
    def _ratio_needs_size(self) -> Self:  # Widget.spec's CEL rule, in Python too
        if self.ratio is not None and self.size <= 1:
            raise ValueError("a ratio needs size > 1")
        return self


class WidgetStatus(Schema):
    """What a widget is."""

    replicas: Annotated[int, Field(ge=0)] | None = None
    """Replicas running."""
    conditions: Conditions = None
    """Ready."""


class Widget(CustomResource):
    """A widget, version 1 (the storage version)."""

    definition = WIDGET
    version = Version(
        "v1",
        storage=True,
        scale=Scale(spec_replicas_path=".spec.size", status_replicas_path=".status.replicas"),
        printer_columns=[
            PrinterColumn("Size", ".spec.size", type="integer"),
            PrinterColumn("Color", ".spec.color", priority=1),
        ],
    )

    spec: Annotated[
        WidgetSpec,
        Validation("!has(self.ratio) || self.size > 1", message="a ratio needs size > 1"),
    ]
    status: WidgetStatus | None = None


class WidgetSpecV2(Schema):
    """What a widget should be (v2: the size is called scale)."""

    name: Annotated[str, Field(min_length=2, max_length=20)]
    """The display name."""
    scale: Annotated[int, Field(ge=1, le=10)] = 3
    """How big."""


class WidgetV2(CustomResource):
    """A widget, version 2 (served, not stored)."""

    definition = WIDGET
    version = Version("v2", storage=False)

    spec: WidgetSpecV2
    status: WidgetStatus | None = None
