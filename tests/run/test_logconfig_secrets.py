"""No Secret value reaches the logs when informers, stores and reconcilers fail on
Secrets, in every log format, with ``rich`` installed (structlog's console renderer
would print tracebacks with local variables through it).

The informers run in a child process (``configure_logging`` configures the whole
process) against the real control plane; the test reads everything the child wrote."""

from __future__ import annotations

import base64
import secrets
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from api_helpers import core_object

from informer import Client

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

CHILD = r'''
import io
import sys

import anyio

from informer import Controller, HandlerFuncs, SharedInformerFactory, new_api_client
from informer.resources import SECRETS
from informer import request_json
from informer.run.logconfig import configure_logging

log_format, kubeconfig, namespace, stream_kind, late_value = sys.argv[1:6]


class Terminal(io.TextIOBase):
    """stdout, claiming to be a terminal: colours and rich tracebacks."""

    def isatty(self):
        return True

    def writable(self):
        return True

    def write(self, text):
        return sys.stdout.write(text)

    def flush(self):
        sys.stdout.flush()


if stream_kind == "terminal":
    import rich  # noqa: F401 - the point of the test: install the dev extra

configure_logging(log_format, "debug", stream=Terminal() if stream_kind == "terminal" else None)

failed = {}


def fail(what):
    failed[what].set()
    raise RuntimeError(f"{what} failed on purpose")


def transform(obj):
    data = obj.get("data")  # a local holding the Secret's values
    if obj["metadata"]["name"] == "late" and data:
        fail("store")
    return obj


def on_add(obj):
    data = obj.get("data")
    if data:
        fail("handler")


class Failing(Controller):
    def setup(self):
        self.secrets = self.watch(SECRETS)

    async def reconcile(self, key):
        secret = self.secrets.lister().get_by_key(key)
        data = secret and secret.get("data")
        if data:
            fail("reconcile")


async def main():
    for what in ("handler", "store", "reconcile"):
        failed[what] = anyio.Event()
    with anyio.fail_after(60):
        async with await new_api_client(kubeconfig=kubeconfig) as api:
            factory = SharedInformerFactory(api, namespace=namespace, transform=transform)
            factory.informer_for(SECRETS).add_event_handler(HandlerFuncs(on_add=on_add))
            controller = Failing(factory, api)
            async with factory, anyio.create_task_group() as tg:
                await tg.start(controller.run)
                await failed["handler"].wait()
                await failed["reconcile"].wait()
                await request_json(
                    api, "POST", f"/api/v1/namespaces/{namespace}/secrets",
                    body={"metadata": {"name": "late"}, "stringData": {"token": late_value}},
                )
                await failed["store"].wait()
                tg.cancel_scope.cancel()


anyio.run(main)
'''


@pytest.mark.parametrize(
    ("log_format", "stream_kind"),
    [("console", "terminal"), ("console", "pipe"), ("json", "pipe")],
    ids=["console-terminal", "console-pipe", "json"],
)
async def test_failures_on_secrets_log_no_secret_value(
    control_plane: Any,
    client: Client,
    namespace: str,
    tmp_path: Path,
    log_format: str,
    stream_kind: str,
) -> None:
    values = [f"s3cret-{secrets.token_hex(8)}" for _ in range(2)]
    await client.create(
        core_object("Secret", "early", namespace, stringData={"password": values[0]})
    )
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    argv = [sys.executable, str(script), log_format, str(control_plane.kubeconfig_path),
            namespace, stream_kind, values[1]]  # fmt: skip
    with anyio.fail_after(90):
        done = await anyio.run_process(argv, check=False)
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, out[-3000:]
    for event in ("handler.failed", "store.failed", "reconcile.failed"):
        assert event in out, f"{event} was not logged:\n{out[-3000:]}"
    for what in ("handler", "store", "reconcile"):  # the tracebacks are there...
        assert f"{what} failed on purpose" in out
    for value in values:  # ...but no Secret value, plain or base64-encoded
        for form in (value, base64.b64encode(value.encode()).decode()):
            assert form not in out, f"a Secret value is in the {log_format} logs:\n{out}"
