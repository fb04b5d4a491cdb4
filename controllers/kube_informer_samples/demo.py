"""``make run``: a local cluster, the sample controllers, and a scripted change to watch.

::

    python -m kube_informer_samples.demo [--dir .cache/run] [--exit-after-demo]
    python -m kube_informer_samples.demo status                     # read the demo's state (API)
    python -m kube_informer_samples.demo set-config KEY=VALUE ...   # edit demo/app-config's data
    python -m kube_informer_samples.demo scale DEPLOYMENT REPLICAS  # scale a demo Deployment

What the demo does, in order (lines starting with ``[demo]`` on stdout):

1. starts a :class:`~informer.testing.control_plane.ControlPlane` (kube-apiserver +
   etcd; the binaries are found as the testing kit finds them: ``$KUBEBUILDER_ASSETS``,
   which ``make run`` sets, else where ``python -m informer.testing.envtest install``
   put them) whose state lives in ``--dir``: its admin kubeconfig is
   ``<dir>/kubeconfig`` (etcd's data is wiped at every start);
2. installs the ConfigMapMirror CRD, then applies the manifests shipped with the samples
   (``kube_informer_samples/manifests/*.yaml``, or ``--examples DIR``) in name order with
   ``Client.apply_manifests`` (server-side apply; namespace ``demo``, ConfigMaps,
   Deployments that opt in to the reloader and one that does not);
3. writes a CA and a serving certificate for ``127.0.0.1`` into ``<dir>/webhook-certs``
   (:func:`~informer.testing.write_webhook_certificates`), then runs the three samples
   and their webhooks with ``python -m informer.run --kubeconfig <dir>/kubeconfig
   --controllers configmap-reloader,deployment-inventory,configmap-mirror --webhooks
   configmap-mirror --webhook-bind-address 127.0.0.1:<free port> --webhook-cert-dir
   <dir>/webhook-certs`` as a child process: exactly the runner a user runs, on the same
   code path (the mirror is opt-in, hence named; the runner's log lines go to stderr);
4. runs the scripted changes of :mod:`kube_informer_samples.demo_script` and prints what
   the controllers did: ``web`` and ``worker`` roll once on a data change, ``legacy``
   does not, the inventory follows a scale and is recreated when deleted, a
   ConfigMapMirror copies ``app-config`` into ``demo-copy`` (Ready, a ``Synced`` Event);
   then, with the webhook configurations applied, an apply of a mirror targeting its own
   namespace is rejected and a mirror created at ``v1beta1`` reads back at ``v1alpha1``;
5. prints ``export KUBECONFIG=...`` and commands to try, then runs until Ctrl-C, SIGTERM
   or SIGHUP (or exits at once with ``--exit-after-demo``).

Process contract: nothing outlives the demo. On a signal (or any error) it sends SIGINT
to the runner (in its own session, so a terminal's Ctrl-C reaches only the demo), waits
for it (SIGKILL after :data:`RUNNER_STOP_GRACE` seconds), then stops the control plane.
The children also carry ``PR_SET_PDEATHSIG`` (SIGTERM for the runner, SIGKILL for
kube-apiserver and etcd), so they end even if the demo is SIGKILLed. Exit code 0 after a
signal or ``--exit-after-demo``; 1 with one ``error:`` line on stderr when something
fails (the runner exits early, a step times out, the control plane dies).

The sub-commands (``status``, ``set-config``, ``scale``) and the reads of the demo's
state they share with the script are in :mod:`kube_informer_samples.demo_commands`.

This module is an application: unlike the controllers it configures structlog (its own
log lines, from the control plane, go to stderr at level info).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import anyio
import structlog
import yaml

from informer import Client, InformerError
from informer.testing import ControlPlane, install_crds, write_webhook_certificates
from informer.webhook import ClientConfig

from .configmap_mirror import CRD_PATH
from .demo_commands import (
    DEMO_NAMESPACE,
    FIELD_MANAGER,
    DemoError,
    described,
    scale,
    set_config,
    show_status,
)
from .demo_script import STEP_TIMEOUT, run_script, say

__all__ = ["DEMO_NAMESPACE", "DemoError", "main"]

log = structlog.get_logger(__name__)

EXAMPLES_DIR: Final = Path(__file__).resolve().parent / "manifests"
"""The demo's manifests, shipped with the package (``--examples`` picks another folder)."""
CONTROLLERS: Final = "configmap-reloader,deployment-inventory,configmap-mirror"
"""Every sample: ``configmap-mirror`` is opt-in (it needs its CRD), so it is named."""
WEBHOOKS: Final = "configmap-mirror"
"""The registered webhooks the runner serves (entry point of ``kube_informer.webhooks``)."""
WEBHOOK_HOST: Final = "127.0.0.1"
RUNNER_STOP_GRACE: Final = 8.0
"""Seconds the runner gets to stop after SIGINT (it needs < 5) before SIGKILL."""

_PR_SET_PDEATHSIG: Final = 1
_libc = ctypes.CDLL(None, use_errno=True)  # loaded here: a forked child must not load it


# ------------------------------------------------------------------------ the runner child


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn``: PDEATHSIG=SIGTERM, so the runner stops cleanly if we die."""

    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


@asynccontextmanager
async def running_controllers(
    kubeconfig: Path, *, webhook_port: int, webhook_cert_dir: Path
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """``python -m informer.run --kubeconfig ...`` as a child, serving the samples'
    webhooks on ``127.0.0.1:webhook_port`` with the certificate in ``webhook_cert_dir``;
    SIGINT and reaped on exit."""
    argv = [
        sys.executable,
        "-m",
        "informer.run",
        "--kubeconfig",
        str(kubeconfig),
        "--controllers",
        CONTROLLERS,
        "--webhooks",
        WEBHOOKS,
        "--webhook-bind-address",
        f"{WEBHOOK_HOST}:{webhook_port}",
        "--webhook-cert-dir",
        str(webhook_cert_dir),
        "--startup-timeout",
        str(int(STEP_TIMEOUT)),
    ]
    say(f"starting the sample controllers: {_display_command(argv)}")
    runner = _spawn(argv)
    try:
        yield runner
    finally:
        with anyio.CancelScope(shield=True):
            await _stop(runner)


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    """Start the child from the event-loop thread (PDEATHSIG follows the forking thread)."""
    sys.stdout.flush()
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a terminal's Ctrl-C reaches only us; we forward it
        preexec_fn=_die_with_parent(os.getpid()),
    )


async def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        with anyio.move_on_after(RUNNER_STOP_GRACE):
            while True:  # a child's exit has no event to await here: poll it
                if process.poll() is not None:
                    break
                await anyio.sleep(0.05)
        if process.poll() is None:
            log.warning("demo.runner_killed", pid=process.pid, grace=RUNNER_STOP_GRACE)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await anyio.to_thread.run_sync(process.wait)
    say(f"the controllers stopped (exit code {process.returncode})")


def _free_port() -> int:
    """A loopback port nothing listens on now, for the runner's webhook server."""
    with socket.socket() as probe:
        probe.bind((WEBHOOK_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _check_alive(runner: subprocess.Popen[bytes], cp: ControlPlane) -> None:
    code = runner.poll()
    if code is not None:
        raise DemoError(f"python -m informer.run exited early with code {code} (see above)")
    for name, pid in (("etcd", cp.etcd_pid), ("kube-apiserver", cp.apiserver_pid)):
        if pid is None:
            tail = cp.log_tail(name)
            raise DemoError(f"{name} exited unexpectedly; last lines of its log:\n{tail}")


# ----------------------------------------------------------------------------- the script


async def _demo(args: argparse.Namespace) -> None:
    state_dir: Path = args.state_dir
    say(f"starting a local kube-apiserver + etcd (state in {state_dir}) ...")
    async with ControlPlane(state_dir=state_dir, start_timeout=STEP_TIMEOUT) as cp:
        kubeconfig = cp.kubeconfig_path
        say(f"control plane ready at {cp.host}; kubeconfig {kubeconfig}")
        async with cp.api_client() as api:
            client = Client(api, field_manager=FIELD_MANAGER)
            say("installing the ConfigMapMirror CRD (the configmap-mirror sample) ...")
            await install_crds(api, CRD_PATH)
            await _apply_examples(client, args.manifests)
            cert_dir = state_dir / "webhook-certs"
            ca = write_webhook_certificates(cert_dir)
            port = _free_port()
            webhooks = ClientConfig(url=f"https://{WEBHOOK_HOST}:{port}", ca_bundle=ca)
            async with running_controllers(
                kubeconfig, webhook_port=port, webhook_cert_dir=cert_dir
            ) as runner:
                await run_script(client, lambda: _check_alive(runner, cp), webhooks=webhooks)
                _print_try_it(kubeconfig)
                if args.exit_after_demo:
                    say("done (--exit-after-demo): stopping everything")
                    return
                say("running: press Ctrl-C to stop the controllers and the control plane")
                while True:  # until a signal cancels us, or a child dies
                    _check_alive(runner, cp)
                    await anyio.sleep(0.5)


def _load_manifests(folder: Path) -> list[tuple[str, str]]:
    """``(file name, YAML text)`` for each ``*.yaml`` of ``folder``, in name order; the
    YAML is parsed here once, so a broken file fails before the control plane starts."""
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise DemoError(f"no *.yaml to apply in {folder}")
    try:
        manifests = [(p.name, p.read_text()) for p in files]
        for _, text in manifests:
            list(yaml.safe_load_all(text))
    except (OSError, yaml.YAMLError) as exc:
        raise DemoError(f"cannot read the examples: {exc}") from exc
    return manifests


async def _apply_examples(client: Client, manifests: list[tuple[str, str]]) -> None:
    """Server-side apply each file (``kubectl apply --server-side --force-conflicts``);
    namespaced objects without a namespace go into ``default``, as with kubectl."""
    for file_name, text in manifests:
        try:
            applied = await client.apply_manifests(text, namespace="default", force=True)
        except ValueError as exc:
            raise DemoError(f"cannot apply {file_name}: {exc}") from exc
        say(f"applied {file_name}: {', '.join(described(obj) for obj in applied)}")


def _display_command(argv: Sequence[str]) -> str:
    """``argv`` for humans: the interpreter relative to the current folder when inside it."""
    exe = argv[0]
    with contextlib.suppress(ValueError):
        relative = os.path.relpath(exe)
        if not relative.startswith(".."):
            exe = relative
    return shlex.join([exe, *argv[1:]])


def _print_try_it(kubeconfig: Path) -> None:
    python = _display_command([sys.executable])
    demo = f"{python} -m kube_informer_samples.demo"
    say("try it yourself, in another terminal (no kubectl needed):")
    lines = [
        f"export KUBECONFIG={shlex.quote(str(kubeconfig))}",
        f"{demo} status                  # hashes, generations, inventory",
        f"{demo} set-config LOG_LEVEL=warn  # web and worker roll once",
        f"{demo} scale worker 3            # the inventory follows",
    ]
    if Path("examples/client_operations.py").is_file():  # in a kube-informer checkout
        lines.append(
            f"{python} examples/client_operations.py --namespace default"
            "  # + default/deployment-inventory"
        )
    for line in lines:
        print(f"    {line}", flush=True)


# ---------------------------------------------------------------------------- entry point


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kube_informer_samples.demo",
        description="Start a local control plane, apply the demo's manifests, run the "
        "sample controllers and show them act; or inspect/poke a running demo.",
    )
    parser.add_argument("--dir", default=".cache/run", help="control-plane state folder")
    parser.add_argument("--examples", default=str(EXAMPLES_DIR), help="folder of *.yaml to apply")
    parser.add_argument(
        "--exit-after-demo",
        action="store_true",
        help="stop everything once the scripted changes were shown (for tests)",
    )
    parser.add_argument(
        "--kubeconfig", help="for the sub-commands (default: $KUBECONFIG, ~/.kube/config)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("status", help="print the demo Deployments' config hashes and the inventory")
    set_config = sub.add_parser("set-config", help="set keys of demo/app-config's data")
    set_config.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
    scale = sub.add_parser("scale", help="scale a Deployment of the demo namespace")
    scale.add_argument("name")
    scale.add_argument("replicas", type=int)
    return parser


async def _run_demo(args: argparse.Namespace) -> int:
    """The demo under signal handling: SIGINT/SIGTERM/SIGHUP end it cleanly (exit 0)."""
    received: list[str] = []
    error: Exception | None = None
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                async for signum in signals:
                    if not received:
                        received.append(signal.Signals(signum).name)
                        say(f"{received[0]}: stopping the controllers and the control plane")
                        tg.cancel_scope.cancel()

            tg.start_soon(stop_on_signal)
            try:
                await _demo(args)
            except (DemoError, InformerError) as exc:  # raised below, outside the group
                error = exc
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    if received:
        say("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    try:
        if args.command == "status":
            anyio.run(show_status, args.kubeconfig)
        elif args.command == "set-config":
            anyio.run(set_config, args.kubeconfig, args.pairs)
        elif args.command == "scale":
            anyio.run(scale, args.kubeconfig, args.name, args.replicas)
        else:
            args.state_dir = Path(args.dir).absolute()
            args.manifests = _load_manifests(Path(args.examples))
            return anyio.run(_run_demo, args)
    except (DemoError, InformerError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:  # a signal outside the demo's own handling
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
