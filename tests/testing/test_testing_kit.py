"""The operator testing kit of ``informer.testing``: ``install_crds``, ``run_controllers``,
``eventually``, and the pytest plugin's quiet debug logs.

``install_crds`` matches controller-runtime envtest's ``InstallCRDs`` + ``WaitForCRDs``
(``pkg/envtest/crd.go``: apply, then poll until every served version is in discovery);
here "served" is stricter, a ``list`` answering 200, since the first requests after
discovery can still answer 429 "storage is (re)initializing". ``eventually`` is Gomega's
``Eventually(...).Should(Succeed())``: the function is polled until it stops failing,
and the last failure is reported.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import yaml

import informer.testing._crds as crds_module
from informer import (
    ApiError,
    Client,
    Conflict,
    Controller,
    Manager,
    NotFound,
    Resource,
    Result,
    ServerError,
    TooManyRequests,
    request_json,
)
from informer.resources import CONFIGMAPS, CUSTOM_RESOURCE_DEFINITIONS
from informer.testing import eventually, install_crds, run_controllers

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def crd(group: str, kind: str, *, scope: str = "Namespaced", versions: tuple[str, ...] = ("v1",)):
    plural = f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [
                {
                    "name": v,
                    "served": True,
                    "storage": i == len(versions) - 1,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
                for i, v in enumerate(versions)
            ],
        },
    }


def fresh_group() -> str:
    return f"t{secrets.token_hex(4)}.kit.test"


async def delete_crds(api: Any, *docs: dict[str, Any]) -> None:
    with anyio.CancelScope(shield=True):
        for doc in docs:
            await request_json(
                api, "DELETE", CUSTOM_RESOURCE_DEFINITIONS.path(doc["metadata"]["name"])
            )


# -------------------------------------------------------------------------- install_crds


async def test_install_crds_returns_once_every_version_is_served(
    api_client: Any, namespace: str
) -> None:
    """From a dict: the very first requests after it returns succeed (no 404, no 429),
    for every served version; the storage version's Resource is returned."""
    group = fresh_group()
    doc = crd(group, "Gadget", versions=("v1beta1", "v1"))
    try:
        [resource] = await install_crds(api_client, doc)
        assert resource == Resource(group, "v1", "gadgets", kind="Gadget", namespaced=True)
        client = Client(api_client)
        for version in ("v1beta1", "v1"):
            created = await client.create(
                {
                    "apiVersion": f"{group}/{version}",
                    "kind": "Gadget",
                    "metadata": {"name": f"g-{version}", "namespace": namespace},
                }
            )
            assert created["metadata"]["uid"]
        assert len(await client.list(resource, namespace=namespace)) == 2
        # Installing again is idempotent (server-side apply) and returns at once.
        with anyio.fail_after(5):
            assert await install_crds(api_client, doc) == [resource]
    finally:
        await delete_crds(api_client, doc)


async def test_install_crds_from_files_and_folders(api_client: Any, tmp_path: Path) -> None:
    """A multi-document YAML file and a folder (its .yaml/.yml/.json files by name, but
    a kustomization.yaml: the folders kubebuilder and deploy/ reference have one)."""
    group = fresh_group()
    namespaced = crd(group, "Alpha")
    cluster = crd(group, "Beta", scope="Cluster")
    third = crd(group, "Gamma")
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all([namespaced, None, cluster]))
    (tmp_path / "b.json").write_text(yaml.safe_dump(third))
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml, b.json]\n")  # skipped
    try:
        from_file = await install_crds(api_client, tmp_path / "a.yaml")
        assert [(r.kind, r.namespaced) for r in from_file] == [("Alpha", True), ("Beta", False)]
        from_folder = await install_crds(api_client, [str(tmp_path)])
        assert [r.kind for r in from_folder] == ["Alpha", "Beta", "Gamma"]
        await request_json(api_client, "GET", from_folder[1].path())  # cluster-scoped list
    finally:
        await delete_crds(api_client, namespaced, cluster, third)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param({"kind": "ConfigMap"}, "holds a ConfigMap", id="not-a-crd"),
        pytest.param("/no/such/path.yaml", "neither a file nor a folder", id="missing-path"),
    ],
)
async def test_install_crds_rejects_what_is_not_a_crd(source: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await install_crds(None, source)


async def test_an_invalid_definition_fails_at_once(api_client: Any) -> None:
    bad = crd(fresh_group(), "Broken")
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {"type": "nonsense"}
    with anyio.fail_after(10), pytest.raises(ApiError, match="nonsense") as caught:
        await install_crds(api_client, bad)
    assert caught.value.status == 422


async def test_install_crds_times_out_naming_what_is_not_served(
    api_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resource that keeps answering 429 (storage initialising) is reported with its
    last answer. (The real server answers 429 only briefly: faked.)"""
    group = fresh_group()
    doc = crd(group, "Slow")
    real = crds_module.request_json

    async def storage_initialising(api: Any, method: str, path: str, **kw: Any) -> Any:
        if method == "GET" and group in path:
            raise TooManyRequests("storage is (re)initializing", status=429)
        return await real(api, method, path, **kw)

    monkeypatch.setattr(crds_module, "request_json", storage_initialising)
    try:
        with pytest.raises(TimeoutError) as caught:
            await install_crds(api_client, doc, timeout=0.5)
        assert f"slows.{group}/v1: storage is (re)initializing" in str(caught.value)
    finally:
        await delete_crds(api_client, doc)


# ------------------------------------------------------------------------ run_controllers


class Seen(Controller):
    """Records the ConfigMaps it reconciled; raises for one named ``boom``."""

    def setup(self) -> None:
        self.configmaps = self.watch(CONFIGMAPS)
        self.seen: list[str] = []

    async def reconcile(self, key: str) -> Result | None:
        if key.endswith("/boom"):
            raise RuntimeError("boom")
        self.seen.append(key)
        return None


async def create_configmap(api: Any, namespace: str, name: str) -> None:
    await Client(api).create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
        }
    )


async def test_run_controllers_runs_them_through_a_manager(api_client: Any, namespace: str) -> None:
    async with run_controllers(api_client, Seen, namespace=namespace) as manager:
        assert isinstance(manager, Manager)
        [controller] = manager.controllers
        assert isinstance(controller, Seen) and controller.has_synced()
        await create_configmap(api_client, namespace, "a")
        await eventually(lambda: f"{namespace}/a" in controller.seen)
        run_scope_alive = manager.has_synced()
    assert run_scope_alive
    await create_configmap(api_client, namespace, "after")  # stopped: nobody reconciles
    assert f"{namespace}/after" not in controller.seen
    assert controller.factory.informers[0].reflector.is_watching is False


async def test_run_controllers_one_instance_per_namespace(api_client: Any, namespace: str) -> None:
    other = f"{namespace[:50]}-2"
    await request_json(api_client, "POST", "/api/v1/namespaces", body={"metadata": {"name": other}})
    try:
        async with run_controllers(api_client, Seen, namespace=[namespace, other]) as manager:
            names = sorted(c.name for c in manager.controllers)
            assert names == sorted([f"seen@{namespace}", f"seen@{other}"])
    finally:
        await request_json(api_client, "DELETE", f"/api/v1/namespaces/{other}")


async def test_a_raising_reconcile_is_reported_to_the_test(
    api_client: Any, namespace: str, handler_failures: list[Any]
) -> None:
    """In-process, an exception in a reconcile reaches the plugin (the test would fail
    at teardown without ``handler_failures``)."""
    async with run_controllers(api_client, Seen, namespace=namespace):
        await create_configmap(api_client, namespace, "boom")
        await eventually(lambda: any("boom" in str(f) for f in handler_failures))


@pytest.mark.parametrize(
    ("controllers", "error"),
    [pytest.param((), ValueError, id="none"), pytest.param((object(),), TypeError, id="instance")],
)
async def test_run_controllers_takes_controller_classes(controllers: Any, error: type) -> None:
    with pytest.raises(error):
        async with run_controllers(None, *controllers):
            pass


# ----------------------------------------------------------------------------- eventually


async def test_eventually_polls_until_the_check_passes_and_returns_its_result() -> None:
    calls: list[int] = []

    def sync_check() -> int:
        calls.append(1)
        assert len(calls) >= 3, f"only {len(calls)} calls"
        return len(calls)

    assert await eventually(sync_check, timeout=5) == 3

    async def async_check() -> str:
        calls.append(1)
        await anyio.lowlevel.checkpoint()
        assert len(calls) >= 5
        return "done"

    assert await eventually(async_check, timeout=5) == "done"
    assert await eventually(lambda: None, timeout=5) is None  # an assert-style check


async def test_eventually_reraises_the_last_assertion_error_on_timeout() -> None:
    attempt = 0

    def check() -> None:
        nonlocal attempt
        attempt += 1
        assert attempt < 0, f"attempt {attempt}"

    start = anyio.current_time()
    with pytest.raises(AssertionError, match=r"attempt \d+") as caught:
        await eventually(check, timeout=0.3, interval=0.05)
    assert 0.3 <= anyio.current_time() - start < 1.0
    assert f"attempt {attempt}" in str(caught.value)  # the last one, not the first
    assert attempt > 3
    assert any("still failing after 0.3s" in note for note in caught.value.__notes__)


async def test_a_false_result_fails_and_other_exceptions_propagate_at_once() -> None:
    with pytest.raises(AssertionError, match="returned False"):
        await eventually(lambda: False, timeout=0.2)

    calls = 0

    def broken() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("not an assertion")

    with anyio.fail_after(1), pytest.raises(KeyError):
        await eventually(broken, timeout=30)
    assert calls == 1


async def test_api_errors_are_retried_by_default(api_client: Any, namespace: str) -> None:
    """A check reading an object that does not exist yet keeps polling (``NotFound``);
    ``retry_on`` replaces the default, so a ``NotFound`` can fail at once."""
    client = Client(api_client)

    async def create_later() -> None:
        await anyio.sleep(0.3)
        await create_configmap(api_client, namespace, "later")

    async with anyio.create_task_group() as tg:
        tg.start_soon(create_later)
        found = await eventually(lambda: client.get(CONFIGMAPS, "later", namespace=namespace))
    assert found["metadata"]["name"] == "later"
    with pytest.raises(AssertionError, match="still raised NotFound") as caught:
        await eventually(lambda: client.get(CONFIGMAPS, "never", namespace=namespace), timeout=0.2)
    assert isinstance(caught.value.__cause__, NotFound)
    with anyio.fail_after(5), pytest.raises(NotFound):
        await eventually(
            lambda: client.get(CONFIGMAPS, "never", namespace=namespace),
            timeout=30,
            retry_on=(AssertionError,),
        )


@pytest.mark.parametrize(
    "error",
    [
        NotFound("gone", status=404),
        Conflict("the object has been modified", status=409),
        TooManyRequests("storage is (re)initializing", status=429),
        ServerError("the server was unable to return a response in the time allotted", status=504),
    ],
    ids=["not-found", "conflict", "too-many-requests", "server-timeout"],
)
async def test_each_routine_api_error_is_retried(error: ApiError) -> None:
    calls = 0

    def check() -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise error
        return calls

    with anyio.fail_after(5):
        assert await eventually(check, timeout=5) == 3


async def test_cheap_checks_poll_at_least_every_tenth_of_a_second() -> None:
    """The default ``interval`` caps the backoff at 0.1 s: 1 s of polling is > 10 calls."""
    calls = 0

    def check() -> None:
        nonlocal calls
        calls += 1
        raise AssertionError(calls)

    with pytest.raises(AssertionError):
        await eventually(check, timeout=1.0)
    assert calls >= 10, calls


async def test_a_check_still_running_at_the_deadline_is_cancelled() -> None:
    with anyio.fail_after(2), pytest.raises(AssertionError, match="still running"):
        await eventually(anyio.sleep_forever, timeout=0.2)


@pytest.mark.parametrize("kwargs", [{"timeout": 0}, {"interval": -1}], ids=["timeout", "interval"])
async def test_eventually_rejects_bad_bounds(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        await eventually(lambda: None, **kwargs)


# ---------------------------------------------------------------------------- quiet logs

USER_TESTS = """
import structlog
from structlog.testing import capture_logs

log = structlog.get_logger("informer.somewhere")


def test_logs():
    log.debug("hidden-debug")
    log.info("shown-info")
    with capture_logs() as captured:
        log.debug("captured-debug")
    assert [e["event"] for e in captured] == ["captured-debug"]
"""


def run_user_tests(tmp_path: Path, *args: str, ini: str = "", marker: str = "") -> str:
    (tmp_path / "pytest.ini").write_text(f"[pytest]\n{ini}")
    source = textwrap.dedent(USER_TESTS)
    if marker:
        source = source.replace("def test_logs():", f"{marker}\ndef test_logs():")
    (tmp_path / "test_user.py").write_text("import pytest\n" + source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize(
    ("args", "ini", "marker", "debug_shown"),
    [
        pytest.param((), "kube_informer = true\n", "", False, id="suite-wide"),
        pytest.param((), "", "@pytest.mark.kube_informer", False, id="marked"),
        pytest.param((), "", "", True, id="plugin-not-used"),
        pytest.param(
            ("--kube-informer-log-level=debug",), "kube_informer = true\n", "", True, id="debug"
        ),
    ],
)
def test_debug_logs_are_quiet_unless_asked_for(
    tmp_path: Path, args: tuple[str, ...], ini: str, marker: str, debug_shown: bool
) -> None:
    """Quiet where the plugin acts (a suite that turned it on, a marked test); a test the
    plugin does not act on sees structlog untouched."""
    out = run_user_tests(tmp_path, *args, ini=ini, marker=marker)
    assert "shown-info" in out
    assert ("hidden-debug" in out) is debug_shown
