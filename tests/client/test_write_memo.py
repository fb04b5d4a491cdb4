"""``WriteMemo`` (``informer/_client/written.py``): what a client last wrote to each
object, and when writing the same again would change nothing."""

from __future__ import annotations

import pytest

from informer import Obj
from informer._client.written import WriteMemo, intent_digest
from informer.resources import CONFIGMAPS, DEPLOYMENTS

pytestmark = pytest.mark.timeout(30)


def deployment(rv: str, *, image: str = "a", status: Obj | None = None, uid: str = "u1") -> Obj:
    obj: Obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "resourceVersion": rv, "uid": uid},
        "spec": {"image": image, "replicas": 1},
    }
    if status is not None:
        obj["status"] = status
    return obj


def desired(live: Obj, image: str = "a") -> Obj:
    return {**live, "spec": {"image": image}}  # the default (replicas) left out


def test_the_same_intent_over_the_state_it_left_is_unchanged() -> None:
    memo = WriteMemo()
    answer = deployment("5")
    memo.remember(DEPLOYMENTS, answer, intent_digest(desired(answer), answer))
    later = deployment("9", status={"replicas": 1})  # only the status moved on
    assert memo.unchanged(DEPLOYMENTS, later, intent_digest(desired(later), later))
    assert not memo.unchanged(DEPLOYMENTS, later, intent_digest(desired(later, "b"), later))
    moved = deployment("9", image="someone-else")
    assert not memo.unchanged(DEPLOYMENTS, moved, intent_digest(desired(moved), moved))
    recreated = deployment("12", uid="u2")
    assert not memo.unchanged(DEPLOYMENTS, recreated, intent_digest(desired(recreated), recreated))


def test_an_intent_that_sets_status_compares_the_status_too() -> None:
    memo = WriteMemo()
    live = deployment("5", status={"phase": "Old"})
    wanted = {**live, "status": {"phase": "New"}}
    intent = intent_digest(wanted, live)
    assert intent[1] is True
    answer = deployment("6", status={"phase": "New"})
    memo.remember(DEPLOYMENTS, answer, intent)
    changed = deployment("7", status={"phase": "Other"})
    assert not memo.unchanged(DEPLOYMENTS, changed, intent_digest(wanted, changed))


def test_bounded_and_never_remembers_what_json_cannot_hold() -> None:
    memo = WriteMemo(max_objects=2)
    for name in ("a", "b", "c"):
        obj: Obj = {"metadata": {"name": name, "namespace": "ns", "resourceVersion": "1"}}
        memo.remember(CONFIGMAPS, obj, intent_digest(obj, None))
    assert len(memo) == 2
    assert memo.last(CONFIGMAPS, {"metadata": {"name": "a", "namespace": "ns"}}) is None
    odd: Obj = {"metadata": {"name": "b", "namespace": "ns"}, "data": {1: object()}}
    memo.remember(CONFIGMAPS, odd, intent_digest(odd, None))
    assert memo.last(CONFIGMAPS, odd) is None and len(memo) == 1
