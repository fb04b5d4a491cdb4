"""``make run``: a local cluster, the sample controllers, and a scripted change to watch.

::

    python -m kube_informer_samples.demo [--dir .cache/run] [--exit-after-demo]
    python -m kube_informer_samples.demo status                     # read the demo's state (API)
    python -m kube_informer_samples.demo set-config KEY=VALUE ...   # edit demo/app-config's data
    python -m kube_informer_samples.demo scale DEPLOYMENT REPLICAS  # scale a demo Deployment

What the demo does, in order (lines starting with ``[demo]`` on stdout):

1. starts a :class:`~informer.testing.control_plane.ControlPlane` (kube-apiserver +
   etcd; binaries from ``$KUBEBUILDER_ASSETS``, which ``make run`` sets) whose state lives
   in ``--dir``: its admin kubeconfig is ``<dir>/kubeconfig`` (etcd's data is wiped at
   every start);
2. installs the ConfigMapMirror CRD, then applies the manifests shipped with the samples
   (``kube_informer_samples/manifests/*.yaml``, or ``--examples DIR``) in name order with
   ``Client.apply_manifests`` (server-side apply; namespace ``demo``, ConfigMaps,
   Deployments that opt in to the reloader and one that does not);
3. runs the three samples with ``python -m informer.run --kubeconfig <dir>/kubeconfig
   --controllers configmap-reloader,deployment-inventory,configmap-mirror`` as a child
   process: exactly the runner a user runs, on the same code path (the mirror is opt-in,
   hence named; the runner's log lines go to stderr);
4. waits until the controllers acted (config hashes stamped, inventory written), then
   makes scripted changes and prints what the controllers did: edits ``app-config``'s
   data (``web`` and ``worker`` roll once, ``legacy`` does not), scales ``web`` (the
   inventory follows), deletes the inventory by hand (it is recreated), creates a
   ConfigMapMirror of ``app-config`` into namespace ``demo-copy`` (the copy appears, the
   mirror's status turns Ready, a ``Synced`` Event is recorded);
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
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final, TypeVar

import anyio
import structlog
import yaml

from informer import Client, InformerError, NotFound, Obj, get_condition
from informer.resources import CONFIGMAPS, DEPLOYMENTS, EVENTS
from informer.testing import ControlPlane, install_crds

from .configmap_mirror import CRD_PATH, MIRROR_LABEL, MIRRORS
from .configmap_reloader import CONFIG_HASH_ANNOTATION, RELOAD_ANNOTATION
from .demo_commands import (
    DEMO_NAMESPACE,
    FIELD_MANAGER,
    DemoError,
    config_hash_of,
    described,
    inventory,
    scale,
    set_config,
    short,
    show_status,
)
from .deployment_inventory import INVENTORY_NAME

__all__ = ["DEMO_NAMESPACE", "DemoError", "main"]

log = structlog.get_logger(__name__)
_T = TypeVar("_T")

EXAMPLES_DIR: Final = Path(__file__).resolve().parent / "manifests"
"""The demo's manifests, shipped with the package (``--examples`` picks another folder)."""
CONTROLLERS: Final = "configmap-reloader,deployment-inventory,configmap-mirror"
"""Every sample: ``configmap-mirror`` is opt-in (it needs its CRD), so it is named."""
MIRROR_NAME: Final = "app-config-mirror"
MIRROR_TARGET: Final = "demo-copy"
STEP_TIMEOUT: Final = 60.0
"""Seconds each awaited step may take (the controllers act within a few)."""
RUNNER_STOP_GRACE: Final = 8.0
"""Seconds the runner gets to stop after SIGINT (it needs < 5) before SIGKILL."""

_PR_SET_PDEATHSIG: Final = 1
_libc = ctypes.CDLL(None, use_errno=True)  # loaded here: a forked child must not load it


def say(message: str) -> None:
    """One narrative line on stdout."""
    print(f"[demo] {message}", flush=True)


# ------------------------------------------------------------------------ the runner child


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn``: PDEATHSIG=SIGTERM, so the runner stops cleanly if we die."""

    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


@asynccontextmanager
async def running_controllers(kubeconfig: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    """``python -m informer.run --kubeconfig ...`` as a child; SIGINT and reaped on exit."""
    argv = [
        sys.executable,
        "-m",
        "informer.run",
        "--kubeconfig",
        str(kubeconfig),
        "--controllers",
        CONTROLLERS,
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


def _check_alive(runner: subprocess.Popen[bytes], cp: ControlPlane) -> None:
    code = runner.poll()
    if code is not None:
        raise DemoError(f"python -m informer.run exited early with code {code} (see above)")
    for name, pid in (("etcd", cp.etcd_pid), ("kube-apiserver", cp.apiserver_pid)):
        if pid is None:
            tail = cp.log_tail(name)
            raise DemoError(f"{name} exited unexpectedly; last lines of its log:\n{tail}")


async def until(
    what: str,
    probe: Callable[[], Awaitable[_T | None]],
    alive: Callable[[], None],
    within: float = STEP_TIMEOUT,
) -> _T:
    """Poll ``probe`` until it returns something other than None (bounded by ``within``)."""
    try:
        with anyio.fail_after(within):
            while True:
                alive()
                value = await probe()
                if value is not None:
                    return value
                await anyio.sleep(0.1)
    except TimeoutError:
        raise DemoError(f"timed out after {within:g}s waiting for {what}") from None


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
            async with running_controllers(kubeconfig) as runner:
                await _script(client, lambda: _check_alive(runner, cp))
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


async def _script(client: Client, alive: Callable[[], None]) -> None:
    async def opted_in_hashes() -> dict[str, Obj] | None:
        listing = await client.list(DEPLOYMENTS, namespace=DEMO_NAMESPACE)
        items = {d["metadata"]["name"]: d for d in listing}
        opted = {
            n: d
            for n, d in items.items()
            if (d["metadata"].get("annotations") or {}).get(RELOAD_ANNOTATION) == "true"
        }
        if opted and all(config_hash_of(d) for d in opted.values()):
            return items
        return None

    async def inventory_with(names: set[str]) -> Obj | None:
        inv = await inventory(client)
        return inv if inv is not None and set(inv.get("data") or {}) == names else None

    # 1. The controllers' first actions.
    items = await until("the reloader to stamp the opted-in Deployments", opted_in_hashes, alive)
    for name, d in sorted(items.items()):
        if config_hash_of(d):
            say(
                f"configmap-reloader stamped {DEMO_NAMESPACE}/{name}: "
                f"{CONFIG_HASH_ANNOTATION}={short(config_hash_of(d))} "
                f"(generation {d['metadata']['generation']})"
            )
        else:
            say(f"configmap-reloader left {DEMO_NAMESPACE}/{name} alone (it does not opt in)")
    inv = await until("the inventory", lambda: inventory_with(set(items)), alive)
    say(
        f"deployment-inventory wrote {DEMO_NAMESPACE}/{INVENTORY_NAME} listing "
        f"{', '.join(sorted(inv['data']))} (owners: "
        f"{', '.join(r['name'] for r in inv['metadata'].get('ownerReferences', []))})"
    )

    # 2. Edit a consumed ConfigMap's data: each opted-in consumer rolls once.
    say("scripted change 1: set LOG_LEVEL=debug in ConfigMap demo/app-config")
    before = items
    await client.patch(
        CONFIGMAPS, "app-config", {"data": {"LOG_LEVEL": "debug"}}, namespace=DEMO_NAMESPACE
    )

    async def rolled() -> dict[str, Obj] | None:
        now = await opted_in_hashes()
        if now is None:
            return None
        changed = [
            n
            for n, d in now.items()
            if config_hash_of(d) and config_hash_of(d) != config_hash_of(before[n])
        ]
        opted = [n for n, d in now.items() if config_hash_of(d)]
        return now if sorted(changed) == sorted(opted) else None

    after = await until("the reloader to roll web and worker", rolled, alive)
    for name in sorted(after):
        old, new = before[name], after[name]
        if config_hash_of(new):
            say(
                f"configmap-reloader rolled {DEMO_NAMESPACE}/{name}: {CONFIG_HASH_ANNOTATION} "
                f"{short(config_hash_of(old))} -> {short(config_hash_of(new))} (generation "
                f"{old['metadata']['generation']} -> {new['metadata']['generation']})"
            )
        else:
            say(
                f"{DEMO_NAMESPACE}/{name} consumes app-config but does not opt in: untouched "
                f"(generation {new['metadata']['generation']})"
            )

    # 3. Scale a Deployment (the scale subresource): the inventory follows.
    say("scripted change 2: scale Deployment demo/web to 4 replicas")
    await client.patch(
        DEPLOYMENTS, "web", {"spec": {"replicas": 4}}, namespace=DEMO_NAMESPACE, subresource="scale"
    )

    async def scaled() -> Obj | None:
        inv = await inventory(client)
        entry = yaml.safe_load(((inv or {}).get("data") or {}).get("web", "")) or {}
        return inv if entry.get("replicas") == 4 else None

    inv = await until("the inventory to show 4 replicas of web", scaled, alive)
    say(f"deployment-inventory updated {DEMO_NAMESPACE}/{INVENTORY_NAME}, key web:")
    for line in inv["data"]["web"].splitlines():
        print(f"         {line}", flush=True)

    # 4. Delete the inventory by hand: it is recreated.
    say(f"scripted change 3: delete ConfigMap {DEMO_NAMESPACE}/{INVENTORY_NAME} by hand")
    old_uid = inv["metadata"]["uid"]
    await client.delete(CONFIGMAPS, INVENTORY_NAME, namespace=DEMO_NAMESPACE)

    async def recreated() -> Obj | None:
        inv = await inventory(client)
        return inv if inv is not None and inv["metadata"]["uid"] != old_uid else None

    inv = await until("the inventory to be recreated", recreated, alive)
    say(
        f"deployment-inventory recreated {DEMO_NAMESPACE}/{INVENTORY_NAME} "
        f"(uid {old_uid[:8]}... -> {inv['metadata']['uid'][:8]}...)"
    )

    # 5. A ConfigMapMirror (the operator sample): a copy, a Ready status, an Event.
    await _mirror(client, alive)


async def _mirror(client: Client, alive: Callable[[], None]) -> None:
    say(
        f"scripted change 4: create ConfigMapMirror {DEMO_NAMESPACE}/{MIRROR_NAME} copying "
        f"app-config into namespace {MIRROR_TARGET}"
    )
    namespace: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MIRROR_TARGET}}
    await client.create_or_update(namespace, lambda ns: None)
    spec = {"source": "app-config", "targetNamespaces": [MIRROR_TARGET]}
    mirror: Obj = {
        "apiVersion": "mirror.informer.dev/v1alpha1",
        "kind": "ConfigMapMirror",
        "metadata": {"name": MIRROR_NAME, "namespace": DEMO_NAMESPACE},
        "spec": spec,
    }
    await client.create_or_update(mirror, lambda m: m.update(spec=spec), resource=MIRRORS)

    async def copied() -> Obj | None:
        try:
            cm = await client.get(CONFIGMAPS, "app-config", namespace=MIRROR_TARGET)
        except NotFound:
            return None
        return cm if MIRROR_LABEL in (cm["metadata"].get("labels") or {}) else None

    copy = await until(f"the copy of app-config in {MIRROR_TARGET}", copied, alive)
    say(
        f"configmap-mirror copied {DEMO_NAMESPACE}/app-config to {MIRROR_TARGET}/app-config "
        f"(keys {', '.join(sorted(copy.get('data') or {}))})"
    )

    async def ready() -> Obj | None:
        current = await client.get(MIRRORS, MIRROR_NAME, namespace=DEMO_NAMESPACE)
        condition = get_condition(current, "Ready")
        return condition if condition is not None and condition["status"] == "True" else None

    condition = await until("the mirror's Ready condition", ready, alive)
    say(
        f"configmap-mirror set {DEMO_NAMESPACE}/{MIRROR_NAME} status: Ready=True "
        f"({condition['reason']}: {condition.get('message', '')})"
    )

    async def synced_event() -> Obj | None:
        events = await client.list(EVENTS, namespace=DEMO_NAMESPACE)
        for event in events:
            regarding = event.get("regarding") or {}
            if regarding.get("name") == MIRROR_NAME and event.get("reason") == "Synced":
                return event
        return None

    event = await until("the mirror's Synced Event", synced_event, alive)
    say(f"configmap-mirror recorded an Event on the mirror: {event['reason']}: {event['note']}")


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
