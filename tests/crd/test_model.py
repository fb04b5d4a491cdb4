"""Typed access: ``parse`` a cached dict into its model, write it back with ``to_dict``
(round-trip fidelity) or ``to_apply`` (the fields set); errors name object and field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from crd_models import Port, Widget, WidgetSpec, WidgetV2
from kube_informer_samples.configmap_mirror import MIRRORS
from kube_informer_samples.configmap_mirror_types import Mirror, MirrorSpec

from informer.crd import InvalidObject, LabelSelector, ObjectMeta

UNPARSABLE = "unable to parse string as an integer"


def stored_widget() -> dict[str, Any]:
    """A Widget as the server returns it: server-set metadata, defaults applied, and a
    field of a newer schema the model does not know (``spec.shape``)."""
    return {
        "apiVersion": "widgets.crd-test.informer.dev/v1",
        "kind": "Widget",
        "metadata": {
            "name": "w",
            "namespace": "ns",
            "uid": "0b5c-11",
            "resourceVersion": "42",
            "generation": 2,
            "creationTimestamp": "2025-01-02T03:04:05Z",
            "labels": {"app": "w"},
            "managedFields": [{"manager": "kubectl", "operation": "Update"}],
        },
        "spec": {
            "name": "big",
            "size": 3,
            "enabled": True,
            "ports": [{"name": "http", "port": 80, "target": "web", "appProtocol": "h2"}],
            "template": {"anything": [1, {"goes": None}]},
            "shape": "round",
        },
        "status": {
            "replicas": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastTransitionTime": "2025-01-02T03:04:06Z",
                    "reason": "Up",
                    "message": "",
                    "observedGeneration": 2,
                }
            ],
        },
    }


def test_parse_reads_typed_fields() -> None:
    widget = Widget.parse(stored_widget())
    assert widget.spec.size == 3 and widget.spec.ports is not None
    assert widget.spec.ports[0].target == "web"
    assert widget.metadata.resource_version == "42"
    assert widget.status is not None and widget.status.conditions is not None
    assert widget.status.conditions[0].status == "True"
    assert widget.resource.group_resource == "widgets.widgets.crd-test.informer.dev"


def test_to_dict_round_trips_unknown_and_server_set_fields() -> None:
    obj = stored_widget()
    assert Widget.parse(obj).to_dict() == obj


def test_parse_neither_copies_nor_mutates_the_cached_dict() -> None:
    obj = stored_widget()
    before = copy.deepcopy(obj)
    widget = Widget.parse(obj)
    widget.spec.size = 5
    assert widget.spec.ports is not None
    widget.spec.ports.append(Port(name="metrics", port=9090))
    widget.metadata.labels = {"app": "other"}
    written = widget.to_dict()
    assert obj == before  # the cache's object is untouched
    assert written["spec"]["size"] == 5
    assert written["spec"]["ports"][1] == {"name": "metrics", "port": 9090}
    assert written["spec"]["shape"] == "round"  # unknown to the model, kept
    assert written["metadata"]["resourceVersion"] == "42"  # an update stays conditional
    assert written["metadata"]["managedFields"] == before["metadata"]["managedFields"]


def test_to_dict_leaves_absent_fields_absent_until_set() -> None:
    obj = {
        "apiVersion": "widgets.crd-test.informer.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"name": "ab"},
    }
    widget = Widget.parse(obj)
    assert widget.spec.size == 3  # the model's default, not written back ...
    assert widget.to_dict() == obj
    widget.spec.enabled = True  # ... unless assigned
    assert widget.to_dict()["spec"] == {"name": "ab", "enabled": True}
    widget.spec.color = "red"
    widget.spec.color = None  # None: absent
    assert "color" not in widget.to_dict()["spec"]


def test_to_apply_holds_only_the_fields_set() -> None:
    widget = Widget(
        metadata=ObjectMeta(name="w", namespace="ns"),
        spec=WidgetSpec(name="ab", size=4),
    )
    assert widget.to_apply() == {
        "apiVersion": "widgets.crd-test.informer.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "ns"},
        "spec": {"name": "ab", "size": 4},
    }
    parsed = Widget.parse(stored_widget())
    config = parsed.to_apply()
    assert set(config["metadata"]) == {"name", "namespace", "labels"}  # no server-set fields
    assert "status" not in config
    status = parsed.to_apply(status=True)
    assert set(status) == {"apiVersion", "kind", "metadata", "status"}
    assert status["metadata"] == {"name": "w", "namespace": "ns"}


def test_snake_case_and_camel_case_both_construct() -> None:
    assert MirrorSpec(source="a", target_namespaces=["b"]).target_namespaces == ["b"]
    spec = MirrorSpec.model_validate({"source": "a", "namespaceSelector": {"matchLabels": {}}})
    assert isinstance(spec.namespace_selector, LabelSelector)


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        (
            lambda o: o["spec"].update(size=11),
            [("spec.size", "Input should be less than or equal to 10")],
        ),
        (
            lambda o: o["spec"]["ports"][0].update(port="x"),
            [
                (
                    "spec.ports[0].port",
                    "Input should be a valid integer, unable to parse string as an integer",
                )
            ],
        ),
        (lambda o: o["spec"].pop("name"), [("spec.name", "Field required")]),
        (
            lambda o: o.update(apiVersion="widgets.crd-test.informer.dev/v2"),
            [
                (
                    "apiVersion",
                    "widgets.crd-test.informer.dev/v2 Widget is not "
                    "widgets.crd-test.informer.dev/v1 Widget",
                )
            ],
        ),
    ],
    ids=["bound", "nested-type", "missing", "other-version"],
)
def test_validation_errors_name_the_object_and_the_field_path(
    change: Any, errors: list[tuple[str, str]]
) -> None:
    obj = stored_widget()
    change(obj)
    with pytest.raises(InvalidObject) as caught:
        Widget.parse(obj)
    assert caught.value.obj == "Widget ns/w"
    assert caught.value.errors == errors
    assert str(caught.value).startswith(f"Widget ns/w: {errors[0][0]}: ")
    assert isinstance(caught.value, ValueError)


def test_each_version_parses_its_own_objects() -> None:
    obj = {
        "apiVersion": "widgets.crd-test.informer.dev/v2",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"name": "ab", "scale": 2},
    }
    assert WidgetV2.parse(obj).spec.scale == 2
    assert WidgetV2.resource.version == "v2" and Widget.resource.version == "v1"


def test_the_sample_model_names_the_controllers_resource() -> None:
    assert Mirror.resource == MIRRORS
    with pytest.raises(InvalidObject, match="set exactly one of targetNamespaces"):
        Mirror.parse(
            {
                "apiVersion": MIRRORS.api_version,
                "kind": "ConfigMapMirror",
                "metadata": {"name": "m", "namespace": "a"},
                "spec": {"source": "cm"},
            }
        )
