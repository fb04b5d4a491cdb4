"""Access declarations and the run-time guard of a controller's client calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import structlog

from informer import Controller, SharedInformerFactory
from informer._rbac.guard import AccessGuard
from informer.rbac import Access, UndeclaredAccess, access_mode, set_access_mode
from informer.resources import CONFIGMAPS, DEPLOYMENTS, NAMESPACES, SECRETS


@pytest.fixture
def mode() -> Iterator[Any]:
    before = access_mode()
    yield set_access_mode
    set_access_mode(None if before == "strict" else before)


def test_the_test_run_is_strict() -> None:
    assert access_mode() == "strict"  # the pytest plugin's


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((CONFIGMAPS,), {}, ValueError, "verbs must be among"),
        ((CONFIGMAPS, "eat"), {}, ValueError, r"got \['eat'\]"),
        ((CONFIGMAPS, "create"), {"names": ["a"]}, ValueError, "cannot limit create by name"),
        (("configmaps", "get"), {}, TypeError, "the first argument is a Resource"),
    ],
    ids=["no-verbs", "unknown-verb", "create-by-name", "not-a-resource"],
)
def test_malformed_access_is_refused(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Access(*args, **kwargs)


def test_access_covers_verb_resource_subresource_and_name() -> None:
    grant = Access(DEPLOYMENTS, "update", "patch", names=["web"])
    assert grant.covers("patch", DEPLOYMENTS, None, "web")
    assert not grant.covers("patch", DEPLOYMENTS, None, "api")
    assert not grant.covers("delete", DEPLOYMENTS, None, "web")
    assert not grant.covers("patch", DEPLOYMENTS, "status", "web")
    assert Access(DEPLOYMENTS, "patch", subresource="status").rbac_resource == (
        "deployments/status"
    )


def guard() -> AccessGuard:
    return AccessGuard(
        "demo",
        writes=[Access(CONFIGMAPS, "create")],
        reads=[Access(SECRETS, "get")],
        watched=lambda: [DEPLOYMENTS],
    )


@pytest.mark.parametrize(
    ("verb", "resource", "subresource", "allowed"),
    [
        ("create", CONFIGMAPS, None, True),
        ("update", CONFIGMAPS, None, False),
        ("get", SECRETS, None, True),
        ("list", SECRETS, None, False),
        ("list", DEPLOYMENTS, None, True),  # watched: readable
        ("get", DEPLOYMENTS, "scale", False),
        ("patch", DEPLOYMENTS, None, False),
    ],
    ids=[
        "declared-write",
        "undeclared-write",
        "declared-read",
        "undeclared-read",
        "watched-read",
        "watched-subresource",
        "watched-write",
    ],
)
def test_guard_allows_what_is_declared_or_watched(
    verb: str, resource: Any, subresource: str | None, allowed: bool
) -> None:
    assert guard().allows(verb, resource, subresource=subresource, name="x") is allowed


def test_strict_mode_raises_naming_what_to_declare(mode: Any) -> None:
    mode("strict")
    with pytest.raises(UndeclaredAccess) as caught:
        guard()("patch", DEPLOYMENTS, subresource="scale", name="web", namespace="ns")
    assert str(caught.value).startswith(
        "controller demo: patch deployments/scale.apps web in namespace 'ns' is not declared"
    )
    assert caught.value.verb == "patch" and caught.value.resource == "deployments/scale.apps"


def test_warn_mode_logs_once_per_verb_and_resource(mode: Any) -> None:
    mode("warn")
    g = guard()
    with structlog.testing.capture_logs() as logs:
        for name in ("a", "b"):
            g("delete", CONFIGMAPS, name=name, namespace="ns")
        g("create", CONFIGMAPS, name="c", namespace="ns")  # declared
    assert [(e["event"], e["verb"], e["resource"], e["log_level"]) for e in logs] == [
        ("rbac.undeclared", "delete", "configmaps", "warning")
    ]


def test_off_mode_checks_nothing(mode: Any) -> None:
    mode("off")
    guard()("delete", NAMESPACES, name="kube-system")


class Undeclared(Controller):
    async def reconcile(self, key: str) -> None: ...


class ReadOnly(Controller):
    writes: ClassVar[tuple[Access, ...]] = ()

    def setup(self) -> None:
        self.watch(CONFIGMAPS)

    async def reconcile(self, key: str) -> None: ...


@pytest.mark.anyio
async def test_a_controller_without_declarations_is_not_checked() -> None:
    controller = Undeclared(SharedInformerFactory(None), None)
    assert controller.client._check.__name__ == "_no_check"


@pytest.mark.anyio
async def test_a_declaring_controllers_client_refuses_before_any_request() -> None:
    controller = ReadOnly(SharedInformerFactory(None), None)  # no API client: nothing sent
    with pytest.raises(UndeclaredAccess, match="controller read-only: delete configmaps cm"):
        await controller.client.delete(CONFIGMAPS, "cm", namespace="ns")
    with pytest.raises(UndeclaredAccess, match="get secrets"):
        await controller.client.get(SECRETS, "s", namespace="ns", cached=False)


def test_declarations_are_checked_when_the_controller_is_built() -> None:
    class Wrong(Controller):
        writes = (Access(CONFIGMAPS, "get"),)

        async def reconcile(self, key: str) -> None: ...

    with pytest.raises(ValueError, match=r"Wrong.writes: .* has verbs \['get'\] that belong"):
        Wrong(SharedInformerFactory(None), None)
