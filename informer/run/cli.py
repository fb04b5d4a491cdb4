"""The command line of ``python -m informer.run``: :func:`build_parser` and its validators.

Every flag value is validated by argparse (a bad one exits 2 with argparse's usage
message): seconds are finite and positive, namespaces are DNS-1123 labels (a repeatable
and comma-separated ``--namespace``), the Lease name a DNS-1123 subdomain, bind addresses
``0`` (disabled), ``:PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` (through
:func:`informer._http.server.parse_bind_address`, the one parser of them). What
argparse cannot check alone (e.g. the leader-election timings together) is checked by
``informer.run`` when it builds the Manager. The flags themselves are documented in
``informer/run/runner.py``'s module docstring and in ``--help``.
"""

from __future__ import annotations

import argparse
import re
from typing import Final

from .._http.server import parse_bind_address
from .._leaderelection.timings import LeaseTimings
from .._sharding.config import SHARD_MODES
from .._webhook.server import DEFAULT_CERT_DIR
from .logconfig import LOG_FORMATS, LOG_LEVELS

__all__ = ["DEFAULT_LEADER_ELECTION_ID", "TIMING_FLAGS", "build_parser", "timing_flag"]

DEFAULT_LEADER_ELECTION_ID: Final = "kube-informer"
"""The Lease name with ``--leader-elect`` when ``--leader-election-id`` is not given."""

TIMING_FLAGS: Final = ("lease_duration", "renew_deadline", "retry_period")
"""The :class:`~informer._leaderelection.timings.LeaseTimings` fields set by flags
(``--leader-election-lease-duration``, ``--shard-lease-duration``...), whose defaults
are the flags' defaults."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return value


def _namespace(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("empty namespace")
    for name in names:
        if len(name) > 63 or not _DNS_LABEL.match(name):
            raise argparse.ArgumentTypeError(f"not a valid namespace name: {name!r}")
    return names


def _dns_label(text: str) -> str:
    if len(text) > 63 or not _DNS_LABEL.match(text):
        raise argparse.ArgumentTypeError(f"not a valid namespace name: {text!r}")
    return text


def _dns_subdomain(text: str) -> str:
    if len(text) > 253 or not _DNS_SUBDOMAIN.match(text):
        raise argparse.ArgumentTypeError(f"not a valid DNS-1123 subdomain: {text!r}")
    return text


def _shard_group(text: str) -> str:
    if len(text) > 50 or not _DNS_LABEL.match(text):
        raise argparse.ArgumentTypeError(
            f"not a valid shard group (a DNS-1123 label of at most 50 characters): {text!r}"
        )
    return text


def _bind_address(text: str) -> str:
    """``0`` (disabled), ``:PORT``, ``HOST:PORT`` or ``[IPv6]:PORT``; returned as given.

    The one parser of bind addresses is :func:`informer._http.server.parse_bind_address`.
    """
    if text == "0":
        return text
    try:
        parse_bind_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; or 0 to disable") from None
    return text


def timing_flag(prefix: str, field: str) -> str:
    """The flag setting the :class:`LeaseTimings` ``field`` (one of :data:`TIMING_FLAGS`)
    in the group ``prefix`` (``leader-election`` or ``shard``)."""
    return f"--{prefix}-{field.replace('_', '-')}"


def _add_timing_flags(group: argparse._ArgumentGroup, prefix: str, **helps: str) -> None:
    defaults = LeaseTimings()
    for field in TIMING_FLAGS:
        default = getattr(defaults, field)
        group.add_argument(
            timing_flag(prefix, field),
            type=_positive_float,
            default=default,
            metavar="SECONDS",
            help=f"advanced: {helps[field]} (default: {default:g})",
        )


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m informer.run`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m informer.run",
        description=(
            "Run kube-informer controllers: your own, given as module:Class, module, or "
            "path/to/file.py, or registered ones (entry points: without a TARGET, every "
            "one that is not opt-in). Logs go to stderr. Stops cleanly on SIGINT/SIGTERM."
        ),
        epilog=(
            "exit codes: 0 stopped by a signal, 1 internal error, 2 bad command line or "
            "no controller to run, 3 unknown controller/module/file or a controller's "
            "__init__/setup raised, 4 bad kubeconfig, 5 server unreachable, "
            "6 unauthorized (401), 7 forbidden (403), 8 caches not synced in time, "
            "9 other API error at startup, 10 leader election or shard membership lost, "
            "130 second signal"
        ),
    )
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="user controllers: module:Class, module (all its Controller subclasses) or file.py",
    )
    conn = parser.add_argument_group("cluster")
    conn.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster in a Pod)",
    )
    conn.add_argument("--context", metavar="NAME", help="kubeconfig context (default: current)")
    conn.add_argument(
        "--namespace",
        "-n",
        action="append",
        type=_namespace,
        default=[],
        metavar="NS",
        help="watch only this namespace (repeatable, or comma-separated; default: all)",
    )
    conn.add_argument(
        "--startup-timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="give up if the server is unreachable or caches are not synced by then (default: 30)",
    )
    ctl = parser.add_argument_group("controllers to run")
    ctl.add_argument(
        "--controllers",
        metavar="A,B",
        help="registered controllers to run, by entry-point name (default without TARGETs: "
        "every registered one that is not opt-in)",
    )
    ctl.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="concurrent reconciles per controller (default: the controller's, 1)",
    )
    ctl.add_argument(
        "--watch-list",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="sync caches with a watch-list stream (sendInitialEvents), falling back to "
        "list+watch on servers without it (default: off: a list from the watch cache "
        "syncs 1.4-2x faster and costs the API server a quarter to a half of the CPU, "
        "see the Performance tuning guide; client-go 1.35+ defaults to watch-list)",
    )
    ctl.add_argument(
        "--share-strings",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="hold each distinct string value of the cached objects once per process "
        "(informer.share_strings, after stripping managedFields): about 25%% less cache "
        "memory for about one more JSON decode of CPU per object received (default: off)",
    )
    ctl.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="disable the GC during the initial sync, then gc.freeze() the cache and raise "
        "the GC thresholds (default: on)",
    )
    logs = parser.add_argument_group("logging")
    logs.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="console (colours) or json lines (default: console on a terminal, else json)",
    )
    logs.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default="info",
        help="default: info",
    )
    election = parser.add_argument_group("leader election")
    election.add_argument(
        "--leader-elect",
        action="store_true",
        help="run the controllers only while holding the Lease (informers run on every "
        "replica); exits 10 when the lease is lost",
    )
    election.add_argument(
        "--leader-election-id",
        type=_dns_subdomain,
        default=DEFAULT_LEADER_ELECTION_ID,
        metavar="NAME",
        help=f"the Lease name (default: {DEFAULT_LEADER_ELECTION_ID})",
    )
    election.add_argument(
        "--leader-election-namespace",
        type=_dns_label,
        metavar="NS",
        help="the Lease namespace (default: the Pod's namespace in a cluster, else default)",
    )
    _add_timing_flags(
        election,
        "leader-election",
        lease_duration="followers wait this long after the last renewal",
        renew_deadline="the leader gives up if it cannot renew within this",
        retry_period="pause between attempts",
    )
    shards = parser.add_argument_group(
        "sharding",
        "split every controller's keys over the replicas of a shard group, each holding a "
        "Lease of its own (see the Sharding guide); excludes --leader-elect",
    )
    shards.add_argument(
        "--shard",
        action="store_true",
        help="turn sharding on (so does --shard-by or --shard-group); exits 10 when this "
        "replica's membership lapses",
    )
    shards.add_argument(
        "--shard-by",
        choices=SHARD_MODES,
        help="what is hashed over the members: key (every replica caches everything and "
        "reconciles its share of the keys; the default) or namespace (each replica "
        "caches and reconciles only the namespaces it owns, starting and stopping their "
        "informers as members come and go; needs list/watch on namespaces unless "
        "--namespace is given, which then limits the namespaces distributed; controllers "
        "watching cluster-scoped resources need key)",
    )
    shards.add_argument(
        "--shard-group",
        type=_shard_group,
        metavar="NAME",
        help="the shard group: replicas of one group split the keys (default: the "
        "controllers' names joined with '-')",
    )
    shards.add_argument(
        "--shard-lease-namespace",
        type=_dns_label,
        metavar="NS",
        help="the namespace of the member Leases (default: the Pod's namespace in a "
        "cluster, else default)",
    )
    _add_timing_flags(
        shards,
        "shard",
        lease_duration="others take a member's keys this long after its last renewal",
        renew_deadline="a member stops reconciling if it cannot renew within this",
        retry_period="pause between renewals and between lists of the members",
    )
    ops = parser.add_argument_group("operability")
    ops.add_argument(
        "--metrics-bind-address",
        type=_bind_address,
        default="0",
        metavar="ADDR",
        help="HOST:PORT for Prometheus metrics; 0 disables (default)",
    )
    ops.add_argument(
        "--metrics-secure",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve metrics over HTTPS, each scrape authenticated (TokenReview) and "
        "authorized (SubjectAccessReview: get on the non-resource URL /metrics), as "
        "controller-runtime's --metrics-secure (default: on; --no-metrics-secure serves "
        "plain HTTP to anyone who reaches the port)",
    )
    ops.add_argument(
        "--metrics-cert-dir",
        metavar="DIR",
        help="folder holding tls.crt and tls.key for secure metrics, re-read when they "
        "change (default: a self-signed certificate generated at startup)",
    )
    ops.add_argument(
        "--health-probe-bind-address",
        type=_bind_address,
        default="0",
        metavar="ADDR",
        help="HOST:PORT for /healthz and /readyz; 0 disables (default)",
    )
    hooks = parser.add_argument_group(
        "webhooks",
        "admission and conversion webhooks, served over HTTPS on every replica (neither "
        "leader election nor sharding gates them); a TARGET's webhooks are always served",
    )
    hooks.add_argument(
        "--webhooks",
        metavar="A,B",
        help="registered webhooks to serve too, by entry-point name (kube_informer.webhooks; "
        "default: none)",
    )
    hooks.add_argument(
        "--webhook-bind-address",
        type=_bind_address,
        default=":9443",
        metavar="ADDR",
        help="HOST:PORT the webhook server listens on, when there are webhooks; 0 disables "
        "(default: :9443)",
    )
    hooks.add_argument(
        "--webhook-cert-dir",
        metavar="DIR",
        help="folder holding the serving certificate (tls.crt, tls.key), re-read when they "
        f"change (default: {DEFAULT_CERT_DIR})",
    )
    return parser
