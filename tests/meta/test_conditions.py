"""Status conditions (informer._meta.conditions): apimachinery's ``meta.SetStatusCondition``
(k8s.io/apimachinery/pkg/api/meta/conditions.go: lastTransitionTime moves only when the
status changes; returns whether anything changed), ``FindStatusCondition``,
``IsStatusConditionTrue``, and ``metav1.Condition``'s schema, checked against the real
server through a CRD using that schema."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from crd_helpers import widgets

from informer import (
    ApiError,
    get_condition,
    is_condition_true,
    request_json,
    set_condition,
)
from informer._meta import conditions as _conditions

TIMEOUT = 30
T0, T1 = "2024-05-01T10:00:00Z", "2024-05-01T10:00:07Z"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """``now`` is ``clock[0]``: tests move time by assigning it."""
    now = [T0]
    monkeypatch.setattr(_conditions, "_now", lambda: now[0])
    yield now


def obj(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "w", "generation": 3}, "status": status}


def test_new_condition_is_appended_with_now(clock: list[str]) -> None:
    """A new type is appended, lastTransitionTime = now; changed."""
    o: dict[str, Any] = {"metadata": {"name": "w"}}
    assert set_condition(o, "Ready", "False", reason="Pending", observed_generation=3) is True
    assert o["status"]["conditions"] == [
        {
            "type": "Ready",
            "status": "False",
            "observedGeneration": 3,
            "lastTransitionTime": T0,
            "reason": "Pending",
            "message": "",
        }
    ]


@pytest.mark.parametrize(
    "status", [None, {}, {"conditions": None}], ids=["status-null", "empty", "conditions-null"]
)
def test_creates_status_and_conditions(clock: list[str], status: Any) -> None:
    o: dict[str, Any] = {"metadata": {"name": "w"}, "status": status}
    assert set_condition(o, "Ready", True, reason="Done")
    assert get_condition(o, "Ready") is o["status"]["conditions"][0]


def test_transition_time_moves_only_when_status_changes(clock: list[str]) -> None:
    """SetStatusCondition: reason/message/observedGeneration are overwritten (changed)
    without touching lastTransitionTime; a status change stamps now."""
    o = obj()
    set_condition(o, "Ready", "False", reason="Pending")
    clock[0] = T1
    assert set_condition(o, "Ready", "False", reason="Waiting", message="for source") is True
    c = get_condition(o, "Ready")
    assert c is not None
    assert (c["reason"], c["message"], c["lastTransitionTime"]) == ("Waiting", "for source", T0)
    assert set_condition(o, "Ready", "True", reason="Synced") is True
    assert (c["status"], c["lastTransitionTime"]) == ("True", T1)


def test_unchanged_returns_false(clock: list[str]) -> None:
    o = obj()
    set_condition(o, "Ready", "True", reason="Synced", message="m", observed_generation=3)
    before = copy.deepcopy(o)
    clock[0] = T1
    assert not set_condition(o, "Ready", True, reason="Synced", message="m", observed_generation=3)
    assert o == before


def test_observed_generation_none_is_the_zero_value(clock: list[str]) -> None:
    """Go's zero ObservedGeneration is omitted: None removes a set one (changed)."""
    o = obj()
    set_condition(o, "Ready", "True", reason="Synced", observed_generation=3)
    assert set_condition(o, "Ready", "True", reason="Synced") is True
    assert "observedGeneration" not in o["status"]["conditions"][0]
    assert set_condition(o, "Ready", "True", reason="Synced") is False
    assert set_condition(o, "Ready", "True", reason="Synced", observed_generation=4) is True
    assert o["status"]["conditions"][0]["observedGeneration"] == 4


def test_other_conditions_and_fields_are_kept(clock: list[str]) -> None:
    other = {"type": "Degraded", "status": "False", "reason": "Fine", "message": ""}
    o = obj(conditions=[dict(other)], synced=["a"])
    set_condition(o, "Ready", "Unknown", reason="Starting")
    set_condition(o, "Ready", "True", reason="Synced")
    assert [c["type"] for c in o["status"]["conditions"]] == ["Degraded", "Ready"]
    assert o["status"]["conditions"][0] == other and o["status"]["synced"] == ["a"]


def test_readers() -> None:
    """FindStatusCondition / IsStatusConditionTrue (absent -> None / False)."""
    o = obj(conditions=[{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}])
    assert get_condition(o, "Ready") == {"type": "Ready", "status": "True"}
    assert get_condition(o, "Missing") is None
    assert is_condition_true(o, "Ready") and not is_condition_true(o, "X")
    assert not is_condition_true(o, "Missing")
    assert get_condition({}, "Ready") is None and get_condition({"status": None}, "R") is None


def test_rfc3339_seconds_utc() -> None:
    """metav1.Time serialises as RFC 3339 in UTC with second precision."""
    o = obj()
    set_condition(o, "Ready", "True", reason="Synced")
    stamp = o["status"]["conditions"][0]["lastTransitionTime"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp), stamp


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "true"}, "status must be one of 'True', 'False', 'Unknown'"),
        ({"status": "Yes"}, "status must be one of"),
        ({"reason": ""}, "reason is required"),
        ({"reason": "not camel"}, "reason 'not camel' is invalid"),
        ({"reason": "1Reason"}, "must start with a letter"),
        ({"reason": "Trailing:"}, "is invalid"),
        ({"reason": "R" * 1025}, "at most 1024"),
        ({"type": ""}, "condition type must be a non-empty string"),
        ({"type": "Not Ready"}, "condition type 'Not Ready' is invalid"),
        ({"type": "Example.com/Ready"}, "is invalid"),
        ({"message": "m" * 32769}, "at most 32768"),
        ({"observed_generation": -1}, "observed_generation must be an int >= 0"),
    ],
    ids=[
        "status-lowercase",
        "status-other",
        "reason-empty",
        "reason-spaces",
        "reason-digit-first",
        "reason-trailing-colon",
        "reason-long",
        "type-empty",
        "type-spaces",
        "type-uppercase-prefix",
        "message-long",
        "generation-negative",
    ],
)
def test_values_the_server_rejects(kwargs: dict[str, Any], message: str) -> None:
    """metav1.Condition's schema: status enum, reason pattern/length, type pattern."""
    args: dict[str, Any] = {"type": "Ready", "status": "True", "reason": "Synced", **kwargs}
    o = obj()
    with pytest.raises(ValueError, match=re.escape(message)):
        set_condition(o, args.pop("type"), args.pop("status"), **args)
    assert o == obj()  # nothing written


@pytest.mark.parametrize(
    "type_", ["Ready", "example.com/Ready", "a-b_c.D", "x"], ids=lambda t: t.replace("/", "|")
)
def test_valid_types(type_: str) -> None:
    assert set_condition(obj(), type_, "True", reason="Ok,Fine:Really_2")


@pytest.mark.anyio
async def test_the_server_accepts_what_set_condition_writes(
    api_client: Any, namespace: str
) -> None:
    """Conditions built by set_condition pass metav1.Condition's schema on a status
    subresource; a reason set_condition refuses is refused by the server too; and
    rewriting the same condition keeps lastTransitionTime (no spurious transition)."""
    with anyio.fail_after(TIMEOUT):
        async with widgets(api_client, namespace) as resource:
            body = {"apiVersion": resource.api_version, "kind": "Widget"}
            created = await request_json(
                api_client,
                "POST",
                resource.path(namespace=namespace),
                body={**body, "metadata": {"name": "w"}, "spec": {"size": 1}},
            )
            status_path = resource.path("w", namespace=namespace, subresource="status")
            w = copy.deepcopy(created)
            gen = w["metadata"]["generation"]
            assert set_condition(w, "Ready", "False", reason="Pending", observed_generation=gen)
            assert set_condition(w, "example.com/Synced", "Unknown", reason="Starting")
            written = await request_json(api_client, "PUT", status_path, body=w)
            assert written["status"]["conditions"] == w["status"]["conditions"]

            again = copy.deepcopy(written)
            stamp = get_condition(again, "Ready")["lastTransitionTime"]  # type: ignore[index]
            assert not set_condition(
                again, "Ready", "False", reason="Pending", observed_generation=gen
            )
            assert set_condition(again, "Ready", "False", reason="StillPending", message="m")
            assert get_condition(again, "Ready")["lastTransitionTime"] == stamp  # type: ignore[index]
            written = await request_json(api_client, "PUT", status_path, body=again)
            assert is_condition_true(written, "Ready") is False

            bad = copy.deepcopy(written)
            bad["status"]["conditions"][0]["reason"] = "not camel"
            with pytest.raises(ValueError, match="is invalid"):
                set_condition(copy.deepcopy(written), "Ready", "True", reason="not camel")
            with pytest.raises(ApiError, match="reason") as info:
                await request_json(api_client, "PUT", status_path, body=bad)
            assert info.value.status == 422
