"""pytest plugin (entry point ``kube_informer``): a real control plane as fixtures.

**Opt-in.** pytest loads the plugin in every environment where kube-informer is installed,
but it changes nothing in a suite that does not use it: no autouse fixture, no
``anyio_backend`` override, no log configuration. It acts on

- the tests that use its fixtures (below) or carry the marker
  ``@pytest.mark.kube_informer``: the absorbed-failure check, quiet debug logs;
- every test of a suite whose pytest configuration says ``kube_informer = true`` (e.g.
  ``[tool.pytest.ini_options]`` in ``pyproject.toml``): the absorbed-failure check on
  every test, quiet debug logs for the session, a session-wide ``anyio_backend``
  (``"asyncio"``: one event loop shared by every test and fixture) and a session-scoped
  ``api_client``.

``-p no:kube_informer`` unloads the plugin altogether (its fixtures then do not exist).

Fixtures (async ones run on anyio's test runner, so tests use ``@pytest.mark.anyio``):

``control_plane`` (session)
    One :class:`~informer.testing.control_plane.ControlPlane` with default flags for the
    whole session, started on first use, on an event loop of its own (a thread), so it
    serves tests of any anyio backend and event-loop scope. Tests needing other flags
    start their own. Under pytest-xdist every worker is a session of its own, so each
    worker starts (and alone uses) its own control plane. Binaries are found as
    :mod:`informer.testing.envtest` says (no environment variable needed after
    ``python -m informer.testing.envtest install``); without them the fixture errors
    with instructions. With ``kube_informer_controller_manager = true`` (or
    ``--kube-informer-controller-manager``) it also runs kube-controller-manager.
``gc_control_plane`` (session)
    Another control plane, running kube-controller-manager (the garbage collector and
    the namespace controller: owner references cascade, deleted namespaces go away), for
    the tests of deletion paths; started on first use.
``api_client``
    A cluster-admin kubernetes_asyncio ``ApiClient`` on ``control_plane``: one per test,
    or one for the session with ``kube_informer = true``.
``namespace`` (function)
    A fresh namespace (name derived from the test name plus a random suffix), deleted
    after the test (it stays ``Terminating`` unless kube-controller-manager runs; names
    never repeat).
``handler_failures`` (function)
    The list of :class:`informer._failures.Failure` absorbed during the test (a raising
    event handler, reconcile, transform or callback). Requesting it declares that the
    test expects failures and checks them itself.

**Undeclared access fails tests** in a suite that turns the plugin on
(``kube_informer = true``): a controller that declares its ``writes``
(``informer.rbac``) raises :class:`~informer.rbac.UndeclaredAccess` on a client call they
do not cover (strict mode, set through ``KUBE_INFORMER_ACCESS_CHECK`` so the runners a
test starts inherit it), and the absorbed reconcile failure fails the test. A suite that
only uses the fixtures sets ``KUBE_INFORMER_ACCESS_CHECK=strict`` itself if it wants that.

Tests using ``control_plane`` or ``gc_control_plane`` (directly or through these
fixtures) get the ``control_plane`` marker, so ``-m "not control_plane"`` deselects them.

**Absorbed failures fail tests.** The library logs an exception raised by an event
handler, a reconcile, a transform or a callback and carries on (as it must in
production), which would hide a failed ``assert`` inside a handler. So a test the plugin
acts on fails at teardown, listing them, if anything was absorbed during it, unless it
requests ``handler_failures`` or is marked ``@pytest.mark.allow_handler_failures``
(every failure allowed) or ``@pytest.mark.allow_handler_failures(exceptions=Conflict)``
(that type, or a tuple of types, allowed; others still fail the test), like pytest's
unraisable-exception check. (A keyword: pytest takes a lone class passed positionally to
a marker for the object it decorates.)

**Debug logs are quiet.** Unless something configured structlog already (your
``conftest.py``, say), the plugin keeps structlog's default output but drops events
below ``info`` (the library logs every list, watch and reconcile at debug level, which
would bury a failure report): for the session with ``kube_informer = true``, else during
each test it acts on (structlog's defaults are restored after it).
``--kube-informer-log-level=debug`` (or the ini option ``kube_informer_log_level``)
shows them; ``structlog.testing.capture_logs`` still captures every level.

This module is imported by every pytest run in an environment where kube-informer is
installed: it imports nothing heavy (no cryptography, no kubernetes_asyncio) at import time.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .control_plane._plane import ControlPlane

__all__ = [
    "api_client",
    "control_plane",
    "gc_control_plane",
    "handler_failures",
    "namespace",
]

_SWITCH = "kube_informer"
_MARKER = "control_plane"
_ALLOW = "allow_handler_failures"
_LOG_LEVEL = "kube_informer_log_level"
_CONTROLLER_MANAGER = "kube_informer_controller_manager"
_LEVELS = ("debug", "info", "warning", "error", "critical")
_PLANES = ("control_plane", "gc_control_plane")
_FIXTURES = (*_PLANES, "api_client", "namespace", "handler_failures")
_PER_TEST = "_kube_informer_test"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _SWITCH,
        "turn kube-informer's pytest plugin on for every test: absorbed-failure check, "
        "session-wide asyncio anyio_backend, quiet debug logs (default: off; tests using "
        "its fixtures or the kube_informer marker get the check either way)",
        type="bool",
        default=False,
    )
    help_text = (
        "lowest structlog level printed during tests (default: info; the library's debug "
        "logs are dropped)"
    )
    parser.addoption("--kube-informer-log-level", dest=_LOG_LEVEL, choices=_LEVELS, help=help_text)
    parser.addini(_LOG_LEVEL, help_text, default="info")
    cm_help = "the control_plane fixture also runs kube-controller-manager (GC, namespaces)"
    parser.addoption(
        "--kube-informer-controller-manager",
        dest=_CONTROLLER_MANAGER,
        action="store_true",
        default=None,
        help=cm_help,
    )
    parser.addini(_CONTROLLER_MANAGER, cm_help, type="bool", default=False)


def suite_wide(config: pytest.Config) -> bool:
    """Whether the suite turned the plugin on for every test (``kube_informer = true``)."""
    return bool(config.getini(_SWITCH))


def _log_level(config: pytest.Config) -> str:
    level = str(config.getoption(_LOG_LEVEL) or config.getini(_LOG_LEVEL))
    if level not in _LEVELS:
        raise pytest.UsageError(f"{_LOG_LEVEL}={level!r}: pick one of {', '.join(_LEVELS)}")
    return level


def quiet_logs(level: str) -> bool:
    """Drop structlog events below ``level`` (keeping the default processors), unless
    structlog was configured already; returns whether it configured it."""
    import structlog

    if structlog.is_configured():
        return False
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
        f"{_SWITCH}: kube-informer's checks for this test: it fails when the library "
        "absorbed an exception (a raising handler or reconcile) during it",
    )
    config.addinivalue_line(
        "markers",
        f"{_ALLOW}(exceptions=None): the test expects event handlers/reconciles to raise "
        "(these exception types, a type or a tuple; any by default); kube-informer "
        "otherwise fails it",
    )
    level = _log_level(config)
    if not suite_wide(config):
        return
    quiet_logs(level)
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    everything = suite_wide(config)
    for item in items:
        names: list[str] | None = getattr(item, "fixturenames", None)
        if names is None:
            continue
        if any(plane in names for plane in _PLANES):
            item.add_marker(_MARKER)
        acts = (
            everything
            or item.get_closest_marker(_SWITCH) is not None
            or any(name in names for name in _FIXTURES)
        )
        if acts and _PER_TEST not in names:
            names.insert(0, _PER_TEST)  # set up first, torn down last


@pytest.fixture
def handler_failures(_absorbed_failures: list[Any]) -> list[Any]:
    """Failures absorbed during this test; requesting it allows them."""
    return _absorbed_failures


@pytest.fixture
def _absorbed_failures() -> list[Any]:
    """The failures the plugin collects during a test (filled by ``_kube_informer_test``)."""
    return []


@pytest.fixture
def _kube_informer_test(
    request: pytest.FixtureRequest, _absorbed_failures: list[Any]
) -> Iterator[None]:
    """The plugin's checks around one test: absorbed failures collected (and the test
    failed at teardown unless allowed); debug logs quiet during it unless the suite
    turned the plugin on (then they are quiet for the session)."""
    import structlog

    from .._failures import add_failure_hook

    configured = False if suite_wide(request.config) else quiet_logs(_log_level(request.config))
    remove = add_failure_hook(_absorbed_failures.append)
    try:
        yield
    finally:
        remove()
        if configured:
            structlog.reset_defaults()
    unexpected = _unexpected(request, _absorbed_failures)
    if unexpected:
        shown = "\n".join(f"  - {f}" for f in unexpected[:10])
        more = f"\n  ... and {len(unexpected) - 10} more" if len(unexpected) > 10 else ""
        pytest.fail(
            f"{len(unexpected)} exception(s) raised inside event handlers/reconciles were "
            f"absorbed by kube-informer during this test:\n{shown}{more}\n"
            f"(request the `handler_failures` fixture or mark the test "
            f"@pytest.mark.{_ALLOW}, optionally with the expected exception types, if "
            "they are expected)",
            pytrace=False,
        )


def _unexpected(request: pytest.FixtureRequest, failures: Sequence[Any]) -> list[Any]:
    """The failures neither ``handler_failures`` nor an ``allow_handler_failures`` marker
    allows."""
    if not failures or "handler_failures" in request.fixturenames:
        return []
    allowed: tuple[type[BaseException], ...] = ()
    for marker in request.node.iter_markers(_ALLOW):
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.{_ALLOW} takes its exception types as exceptions=(A, B) or "
                f"exceptions=A (a lone class as an argument would be taken for the "
                f"decorated object), got {marker.args!r} ({request.node.nodeid})"
            )
        if "exceptions" not in marker.kwargs:
            return []  # everything allowed
        types = marker.kwargs["exceptions"]
        for cls in types if isinstance(types, tuple | list) else (types,):
            if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                raise pytest.UsageError(
                    f"@pytest.mark.{_ALLOW}(exceptions=...) takes exception types, got "
                    f"{cls!r} ({request.node.nodeid})"
                )
            allowed += (cls,)
    return [f for f in failures if not isinstance(f.error, allowed)]


@pytest.fixture(scope="session")
def control_plane(pytestconfig: pytest.Config) -> Iterator[ControlPlane]:
    """A running etcd + kube-apiserver shared by the whole session (default flags), with
    kube-controller-manager when ``kube_informer_controller_manager`` is set."""
    option = pytestconfig.getoption(_CONTROLLER_MANAGER)
    with_cm = bool(pytestconfig.getini(_CONTROLLER_MANAGER) if option is None else option)
    yield from _serve_plane(controller_manager=with_cm)


@pytest.fixture(scope="session")
def gc_control_plane() -> Iterator[ControlPlane]:
    """A control plane running kube-controller-manager (garbage collector, namespace and
    service-account controllers), shared by the session's tests of deletion paths."""
    yield from _serve_plane(controller_manager=True)


def _serve_plane(*, controller_manager: bool) -> Iterator[ControlPlane]:
    """A ControlPlane started and stopped on an event loop of its own (a thread that
    lives as long as it does), so any test's event loop can use it."""
    from anyio.from_thread import start_blocking_portal

    from .control_plane._plane import ControlPlane

    with start_blocking_portal() as portal:
        cp = ControlPlane(controller_manager=controller_manager)
        portal.call(cp.start)
        try:
            yield cp
        finally:
            portal.call(cp.stop)


def _api_client_scope(fixture_name: str, config: pytest.Config) -> Any:
    return "session" if suite_wide(config) else "function"


@pytest.fixture(scope=_api_client_scope)
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
