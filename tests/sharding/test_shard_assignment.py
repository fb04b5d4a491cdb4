"""Rendezvous assignment: stable, balanced, and minimal movement on join and leave."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from informer._sharding.assignment import owner, score, view_digest

KEYS = [f"ns-{i % 37}/object-{i}" for i in range(20_000)]


def members(n: int) -> list[str]:
    return [f"replica-{i}_5f0c{i:04d}" for i in range(n)]


def assign(ms: list[str]) -> dict[str, str | None]:
    return {k: owner(ms, k) for k in KEYS}


def test_stable_across_processes_and_member_order() -> None:
    """Not Python's salted hash(): another interpreter computes the same owners."""
    ms = members(3)
    here = [owner(ms, k) for k in KEYS[:50]]
    assert [owner(list(reversed(ms)), k) for k in KEYS[:50]] == here
    code = (
        "from informer._sharding.assignment import owner;"
        f"ms={ms!r};print([owner(ms, f'ns-{{i % 37}}/object-{{i}}') for i in range(50)])"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert other.stdout.strip() == repr(here)
    assert score("a", "k") == score("a", "k") != score("b", "k")


def test_no_members_no_owner() -> None:
    assert owner([], "ns/a") is None


@pytest.mark.parametrize("n", [2, 3, 5, 8], ids=lambda n: f"{n}-members")
def test_balanced(n: int) -> None:
    counts: dict[str | None, int] = {}
    for o in assign(members(n)).values():
        counts[o] = counts.get(o, 0) + 1
    assert set(counts) == set(members(n))
    expected = len(KEYS) / n
    sigma = math.sqrt(len(KEYS) * (1 / n) * (1 - 1 / n))
    for m, c in counts.items():  # binomial: within 5 standard deviations
        assert abs(c - expected) < 5 * sigma, (m, c, expected)


@pytest.mark.parametrize("n", [1, 2, 3, 7], ids=lambda n: f"from-{n}")
def test_join_moves_about_one_over_n_plus_one_and_only_to_the_joiner(n: int) -> None:
    before = assign(members(n))
    joined = [*members(n), "joiner_abc"]
    after = assign(joined)
    moved = [k for k in KEYS if before[k] != after[k]]
    assert all(after[k] == "joiner_abc" for k in moved)  # nothing moves between old members
    share = 1 / (n + 1)
    sigma = math.sqrt(len(KEYS) * share * (1 - share))
    assert abs(len(moved) - len(KEYS) * share) < 5 * sigma, (len(moved), len(KEYS) * share)


@pytest.mark.parametrize("n", [2, 3, 4, 8], ids=lambda n: f"from-{n}")
def test_leave_moves_only_the_leavers_keys(n: int) -> None:
    ms = members(n)
    before = assign(ms)
    gone = ms[1]
    after = assign([m for m in ms if m != gone])
    moved = {k for k in KEYS if before[k] != after[k]}
    assert moved == {k for k in KEYS if before[k] == gone}
    share = 1 / n
    sigma = math.sqrt(len(KEYS) * share * (1 - share))
    assert abs(len(moved) - len(KEYS) * share) < 5 * sigma


def test_pairwise_order() -> None:
    """If a beats b for k in one view, b owns k in no view containing a."""
    a, b, c, d = "a", "b", "c", "d"
    for k in KEYS[:2000]:
        if owner([a, b, c], k) == a:
            assert owner([a, b], k) != b and owner([a, b, d], k) != b


def test_view_digest() -> None:
    assert view_digest(["b", "a"]) == view_digest(["a", "b", "a"])
    assert view_digest(["a", "b"]) != view_digest(["a", "b", "c"])
    assert len(view_digest([])) == 16
