"""The options of the client's list and delete requests (``informer._client.options``):
what the API server is sent for each combination of keyword arguments; the requests
themselves are tested on the real server in ``test_client.py``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from informer._client.options import delete_options, list_query


@pytest.mark.parametrize(
    ("labels", "fields", "query"),
    [
        (None, None, {}),
        ("app=web", None, {"labelSelector": "app=web"}),
        ({"app": "web", "tier": "db"}, None, {"labelSelector": "app=web,tier=db"}),
        ({}, None, {}),
        ("", "", {}),
        (None, "metadata.name=a", {"fieldSelector": "metadata.name=a"}),
        (
            "app in (a,b)",
            "spec.x=1",
            {"labelSelector": "app in (a,b)", "fieldSelector": "spec.x=1"},
        ),
    ],
    ids=["none", "string", "mapping", "empty-mapping", "empty-strings", "fields", "both"],
)
def test_list_query(
    labels: str | Mapping[str, str] | None, fields: str | None, query: dict[str, str]
) -> None:
    assert list_query(labels, fields) == query


def test_a_malformed_label_selector_is_refused_before_any_request() -> None:
    with pytest.raises(ValueError):
        list_query("app in (a", None)


@pytest.mark.parametrize(
    ("kwargs", "body"),
    [
        ({}, None),
        ({"uid": "u1"}, {"preconditions": {"uid": "u1"}}),
        ({"resource_version": "7"}, {"preconditions": {"resourceVersion": "7"}}),
        (
            {"uid": "u1", "resource_version": "7", "propagation_policy": "Foreground"},
            {
                "preconditions": {"uid": "u1", "resourceVersion": "7"},
                "propagationPolicy": "Foreground",
            },
        ),
        ({"propagation_policy": "Orphan"}, {"propagationPolicy": "Orphan"}),
        ({"uid": "", "resource_version": None}, None),
    ],
    ids=["nothing", "uid", "resource-version", "all", "propagation-only", "empty-values"],
)
def test_delete_options(kwargs: dict[str, Any], body: dict[str, Any] | None) -> None:
    expected = None if body is None else {"apiVersion": "v1", "kind": "DeleteOptions", **body}
    assert delete_options(**kwargs) == expected
