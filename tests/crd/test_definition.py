"""CRD assembly from models (names, versions, subresources, columns), and models from a
CRD (``models_source``) that give the same CRD back."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from crd_models import WIDGET, Widget, WidgetSpec, WidgetV2
from kube_informer_samples.configmap_mirror import CRD_PATH

from informer._crd.declaration import default_plural
from informer.crd import CustomResource, Definition, Version, definitions, models_source


def test_two_versions_make_one_crd() -> None:
    [crd] = definitions([Widget, WidgetV2])
    assert crd["metadata"] == {"name": "widgets.widgets.crd-test.informer.dev"}
    spec = crd["spec"]
    assert spec["names"] == {
        "kind": "Widget",
        "listKind": "WidgetList",
        "plural": "widgets",
        "singular": "widget",
        "shortNames": ["wd"],
        "categories": ["informer-tests"],
    }
    assert spec["scope"] == "Namespaced"
    v1, v2 = spec["versions"]
    assert (v1["name"], v1["served"], v1["storage"]) == ("v1", True, True)
    assert (v2["name"], v2["served"], v2["storage"]) == ("v2", True, False)
    assert v1["subresources"] == {
        "status": {},
        "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.replicas"},
    }
    assert v1["additionalPrinterColumns"] == [
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Color", "type": "string", "priority": 1, "jsonPath": ".spec.color"},
    ]
    schema = v1["schema"]["openAPIV3Schema"]
    assert schema["required"] == ["spec"]
    assert list(schema["properties"]) == ["apiVersion", "kind", "metadata", "spec", "status"]
    assert schema["description"] == "A widget, version 1 (the storage version)."
    assert "scale" in v2["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]


def version_of(name: str, storage: bool | None, definition: Definition = WIDGET) -> type:
    return type(
        f"W{name}",
        (CustomResource,),
        {
            "__annotations__": {"spec": WidgetSpec},
            "definition": definition,
            "version": Version(name, storage=storage),
        },
    )


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        ([("v1", None), ("v2", None)], "exactly one version must be the storage version"),
        ([("v1", True), ("v2", True)], "exactly one version must be the storage version"),
        ([("v1", True), ("v1", False)], "version v1 is declared twice"),
    ],
    ids=["no-storage", "two-storage", "duplicate"],
)
def test_version_rules(versions: list[tuple[str, bool | None]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        definitions([version_of(n, s) for n, s in versions])


def test_one_version_is_the_storage_version_by_default() -> None:
    [crd] = definitions([version_of("v1", None)])
    assert crd["spec"]["versions"][0]["storage"] is True


def test_versions_must_share_their_definition() -> None:
    other = Definition(group=WIDGET.group, kind="Widget", short_names=["w"])
    with pytest.raises(ValueError, match="must share one Definition"):
        definitions([version_of("v1", True), version_of("v2", False, other)])


@pytest.mark.parametrize(
    ("kind", "plural"),
    [
        ("Widget", "widgets"),
        ("Policy", "policies"),
        ("Gateway", "gateways"),
        ("Box", "boxes"),
        ("Ingress", "ingresses"),
        ("Mesh", "meshes"),
    ],
    ids=str,
)
def test_default_plurals(kind: str, plural: str) -> None:
    assert default_plural(kind) == plural


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group": "nodot", "kind": "W"}, "DNS subdomain"),
        ({"group": "a.b", "kind": "widget"}, "CamelCase"),
    ],
    ids=["group", "kind"],
)
def test_definition_checks_its_names(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Definition(**kwargs)


def load_source(source: str, tmp_path: Path, name: str) -> Any:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def without_meta_descriptions(crd: dict[str, Any]) -> dict[str, Any]:
    """The CRD minus what models cannot carry: labels, and the descriptions of
    apiVersion and kind (the generator writes Kubernetes' own)."""
    crd = yaml.safe_load(yaml.safe_dump(crd))
    crd["metadata"].pop("labels", None)
    crd["metadata"].pop("annotations", None)
    for version in crd["spec"]["versions"]:
        props = version["schema"]["openAPIV3Schema"]["properties"]
        for name in ("apiVersion", "kind"):
            props[name].pop("description", None)
    return crd


@pytest.mark.parametrize("source", ["sample", "widget"], ids=str)
def test_models_from_a_crd_give_the_same_crd_back(source: str, tmp_path: Path) -> None:
    if source == "sample":
        crd = yaml.safe_load(CRD_PATH.read_text())
    else:
        [crd] = definitions([Widget, WidgetV2])
    code = models_source(crd, command="test")
    compile(code, "generated", "exec")
    module = load_source(code, tmp_path, f"generated_{source}_models")
    try:
        classes = [
            v
            for v in vars(module).values()
            if isinstance(v, type)
            and issubclass(v, CustomResource)
            and v.__module__ == module.__name__
        ]
        [again] = definitions(classes)
    finally:
        del sys.modules[module.__name__]
    assert without_meta_descriptions(again) == without_meta_descriptions(crd)
