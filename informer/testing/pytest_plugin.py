"""pytest plugin (entry point ``kube_informer``): a real control plane as fixtures.

Fixtures (async ones run on anyio's test runner, so tests use ``@pytest.mark.anyio``):

``anyio_backend`` (session)
    ``"asyncio"``. Session-scoped because ``control_plane`` and ``api_client`` are
    session-scoped async fixtures: anyio requires the backend fixture to be at least as
    wide, and then every test and fixture of the session shares one event loop.
``control_plane`` (session)
    One :class:`~informer.testing.control_plane.ControlPlane` with default flags for the
    whole session, started on first use. Tests needing other flags start their own.
    Under pytest-xdist every worker is a session of its own, so each worker starts (and
    alone uses) its own control plane: tests of different workers never share a server.
    Binaries come from ``$KUBEBUILDER_ASSETS``; without them the fixture errors with
    instructions.
``api_client`` (session)
    A cluster-admin kubernetes_asyncio ``ApiClient`` on ``control_plane``.
``namespace`` (function)
    A fresh namespace (name derived from the test name plus a random suffix), deleted
    after the test. There is no namespace controller, so deleted namespaces stay
    ``Terminating``; names never repeat.

``handler_failures`` (function)
    The list of :class:`informer._failures.Failure` absorbed during the test (a raising
    event handler, reconcile, transform or callback). Requesting it declares that the
    test expects failures and checks them itself.

**Undeclared access fails tests.** A controller that declares its ``writes``
(``informer.rbac``) raises :class:`~informer.UndeclaredAccess` on a client call they do
not cover (strict mode, set through ``KUBE_INFORMER_ACCESS_CHECK`` so the runners a test
starts inherit it), and the absorbed reconcile failure fails the test.

Tests using ``control_plane`` (directly or through these fixtures) get the
``control_plane`` marker, so ``-m "not control_plane"`` deselects them.

**Absorbed failures fail tests.** The library logs an exception raised by an event
handler, a reconcile, a transform or a callback and carries on (as it must in
production), which would hide a failed ``assert`` inside a handler. So every test is
watched: if anything was absorbed during it, the test fails at teardown with the list,
unless it requests ``handler_failures`` or is marked
``@pytest.mark.allow_handler_failures`` (like pytest's unraisable-exception check).

**Debug logs are quiet.** Unless something configured structlog before the session (your
``conftest.py``'s ``pytest_configure`` running first, say), the plugin keeps structlog's
default output but drops events below ``info`` (the library logs every list, watch and
reconcile at debug level, which would bury a failure report).
``--kube-informer-log-level=debug`` (or the ini option ``kube_informer_log_level``)
shows them; ``structlog.testing.capture_logs`` still captures every level.

This module is imported by every pytest run in an environment where kube-informer is
installed: it imports nothing heavy (no cryptography, no kubernetes_asyncio) at import time.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .control_plane._plane import ControlPlane

__all__ = ["api_client", "control_plane", "handler_failures", "namespace"]

_MARKER = "control_plane"
_ALLOW = "allow_handler_failures"
_LOG_LEVEL = "kube_informer_log_level"
_LEVELS = ("debug", "info", "warning", "error", "critical")


def pytest_addoption(parser: pytest.Parser) -> None:
    help_text = (
        "lowest structlog level printed during tests (default: info; the library's debug "
        "logs are dropped)"
    )
    parser.addoption("--kube-informer-log-level", dest=_LOG_LEVEL, choices=_LEVELS, help=help_text)
    parser.addini(_LOG_LEVEL, help_text, default="info")


def quiet_logs(level: str) -> bool:
    """Drop structlog events below ``level`` (keeping the default processors), unless
    structlog was configured already; returns whether it configured it."""
    import structlog

    if structlog.is_configured():
        return False
    if level not in _LEVELS:
        raise pytest.UsageError(f"{_LOG_LEVEL}={level!r}: pick one of {', '.join(_LEVELS)}")
    dropped = frozenset(_LEVELS[: _LEVELS.index(level)])

    def drop_below_level(logger: Any, method_name: str, event_dict: Any) -> Any:
        if method_name in dropped:
            raise structlog.DropEvent
        return event_dict

    processors = structlog.get_config()["processors"]
    structlog.configure(processors=[drop_below_level, *processors])
    return True


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{_MARKER}: needs the local kube-apiserver + etcd (kube-informer)"
    )
    config.addinivalue_line(
        "markers",
        f"{_ALLOW}: the test expects event handlers/reconciles to raise (kube-informer "
        "otherwise fails a test in which the library absorbed an exception)",
    )
    quiet_logs(config.getoption(_LOG_LEVEL) or config.getini(_LOG_LEVEL))
    strict_access_checks()
    # Registered now, after anyio's plugin, so its session scope wins (see the module).
    from . import _pytest_backend

    if not config.pluginmanager.is_registered(_pytest_backend):
        config.pluginmanager.register(_pytest_backend, "kube_informer_anyio_backend")


def strict_access_checks() -> None:
    """A controller's call its declared writes do not cover raises in tests (and in the
    runners they start, through the environment), unless the environment says otherwise
    (``KUBE_INFORMER_ACCESS_CHECK=warn``)."""
    import os

    from .._rbac.guard import ENV_VAR

    os.environ.setdefault(ENV_VAR, "strict")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _MARKER in getattr(item, "fixturenames", ()):
            item.add_marker(_MARKER)


@pytest.fixture
def handler_failures(_absorbed_failures: list[Any]) -> list[Any]:
    """Failures absorbed during this test; requesting it allows them."""
    return _absorbed_failures


@pytest.fixture(autouse=True)
def _absorbed_failures(request: pytest.FixtureRequest) -> Iterator[list[Any]]:
    """Collect absorbed failures; fail the test at teardown unless it allows them."""
    from .._failures import add_failure_hook

    failures: list[Any] = []
    remove = add_failure_hook(failures.append)
    try:
        yield failures
    finally:
        remove()
    allowed = (
        request.node.get_closest_marker(_ALLOW) is not None
        or "handler_failures" in request.fixturenames
    )
    if failures and not allowed:
        shown = "\n".join(f"  - {f}" for f in failures[:10])
        more = f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else ""
        pytest.fail(
            f"{len(failures)} exception(s) raised inside event handlers/reconciles were "
            f"absorbed by kube-informer during this test:\n{shown}{more}\n"
            f"(request the `handler_failures` fixture or mark the test "
            f"@pytest.mark.{_ALLOW} if they are expected)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
async def control_plane() -> AsyncIterator[ControlPlane]:
    """A running etcd + kube-apiserver shared by the whole session (default flags)."""
    from .control_plane._plane import ControlPlane

    async with ControlPlane() as cp:
        yield cp


@pytest.fixture(scope="session")
async def api_client(control_plane: ControlPlane) -> AsyncIterator[Any]:
    """A cluster-admin kubernetes_asyncio ``ApiClient`` on the session control plane."""
    async with control_plane.api_client() as client:
        yield client


@pytest.fixture
async def namespace(api_client: Any, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The name of a namespace created for this test and deleted after it."""
    from kubernetes_asyncio.client import CoreV1Api, V1Namespace, V1ObjectMeta
    from kubernetes_asyncio.client.exceptions import ApiException

    name = namespace_name(request.node.name)
    core = CoreV1Api(api_client)
    annotations = {"kube-informer.test/nodeid": request.node.nodeid[-250:]}
    await core.create_namespace(
        V1Namespace(metadata=V1ObjectMeta(name=name, annotations=annotations))
    )
    try:
        yield name
    finally:
        try:
            await core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def namespace_name(test_name: str) -> str:
    """A valid, unique namespace name (DNS-1123 label) derived from a test's name."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:48].rstrip("-")
    return f"{slug or 'test'}-{secrets.token_hex(4)}"
