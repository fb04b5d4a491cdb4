"""``python -m informer.run`` and webhooks: a target's webhook objects and registered
ones (``--webhooks``) are served on ``--webhook-bind-address`` with the certificate in
``--webhook-cert-dir``; kube-apiserver calls a runner child; a missing certificate is a
one-line error (exit 4)."""

from __future__ import annotations

import signal
import ssl
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from http_client import request
from runner_harness import run_cli, start_runner

from informer import ApiError, Client
from informer._http.tls import CERT_NAME, KEY_NAME
from informer.run import ExitCode, TargetError, build_parser
from informer.testing import eventually, write_webhook_certificates
from informer.webhook import ClientConfig, webhook_configurations

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

HOOKS_MODULE = """
from informer.resources import CONFIGMAPS
from informer.webhook import Denied, MutatingWebhook, ValidatingWebhook


def no_forbidden_keys(request):
    if "forbidden" in (request.object or {}).get("data", {}):
        raise Denied("data.forbidden is forbidden here", code=422)


def stamp(obj, request):
    obj.setdefault("data", {})["stamped-by"] = "runner"


CHECK = ValidatingWebhook(CONFIGMAPS, no_forbidden_keys, name="vcm.runner.example.com")
EXTRA = [MutatingWebhook(CONFIGMAPS, stamp, name="mcm.runner.example.com")]
"""


def test_targets_and_names_select_webhooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kube_informer_samples.configmap_mirror_webhooks import WEBHOOKS

    from informer.run.runner import _to_run
    from informer.run.targets import load_registered_webhooks, load_target_objects

    (tmp_path / "hooks_only.py").write_text(HOOKS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_target_objects("hooks_only")
    assert loaded.controllers == [] and [w.name for w in loaded.webhooks] == [
        "vcm.runner.example.com",
        "mcm.runner.example.com",
    ]
    assert [w.name for w in load_target_objects("hooks_only:EXTRA").webhooks] == [
        "mcm.runner.example.com"
    ]
    assert load_registered_webhooks() == {"configmap-mirror": WEBHOOKS}

    def run(*argv: str) -> tuple[list[str], list[str]]:
        classes, hooks = _to_run(build_parser().parse_args(argv))
        return [c.name for c in classes], [w.name for w in hooks]

    assert run("hooks_only") == ([], ["vcm.runner.example.com", "mcm.runner.example.com"])
    controllers, hooks = run("--webhooks", "configmap-mirror")
    # no target: the registered controllers that are not opt-in run (the mirror is opt-in)
    assert controllers == ["configmap-reloader", "deployment-inventory"]
    assert hooks == [w.name for w in WEBHOOKS]
    assert run()[1] == [], "registered webhooks are served only when named"
    with pytest.raises(
        TargetError, match=r"unknown webhooks 'nope' \(registered: configmap-mirror"
    ):
        run("--webhooks", "nope")


def test_the_flags_default_to_controller_runtimes(tmp_path: Path) -> None:
    args = build_parser().parse_args([])
    assert (args.webhook_bind_address, args.webhook_cert_dir, args.webhooks) == (
        ":9443",
        None,
        None,
    )
    proc = run_cli(["--webhook-bind-address", "nope"], tmp_path)
    assert proc.returncode == ExitCode.USAGE and "--webhook-bind-address" in proc.stderr


def test_a_missing_certificate_is_one_line_and_exit_4(tmp_path: Path) -> None:
    (tmp_path / "hooks_only.py").write_text(HOOKS_MODULE)
    missing = tmp_path / "no-certs"
    proc = run_cli(
        [
            "hooks_only.py",
            "--webhook-bind-address",
            "127.0.0.1:0",
            "--webhook-cert-dir",
            str(missing),
        ],
        tmp_path,
    )
    assert proc.returncode == ExitCode.CONFIG, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: webhook server: "), proc.stderr
    assert f"put the serving certificate in {missing} (--webhook-cert-dir)" in lines[0]


async def test_the_api_server_calls_a_runners_webhooks(
    control_plane: Any, api_client: Any, client: Client, namespace: str, tmp_path: Path
) -> None:
    certs = tmp_path / "certs"
    ca_pem = write_webhook_certificates(certs)
    assert sorted(p.name for p in certs.iterdir()) == [CERT_NAME, KEY_NAME]
    (tmp_path / "hooks_only.py").write_text(HOOKS_MODULE)
    args = [
        "hooks_only.py",
        "--kubeconfig",
        str(control_plane.kubeconfig_path),
        "-n",
        namespace,
        "--webhook-bind-address",
        "127.0.0.1:0",
        "--webhook-cert-dir",
        str(certs),
    ]
    configurations: list[Any] = []
    async with start_runner(args, tmp_path) as runner:
        started = await runner.wait_for_event("runner.started")
        assert started["controllers"] == []
        port = started["webhook_port"]
        assert started["webhooks"] == ["/validate--v1-configmap", "/mutate--v1-configmap"]
        # answered directly over HTTPS
        context = ssl.create_default_context(cadata=ca_pem.decode())
        body = orjson.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "u",
                    "operation": "CREATE",
                    "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
                    "resource": {"group": "", "version": "v1", "resource": "configmaps"},
                    "object": {"data": {"forbidden": "1"}},
                },
            }
        )
        raw = (
            b"POST /validate--v1-configmap HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        ) + body
        answer = await request(port, raw, context)
        assert answer.status == 200
        assert orjson.loads(answer.body)["response"]["status"]["code"] == 422
        # and by kube-apiserver, through configurations pointing at the runner (by hand:
        # serve_webhooks does this for an in-process Manager)
        from informer.run.targets import load_target_objects
        from informer.testing import serve_webhooks  # noqa: F401 - the in-process way; here, by hand

        hooks = load_target_objects(str(tmp_path / "hooks_only.py")).webhooks
        configurations = webhook_configurations(
            hooks,
            ClientConfig(url=f"https://127.0.0.1:{port}", ca_bundle=ca_pem),
            name=f"runner-{namespace}",
        )
        scope = {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}
            ]
        }
        try:
            for configuration in configurations:
                for entry in configuration["webhooks"]:
                    entry["namespaceSelector"] = scope
                await client.apply(configuration, force=True)

            async def rejected() -> None:
                cm = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"generateName": "x-", "namespace": namespace},
                    "data": {"forbidden": "1"},
                }
                try:
                    await client.create(cm)
                except ApiError as exc:
                    assert exc.status == 422 and "data.forbidden is forbidden here" in str(exc)
                    return
                raise AssertionError("not rejected yet")

            await eventually(rejected, timeout=30)
            stamped = await client.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "ok", "namespace": namespace},
                }
            )
            assert stamped["data"] == {"stamped-by": "runner"}
        finally:
            with anyio.CancelScope(shield=True):
                for configuration in configurations:
                    res = await client.resource_for(configuration)
                    await client.delete(res, configuration["metadata"]["name"], missing_ok=True)
        runner.send_signal(signal.SIGTERM)
    assert runner.returncode == 0, runner.stderr
