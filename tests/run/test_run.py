"""``python -m informer.run`` as a subprocess: error paths, exit codes, clean shutdown.

Every failure must be one ``error: ...`` line on stderr with no traceback and the
documented exit code. The runs against the real control plane wait for log lines on the
subprocess's stdout (JSON lines: stdout is not a terminal), never for fixed delays.
"""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import orjson
import pytest
from api_helpers import write_kubeconfig
from prometheus_client.parser import text_string_to_metric_families
from runner_harness import Runner, run_cli, run_to_exit, start_runner

from informer._rest.request import request_json
from informer.run import ExitCode, build_parser
from informer.run.runner import SHUTDOWN_GRACE

pytestmark = pytest.mark.anyio

TIMEOUT = 30.0

USER_CONTROLLERS = '''
"""A user controller file, loaded by path."""
import anyio
import structlog

from informer import Controller, Result
from informer.resources import CONFIGMAPS

log = structlog.get_logger("user")


class ConfigMapLogger(Controller):
    name = "cm-logger"

    def setup(self) -> None:
        self.configmaps = self.watch(CONFIGMAPS)

    async def reconcile(self, key: str) -> Result | None:
        if key.endswith("/stuck"):
            log.info("stuck.started")
            await anyio.sleep(60)
        if key.endswith("/slow"):
            log.info("slow.started")
            await anyio.sleep(1.0)
            log.info("slow.finished")
        obj = self.configmaps.lister().get_by_key(key)
        log.info(
            "reconciled",
            exists=obj is not None,
            managed_fields=bool(obj and obj["metadata"].get("managedFields")),
            kind=obj and obj.get("kind"),
        )
        return None


class _Helper:  # not a controller: ignored
    pass
'''


def error_lines(stderr: str) -> list[str]:
    """The lines of the runner's stderr that are not JSON log lines."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("{")]


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: ExitCode) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    return lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------ command line


def test_help(tmp_path: Path) -> None:
    proc = run_cli(["--help"], tmp_path)
    assert proc.returncode == 0
    for flag in (
        "--kubeconfig",
        "--context",
        "--namespace",
        "--controllers",
        "--workers",
        "--log-format",
        "--log-level",
        "--startup-timeout",
        "--gc-freeze",
        "--leader-elect",
        "--metrics-bind-address",
        "--metrics-secure",
        "--metrics-cert-dir",
        "--health-probe-bind-address",
    ):
        assert flag in proc.stdout
    assert "exit codes" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--metrics-bind-address", "localhost"],
        ["--metrics-bind-address", ":99999"],
        ["--health-probe-bind-address", "::1:80"],
        ["--leader-election-id", "Not_Valid"],
        ["--leader-election-namespace", "UPPER"],
        ["--namespace", "bad_name"],
        ["--workers", "0"],
        ["--startup-timeout", "-1"],
        ["--log-format", "xml"],
    ],
    ids=lambda a: a[0].lstrip("-") if isinstance(a, list) else str(a),
)
def test_invalid_flag_values_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    proc = run_cli(args, tmp_path)
    assert proc.returncode == ExitCode.USAGE
    assert "Traceback" not in proc.stderr
    assert "error: argument" in proc.stderr


def test_valid_operability_flags_parse() -> None:
    ns = build_parser().parse_args(
        [
            "--leader-election-id",
            "my-operator.example.com",
            "--leader-election-namespace",
            "kube-system",
            "--metrics-bind-address",
            "0",
            "--health-probe-bind-address",
            "[::1]:8081",
            "-n",
            "a,b",
            "--namespace",
            "c",
            "--log-level",
            "DEBUG",
        ]
    )
    assert ns.leader_election_id == "my-operator.example.com"
    assert ns.health_probe_bind_address == "[::1]:8081"
    assert ns.namespace == [["a", "b"], ["c"]]
    assert ns.log_level == "debug"
    assert ns.startup_timeout == 30.0


@pytest.mark.parametrize(
    ("flags", "shared"),
    [pytest.param([], False, id="default"), pytest.param(["--share-strings"], True, id="shared")],
)
def test_share_strings_flag_sets_the_transform(flags: list[str], shared: bool) -> None:
    from informer.run.runner import _manager

    manager = _manager(build_parser().parse_args(flags), [], None)
    assert manager.transform is not None
    a, b = (
        manager.transform(
            orjson.loads(
                orjson.dumps({"metadata": {"name": n, "namespace": "shop", "managedFields": [{}]}})
            )
        )
        for n in ("a", "b")
    )
    assert "managedFields" not in a["metadata"]  # stripped either way
    assert (a["metadata"]["namespace"] is b["metadata"]["namespace"]) is shared


# --------------------------------------------------------------------- controller targets


def test_unknown_controller_name(tmp_path: Path) -> None:
    line = assert_one_line_error(run_cli(["--controllers", "nope"], tmp_path), ExitCode.TARGET)
    assert "'nope'" in line


def test_unknown_module(tmp_path: Path) -> None:
    line = assert_one_line_error(run_cli(["no_such_module_xyz"], tmp_path), ExitCode.TARGET)
    assert "'no_such_module_xyz'" in line


def test_unknown_attribute(tmp_path: Path) -> None:
    (tmp_path / "userctl.py").write_text(USER_CONTROLLERS)
    line = assert_one_line_error(run_cli(["userctl:Missing"], tmp_path), ExitCode.TARGET)
    assert "'userctl'" in line and "'Missing'" in line
    line = assert_one_line_error(run_cli(["userctl:_Helper"], tmp_path), ExitCode.TARGET)
    assert "not a Controller" in line


def test_missing_file(tmp_path: Path) -> None:
    line = assert_one_line_error(run_cli(["missing/ctl.py"], tmp_path), ExitCode.TARGET)
    assert "'missing/ctl.py'" in line


def test_file_without_controllers(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("X = 1\n")
    line = assert_one_line_error(run_cli(["empty.py"], tmp_path), ExitCode.TARGET)
    assert "'empty.py'" in line


def test_file_that_does_not_import(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def oops(:\n")
    line = assert_one_line_error(run_cli(["broken.py"], tmp_path), ExitCode.TARGET)
    assert "'broken.py'" in line and "SyntaxError" in line


# ----------------------------------------------------------------------- configuration


def test_missing_kubeconfig(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "config"
    line = assert_one_line_error(run_cli(["--kubeconfig", str(missing)], tmp_path), ExitCode.CONFIG)
    assert str(missing) in line and "does not exist" in line


def test_no_kubeconfig_anywhere(tmp_path: Path) -> None:
    line = assert_one_line_error(run_cli([], tmp_path), ExitCode.CONFIG)
    assert str(tmp_path / ".kube" / "config") in line


@pytest.mark.parametrize(
    "content",
    ["{not: yaml: [", "apiVersion: v1\nkind: Config\n", "just a string\n"],
    ids=["garbage", "no-context", "scalar"],
)
def test_invalid_kubeconfig(tmp_path: Path, content: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    line = assert_one_line_error(run_cli(["--kubeconfig", str(path)], tmp_path), ExitCode.CONFIG)
    assert str(path) in line


def test_unknown_context(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:1", {"token": "t"})
    line = assert_one_line_error(
        run_cli(["--kubeconfig", str(path), "--context", "nope"], tmp_path), ExitCode.CONFIG
    )
    assert "nope" in line


def test_a_refused_connection_fails_at_once(tmp_path: Path) -> None:
    """Nothing listens on the port: one sentence with the URL and the cause, without
    waiting for --startup-timeout (retrying would only delay the same answer)."""
    port = closed_port()
    path = write_kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{port}", {"token": "t"})
    start = time.monotonic()
    proc = run_cli(["--kubeconfig", str(path), "--startup-timeout", "60"], tmp_path)
    elapsed = time.monotonic() - start
    line = assert_one_line_error(proc, ExitCode.UNREACHABLE)
    assert line == (
        f"error: cannot reach the API server at https://127.0.0.1:{port}: "
        f"connection refused (nothing listens on 127.0.0.1:{port})"
    )
    # Interpreter start-up and imports only (~1 s idle, several on a loaded 2-core
    # machine); a retry until --startup-timeout would take 60 s.
    assert elapsed < 30


def test_a_silent_server_is_retried_until_the_startup_timeout(tmp_path: Path) -> None:
    with socket.socket() as listener:  # accepts the TCP connection, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = int(listener.getsockname()[1])
        path = write_kubeconfig(
            tmp_path / "kubeconfig", f"https://127.0.0.1:{port}", {"token": "t"}
        )
        start = time.monotonic()
        proc = run_cli(["--kubeconfig", str(path), "--startup-timeout", "2"], tmp_path)
        elapsed = time.monotonic() - start
    line = assert_one_line_error(proc, ExitCode.UNREACHABLE)
    assert f"https://127.0.0.1:{port}" in line
    assert "--startup-timeout 2s" in line and "timed out" in line
    assert " object at 0x" not in line
    # The runner gives up after --startup-timeout 2s; the rest is interpreter start-up
    # and imports (~1 s idle, measured 4.5 s on a loaded 2-core machine): 13 s of margin.
    assert 2 <= elapsed < 15


def test_an_unresolvable_host_is_retried_then_named(tmp_path: Path) -> None:
    server = "https://kube-informer-test.invalid:6443"  # .invalid never resolves (RFC 2606)
    path = write_kubeconfig(tmp_path / "kubeconfig", server, {"token": "t"})
    proc = run_cli(["--kubeconfig", str(path), "--startup-timeout", "2"], tmp_path)
    line = assert_one_line_error(proc, ExitCode.UNREACHABLE)
    assert line.startswith(
        f"error: cannot reach the API server at {server} within --startup-timeout 2s: "
        "the host name kube-informer-test.invalid does not resolve ("
    ), line
    assert line.count("cannot reach") == 1, line


# --------------------------------------------------------------- against a real server


def assert_runner_error(runner: Runner, code: ExitCode) -> str:
    assert "Traceback" not in runner.stderr, runner.stderr
    lines = error_lines(runner.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), runner.stderr
    assert runner.returncode == code, (runner.returncode, runner.stderr)
    return lines[0]


async def create_configmap(api_client: Any, namespace: str, name: str) -> None:
    await request_json(
        api_client,
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        body={"metadata": {"name": name}, "data": {"k": "v"}},
    )


def reconciled(key: str) -> Callable[[dict[str, Any]], bool]:
    """Matches the user controller's ``reconciled`` log line for ``key``."""
    return lambda e: e.get("event") == "reconciled" and e.get("key") == key


def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "user_controllers.py"
    path.write_text(textwrap.dedent(USER_CONTROLLERS))
    return path


async def test_unauthorized(control_plane: Any, namespace: str, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "bad-token", control_plane, {"token": "nope"})
    runner = await run_to_exit(
        [str(user_file(tmp_path)), "--kubeconfig", str(path), "-n", namespace], tmp_path
    )
    line = assert_runner_error(runner, ExitCode.UNAUTHORIZED)
    assert "401" in line and control_plane.host in line


async def test_forbidden_names_verb_resource_and_namespace(
    control_plane: Any, namespace: str, tmp_path: Path
) -> None:
    nobody = control_plane.user("nobody")
    runner = await run_to_exit(
        [str(user_file(tmp_path)), "--kubeconfig", str(nobody.kubeconfig_path), "-n", namespace],
        tmp_path,
    )
    line = assert_runner_error(runner, ExitCode.FORBIDDEN)
    assert f"cannot list configmaps in namespace '{namespace}'" in line


async def test_forbidden_all_namespaces(control_plane: Any, tmp_path: Path) -> None:
    nobody = control_plane.user("nobody")
    runner = await run_to_exit(
        [str(user_file(tmp_path)), "--kubeconfig", str(nobody.kubeconfig_path)], tmp_path
    )
    line = assert_runner_error(runner, ExitCode.FORBIDDEN)
    assert "cannot list configmaps at cluster scope" in line


async def test_watch_forbidden_while_list_allowed(
    control_plane: Any, api_client: Any, namespace: str, tmp_path: Path
) -> None:
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    await request_json(
        api_client,
        "POST",
        f"{rbac}/roles",
        body={
            "metadata": {"name": "list-only"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
    )
    await request_json(
        api_client,
        "POST",
        f"{rbac}/rolebindings",
        body={
            "metadata": {"name": "list-only"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "list-only",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "lister"}
            ],
        },
    )
    lister = control_plane.user("lister")
    runner = await run_to_exit(
        [str(user_file(tmp_path)), "--kubeconfig", str(lister.kubeconfig_path), "-n", namespace],
        tmp_path,
    )
    line = assert_runner_error(runner, ExitCode.FORBIDDEN)
    assert f"cannot watch configmaps in namespace '{namespace}'" in line


async def test_watch_forbidden_exits_fast_with_a_hundred_namespaces(
    control_plane: Any, api_client: Any, tmp_path: Path
) -> None:
    """Regression (exit 7 used to take exponential time in the number of ``-n``: 24 -> 92 s)."""
    user = f"wide-lister-{secrets.token_hex(3)}"
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}
    await request_json(
        api_client,
        "POST",
        f"{rbac}/clusterroles",
        body={"metadata": {"name": user}, "rules": [rule]},
    )
    await request_json(
        api_client,
        "POST",
        f"{rbac}/clusterrolebindings",
        body={
            "metadata": {"name": user},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": user,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    kubeconfig = control_plane.user(user).kubeconfig_path
    namespaces = [arg for i in range(100) for arg in ("-n", f"ns-{i:03d}")]
    runner = await run_to_exit(
        [str(user_file(tmp_path)), "--kubeconfig", str(kubeconfig), *namespaces], tmp_path
    )
    exited = datetime.now(UTC)
    line = assert_runner_error(runner, ExitCode.FORBIDDEN)
    assert "cannot watch configmaps in namespace 'ns-" in line
    # From the cause (the first forbidden watch, logged by a reflector) to the exit.
    cause = datetime.fromisoformat(runner.event("watch.error")[0]["timestamp"])
    elapsed = (exited - cause).total_seconds()
    print(f"exit 7 with 100 namespaces {elapsed:.2f}s after the first forbidden watch")
    # Measured 1.4 s (issue target: 2 s). The bug this guards against grew exponentially
    # with the namespaces (92 s at 24, days at 37), so 5 s leaves a wide margin for load
    # and still fails on any regression.
    assert elapsed < 5, elapsed


def stop_seconds(runner: Any) -> float:
    """Seconds from ``runner.stopping`` (the signal handled) to ``runner.stopped``, by the
    runner's own log timestamps: the shutdown contract without process start/exit
    latency, which a loaded machine stretches arbitrarily."""
    stopping = datetime.fromisoformat(runner.event("runner.stopping")[0]["timestamp"])
    stopped = datetime.fromisoformat(runner.event("runner.stopped")[0]["timestamp"])
    return (stopped - stopping).total_seconds()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
async def test_user_controller_runs_and_stops_on_signal(
    control_plane: Any, api_client: Any, namespace: str, tmp_path: Path, signum: signal.Signals
) -> None:
    args = [
        str(user_file(tmp_path)),
        "--kubeconfig",
        str(control_plane.kubeconfig_path),
        "--namespace",
        namespace,
    ]
    async with start_runner(args, tmp_path) as runner:
        started = await runner.wait_for_event("runner.started")
        assert started["controllers"] == ["cm-logger"]
        await create_configmap(api_client, namespace, "hello")
        event = await runner.wait_for_event(reconciled(f"{namespace}/hello"))
        assert event["controller"] == "cm-logger" and event["exists"] is True
        assert event["level"] == "info" and event["logger"] == "user"
        runner.send_signal(signum)
        await runner.wait_exit(30)  # process exit on a loaded machine; the contract below
    assert runner.returncode == 0, runner.stderr
    assert stop_seconds(runner) < 5  # the runner's contract, timed in-process
    assert "Traceback" not in runner.stderr and runner.stderr.strip() == ""
    assert runner.event("runner.stopped")[0]["signal"] == signal.Signals(signum).name


async def test_signal_waits_for_the_in_flight_reconcile(
    control_plane: Any, api_client: Any, namespace: str, tmp_path: Path
) -> None:
    args = [
        str(user_file(tmp_path)),
        "--kubeconfig",
        str(control_plane.kubeconfig_path),
        "-n",
        namespace,
    ]
    async with start_runner(args, tmp_path) as runner:
        await runner.wait_for_event("runner.started")
        await create_configmap(api_client, namespace, "slow")
        await runner.wait_for_event("slow.started")
        runner.send_signal(signal.SIGTERM)
        await runner.wait_exit(30)
    assert runner.returncode == 0, runner.stderr
    assert stop_seconds(runner) < 5
    names = [e.get("event") for e in runner.events]
    assert names.index("slow.finished") < names.index("runner.stopped")


async def test_one_controller_per_namespace(
    control_plane: Any, api_client: Any, namespace: str, tmp_path: Path
) -> None:
    other = f"{namespace[:50]}-b"
    await request_json(api_client, "POST", "/api/v1/namespaces", body={"metadata": {"name": other}})
    try:
        args = [
            str(user_file(tmp_path)),
            "--kubeconfig",
            str(control_plane.kubeconfig_path),
            "--namespace",
            namespace,
            "--namespace",
            other,
            "--workers",
            "2",
        ]
        async with start_runner(args, tmp_path) as runner:
            started = await runner.wait_for_event("runner.started")
            assert started["controllers"] == [f"cm-logger@{namespace}", f"cm-logger@{other}"]
            for ns in (namespace, other):
                await create_configmap(api_client, ns, "x")
            for ns in (namespace, other):
                event = await runner.wait_for_event(reconciled(f"{ns}/x"))
                assert event["controller"] == f"cm-logger@{ns}"
            workers = {e["controller"]: e["workers"] for e in runner.event("controller.started")}
            assert workers == {f"cm-logger@{namespace}": 2, f"cm-logger@{other}": 2}
            runner.send_signal(signal.SIGTERM)
        assert runner.returncode == 0, runner.stderr
    finally:
        await request_json(api_client, "DELETE", f"/api/v1/namespaces/{other}")


async def test_a_custom_resource_not_served_hints_at_its_crd(
    control_plane: Any, namespace: str, tmp_path: Path
) -> None:
    """The startup check's 404 for a resource of an API group names the likely cause."""
    (tmp_path / "thing_ctl.py").write_text(
        "from informer import Controller, Resource\n"
        "class ThingController(Controller):\n"
        "    def setup(self):\n"
        "        self.watch(Resource('nope.example.com', 'v1', 'things', kind='Thing'))\n"
        "    async def reconcile(self, key):\n"
        "        return None\n"
    )
    args = ["thing_ctl.py", "--kubeconfig", str(control_plane.kubeconfig_path), "-n", namespace]
    line = assert_runner_error(await run_to_exit(args, tmp_path), ExitCode.API_ERROR)
    assert "does not serve things.nope.example.com" in line
    assert "install its CustomResourceDefinition first" in line


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        pytest.param([], ["configmap-reloader", "deployment-inventory"], id="default"),
        pytest.param(
            ["--controllers", "configmap-reloader,deployment-inventory,configmap-mirror"],
            ["configmap-reloader", "deployment-inventory", "configmap-mirror"],
            id="mirror-named",
        ),
    ],
)
async def test_sample_controllers_start_and_stop(
    control_plane: Any,
    api_client: Any,
    namespace: str,
    tmp_path: Path,
    flags: list[str],
    expected: list[str],
) -> None:
    """Without a target the samples that need no CRD run (the mirror is opt-in, run when
    named, its CRD installed)."""
    if "configmap-mirror" in expected:
        from kube_informer_samples.configmap_mirror import CRD_PATH

        from informer.testing import install_crds

        await install_crds(api_client, CRD_PATH)
    args = ["--kubeconfig", str(control_plane.kubeconfig_path), "-n", namespace, *flags]
    async with start_runner(args, tmp_path) as runner:
        started = await runner.wait_for_event("runner.started")
        assert started["controllers"] == expected
        assert runner.event("manager.gc_frozen")
        runner.send_signal(signal.SIGINT)
    assert runner.returncode == 0, runner.stderr
    assert runner.stdout == ""  # logs go to stderr


@pytest.mark.parametrize(
    ("flags", "watch_list", "gc_frozen"),
    [
        pytest.param([], False, True, id="defaults"),
        pytest.param(["--watch-list", "--no-gc-freeze"], True, False, id="watch-list-no-freeze"),
    ],
)
async def test_runner_defaults_list_stripped_cache_and_gc_freeze(
    control_plane: Any,
    api_client: Any,
    namespace: str,
    tmp_path: Path,
    flags: list[str],
    watch_list: bool,
    gc_frozen: bool,
) -> None:
    """docs/concepts/manager.md, "Running controllers": the runner lists by default
    (``--watch-list`` streams the initial state), strips ``managedFields`` from cached
    objects either way, and freezes the GC after the initial sync by default
    (``--no-gc-freeze``)."""
    await create_configmap(api_client, namespace, "before")  # the server sets managedFields
    args = [
        str(user_file(tmp_path)),
        "--kubeconfig",
        str(control_plane.kubeconfig_path),
        "-n",
        namespace,
        "--log-level",
        "debug",
        *flags,
    ]
    async with start_runner(args, tmp_path) as runner:
        await runner.wait_for_event("runner.started")
        before = await runner.wait_for_event(reconciled(f"{namespace}/before"))
        await create_configmap(api_client, namespace, "after")
        after = await runner.wait_for_event(reconciled(f"{namespace}/after"))
        runner.send_signal(signal.SIGTERM)
    assert runner.returncode == 0, runner.stderr
    for event in (before, after):  # listed (or streamed) and watched: one shape, stripped
        assert event["exists"] is True and event["managed_fields"] is False, event
        assert event["kind"] == "ConfigMap", event
    initial = [
        e for e in runner.event("watch.started") if e.get("resource", "").startswith("configmaps")
    ]
    assert initial and initial[0]["watch_list"] is watch_list, initial
    assert bool(runner.event("list.started")) is not watch_list
    assert bool(runner.event("manager.gc_frozen")) is gc_frozen


async def test_drain_is_bounded_and_a_second_signal_exits_at_once(
    control_plane: Any, api_client: Any, namespace: str, tmp_path: Path
) -> None:
    args = [str(user_file(tmp_path)), "--kubeconfig", str(control_plane.kubeconfig_path)]
    async with start_runner([*args, "-n", namespace], tmp_path) as runner:
        await runner.wait_for_event("runner.started")
        await create_configmap(api_client, namespace, "stuck")
        await runner.wait_for_event("stuck.started")
        runner.send_signal(signal.SIGTERM)
        await runner.wait_exit(30)
    # The stuck reconcile is cancelled once the runner's grace (3 s) is over: the stop,
    # timed in-process, stays under the documented 5 s.
    assert runner.returncode == 0, runner.stderr
    assert SHUTDOWN_GRACE <= stop_seconds(runner) < 5
    assert runner.event("controller.drain_timeout")

    async with start_runner([*args, "-n", namespace], tmp_path) as runner:
        await runner.wait_for_event("stuck.started")
        runner.send_signal(signal.SIGTERM)
        await runner.wait_for_event("controller.draining")
        runner.send_signal(signal.SIGINT)
        await runner.wait_exit(2)
    assert runner.returncode == ExitCode.FORCED
    assert runner.stderr.strip().startswith("error: second signal (SIGINT)")
    assert "Traceback" not in runner.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


async def test_metrics_and_health_endpoints(
    control_plane: Any, api_client: Any, namespace: str, tmp_path: Path
) -> None:
    metrics, health = free_port(), free_port()
    args = [
        str(user_file(tmp_path)),
        "--kubeconfig",
        str(control_plane.kubeconfig_path),
        "--namespace",
        namespace,
        "--metrics-bind-address",
        f"127.0.0.1:{metrics}",
        # plain HTTP here; tests/observability/test_secure_metrics.py covers HTTPS
        "--no-metrics-secure",
        "--health-probe-bind-address",
        f"127.0.0.1:{health}",
        "--leader-elect",
        "--leader-election-namespace",
        namespace,
    ]
    async with start_runner(args, tmp_path) as runner:
        await runner.wait_for_event("runner.started")
        await create_configmap(api_client, namespace, "scraped")
        await runner.wait_for_event(reconciled(f"{namespace}/scraped"))
        status, body = await anyio.to_thread.run_sync(http_get, health, "/readyz")
        assert status == 200, body
        status, body = await anyio.to_thread.run_sync(http_get, health, "/healthz?verbose")
        assert status == 200, body
        status, text = await anyio.to_thread.run_sync(http_get, metrics, "/metrics")
        assert status == 200
        families = {f.name: f for f in text_string_to_metric_families(text)}
        reconciles = [
            s.value
            for s in families["controller_runtime_reconcile"].samples
            if s.name.endswith("_total")
            and s.labels == {"controller": "cm-logger", "result": "success"}
        ]
        assert reconciles and reconciles[0] >= 1
        objects = [
            s.value for s in families["informer_store_objects"].samples
            if s.labels["resource"].startswith("configmaps")
        ]  # fmt: skip
        assert objects == [1.0]
        leader = [
            s.value for s in families["leader_election_master_status"].samples
            if s.labels == {"name": "kube-informer"}
        ]  # fmt: skip
        assert leader == [1.0]
        # A second runner cannot bind the same address: a one-line usage error.
        clash = await run_to_exit(args, tmp_path)
        line = assert_runner_error(clash, ExitCode.USAGE)
        assert f"127.0.0.1:{metrics}" in line
        runner.send_signal(signal.SIGTERM)
        await runner.wait_exit(5)
    assert runner.returncode == 0, runner.stderr
