"""``informer.webhook.json_patch``: RFC 6902 patches that turn the original into the
mutated document, minimal (one operation per change), checked by applying them."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from informer.webhook import JsonPatchError, apply_json_patch, json_patch

pytestmark = pytest.mark.timeout(30)

CASES: list[tuple[str, Any, Any, list[dict[str, Any]]]] = [
    ("equal", {"a": 1}, {"a": 1}, []),
    ("add-key", {"a": 1}, {"a": 1, "b": 2}, [{"op": "add", "path": "/b", "value": 2}]),
    ("remove-key", {"a": 1, "b": 2}, {"a": 1}, [{"op": "remove", "path": "/b"}]),
    (
        "replace-leaf",
        {"a": {"b": 1}},
        {"a": {"b": 2}},
        [{"op": "replace", "path": "/a/b", "value": 2}],
    ),
    (
        "add-label",
        {"metadata": {"name": "x"}},
        {"metadata": {"name": "x", "labels": {"app": "web"}}},
        [{"op": "add", "path": "/metadata/labels", "value": {"app": "web"}}],
    ),
    (
        "escaped-keys",
        {"metadata": {"annotations": {}}},
        {"metadata": {"annotations": {"example.com/a~b": "1"}}},
        [{"op": "add", "path": "/metadata/annotations/example.com~1a~0b", "value": "1"}],
    ),
    ("append", {"l": [1, 2]}, {"l": [1, 2, 3]}, [{"op": "add", "path": "/l/2", "value": 3}]),
    ("prepend", {"l": [1, 2]}, {"l": [0, 1, 2]}, [{"op": "add", "path": "/l/0", "value": 0}]),
    ("drop-first", {"l": [0, 1, 2]}, {"l": [1, 2]}, [{"op": "remove", "path": "/l/0"}]),
    ("drop-middle", {"l": [0, 1, 2]}, {"l": [0, 2]}, [{"op": "remove", "path": "/l/1"}]),
    (
        "change-in-list",
        {"c": [{"name": "a", "image": "x:1"}]},
        {"c": [{"name": "a", "image": "x:2"}]},
        [{"op": "replace", "path": "/c/0/image", "value": "x:2"}],
    ),
    ("bool-is-not-int", {"a": 1}, {"a": True}, [{"op": "replace", "path": "/a", "value": True}]),
    ("int-equals-float", {"a": 1}, {"a": 1.0}, []),
    (
        "type-change",
        {"a": [1]},
        {"a": {"x": 1}},
        [{"op": "replace", "path": "/a", "value": {"x": 1}}],
    ),
    ("null-to-value", {"a": None}, {"a": "v"}, [{"op": "replace", "path": "/a", "value": "v"}]),
]


@pytest.mark.parametrize(
    ("original", "mutated", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_patch_is_minimal_and_applies(original: Any, mutated: Any, expected: list[Any]) -> None:
    before = copy.deepcopy(original)
    patch = json_patch(original, mutated)
    assert patch == expected
    assert original == before, "json_patch must not change its arguments"
    assert apply_json_patch(original, patch) == mutated
    assert original == before, "apply_json_patch must not change its argument"


def _random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(6 if depth < 3 else 4)
    if kind == 0:
        return rng.randrange(4)
    if kind == 1:
        return rng.choice(["a", "b", "~/", ""])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.random()
    if kind == 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {rng.choice("abcd/~"): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        value[key] = _mutate(rng, value[key], depth + 1)
        if rng.random() < 0.3:
            value[rng.choice("xyz")] = _random_value(rng, depth + 1)
        if rng.random() < 0.2:
            del value[rng.choice(list(value))]
        return value
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        action = rng.randrange(3)
        if action == 0:
            value.insert(i, _random_value(rng, depth + 1))
        elif action == 1:
            del value[i]
        else:
            value[i] = _mutate(rng, value[i], depth + 1)
        return value
    return _random_value(rng, depth)


@pytest.mark.parametrize("seed", range(20), ids=lambda s: f"seed{s}")
def test_random_mutations_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        original = {"spec": _random_value(rng, 0), "metadata": {"name": "x"}}
        mutated = _mutate(rng, copy.deepcopy(original))
        patch = json_patch(original, mutated)
        assert apply_json_patch(original, patch) == mutated, (original, mutated, patch)
        assert json_patch(mutated, mutated) == []


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ([{"op": "remove", "path": "/missing"}], "no member"),
        ([{"op": "replace", "path": "/l/5", "value": 1}], "out of range"),
        ([{"op": "test", "path": "/a", "value": 2}], "test failed"),
        ([{"op": "move", "path": "/a", "from": "/b"}], "unsupported"),
        ([{"op": "add", "path": "a", "value": 1}], "bad path"),
    ],
    ids=["remove-missing", "index-out-of-range", "failed-test", "unsupported-op", "relative-path"],
)
def test_a_patch_that_does_not_apply_says_why(patch: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(JsonPatchError, match=message):
        apply_json_patch({"a": 1, "l": []}, patch)
