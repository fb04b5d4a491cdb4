from __future__ import annotations

import pytest

from informer._labels import parse_label_selector

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
