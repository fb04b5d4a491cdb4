from __future__ import annotations

import pytest

from informer._meta.labels import format_label_selector, parse_label_selector

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, True),
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web, db)", True),
        ("app in (db)", False),
        ("app notin (db)", True),
        ("app notin (web,db)", False),
        ("tier", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("app in (web,db),env=prod,!missing", True),
        ({"app": "web", "env": "prod"}, True),
        ({"app": "web", "env": "dev"}, False),
    ],
    ids=str,
)
def test_label_selector(selector: object, expected: bool) -> None:
    assert parse_label_selector(selector)(LABELS) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize("selector", ["=x", "a b c", "!a in (x)", "a in x"], ids=str)
def test_invalid_selector_names_the_term(selector: str) -> None:
    with pytest.raises(ValueError, match="invalid label selector term"):
        parse_label_selector(selector)


@pytest.mark.parametrize(
    ("selector", "expected", "matches"),
    [
        ({}, "", True),
        ({"matchLabels": {"tier": "front", "app": "web"}}, "app=web,tier=front", True),
        ({"matchLabels": {"app": "db"}}, "app=db", False),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                    {"key": "zone", "operator": "NotIn", "values": ["b"]},
                    {"key": "tier", "operator": "Exists"},
                    {"key": "missing", "operator": "DoesNotExist", "values": []},
                ],
            },
            "app=web,env in (dev,prod),zone notin (b),tier,!missing",
            True,
        ),
        (
            {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]},
            "env notin (prod)",
            False,
        ),
    ],
    ids=["empty", "match-labels", "no-match", "expressions", "not-in"],
)
def test_format_label_selector(selector: dict[str, object], expected: str, matches: bool) -> None:
    """apimachinery's ``metav1.FormatLabelSelector`` (the empty selector: ``""``, everything)."""
    text = format_label_selector(selector)
    assert text == expected
    assert parse_label_selector(text)(LABELS) is matches


@pytest.mark.parametrize(
    "expression",
    [
        {"key": "a", "operator": "In", "values": []},
        {"key": "a", "operator": "Exists", "values": ["x"]},
        {"key": "a", "operator": "Gt", "values": ["1"]},
    ],
    ids=["in-without-values", "exists-with-values", "unknown-operator"],
)
def test_format_label_selector_rejects_what_the_server_rejects(
    expression: dict[str, object],
) -> None:
    with pytest.raises(ValueError, match="operator must be"):
        format_label_selector({"matchExpressions": [expression]})
