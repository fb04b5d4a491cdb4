"""Checking a kubeconfig file's structure before kubernetes_asyncio loads it.

kubernetes_asyncio's loader assumes a well-formed file: an empty file, or a context naming
a user that is not defined, end in ``TypeError``/``AssertionError`` messages that name
nothing (``'NoneType' object does not support item assignment``). :func:`check_kubeconfig`
walks the same path the loader takes (file -> context -> cluster and user) and raises one
:class:`~informer.ConfigError` line naming the file, the context and what is missing, as
client-go's ``clientcmd`` validation does. It does not read credential files nor judge
authentication fields: the loader does that, and its errors already name the file.

Pure: no transport import (``informer._rest.api_client`` calls it before loading).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml

from .._exceptions import ConfigError

__all__ = ["check_kubeconfig", "resolve_config", "token_file"]


def check_kubeconfig(path: str, context: str | None = None) -> Mapping[str, Any]:
    """Raise :class:`ConfigError` when the file cannot give a cluster and user for
    ``context`` (default: its ``current-context``); otherwise return the selected
    ``user`` mapping (empty for a context without a user), to be read, not mutated.

    ``OSError`` reading the file is a ``ConfigError`` too. Only ``path`` is read (the
    runner and :func:`~informer.new_api_client` load the first file of ``$KUBECONFIG``).
    """
    where = f"kubeconfig {path!r}"
    try:
        with open(path, "rb") as f:
            config = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())  # YAML errors span lines; keep one
        raise ConfigError(f"{where} is not valid YAML: {detail}") from exc
    if config is None:
        raise ConfigError(
            f"{where} is empty: a kubeconfig needs clusters, users, contexts and a"
            " current-context (kubectl config view --raw shows a valid one)"
        )
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"{where} is not a kubeconfig: its top level is a {_kind(config)}, not a mapping"
            " with clusters, users, contexts and current-context"
        )
    contexts = _named(config, "contexts", where)
    clusters = _named(config, "clusters", where)
    users = _named(config, "users", where)

    name = context
    if not name:
        current = config.get("current-context")
        if not current:
            raise ConfigError(
                f"{where} sets no current-context: pass a context"
                f" ({_defined('contexts', contexts)}) or set one with"
                " `kubectl config use-context NAME`"
            )
        name = str(current)
        origin = f"current-context {name!r}"
    else:
        origin = f"context {name!r}"
    if name not in contexts:
        raise ConfigError(f"{where}: {origin} is not defined ({_defined('contexts', contexts)})")
    where = f"{where}, context {name!r}"
    ctx = _body(contexts, "contexts", name, where)

    cluster_name = ctx.get("cluster")
    if not cluster_name:
        raise ConfigError(f"{where}: the context names no cluster (add `cluster: NAME`)")
    cluster_name = str(cluster_name)
    if cluster_name not in clusters:
        raise ConfigError(
            f"{where}: cluster {cluster_name!r} is not defined ({_defined('clusters', clusters)})"
        )
    server = _body(clusters, "clusters", cluster_name, where).get("server")
    if not server or not isinstance(server, str):
        raise ConfigError(f"{where}: cluster {cluster_name!r} has no server (add `server: URL`)")

    user_name = ctx.get("user")
    if not user_name:
        if server.startswith("https"):
            raise ConfigError(
                f"{where}: the context names no user (add `user: NAME`; a user `{{}}`"
                " connects anonymously)"
            )
        return {}
    user_name = str(user_name)
    if user_name not in users:
        raise ConfigError(
            f"{where}: user {user_name!r} is not defined ({_defined('users', users)})"
        )
    return _body(users, "users", user_name, where)


def token_file(path: str, user: Mapping[str, Any]) -> str | None:
    """The ``tokenFile`` that kubernetes_asyncio reads for ``user`` (none when an
    ``auth-provider``, an ``exec`` plugin or an inline ``token`` takes precedence), made
    absolute relative to the kubeconfig's folder as the loader does."""
    name = user.get("tokenFile")
    if not name or not isinstance(name, str) or user.keys() & {"auth-provider", "exec", "token"}:
        return None
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), name))


def resolve_config(kubeconfig: str | None, in_cluster: bool | None) -> tuple[str, bool]:
    """The kubeconfig path to load, and whether to use the in-cluster config instead.

    ``kubeconfig`` defaults to the first file of ``$KUBECONFIG``, then
    ``~/.kube/config``; ``in_cluster=None`` chooses in-cluster when that file does not
    exist and ``KUBERNETES_SERVICE_HOST`` is set. Raises :class:`ConfigError` when the
    file is needed and does not exist."""
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    path = kubeconfig or env or os.path.expanduser("~/.kube/config")
    exists = os.path.exists(path)
    if in_cluster is None:
        in_cluster = (
            kubeconfig is None and not exists and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        )
    if not in_cluster and not exists:
        raise ConfigError(f"kubeconfig {path!r} does not exist")
    return path, in_cluster


def _named(config: Mapping[str, Any], section: str, where: str) -> dict[str, Any]:
    """The entries of ``clusters``/``users``/``contexts`` by name -> their inner value
    (``cluster``/``user``/``context``). A missing or null section is empty; the first
    entry of a name wins, as in the loader."""
    entries = config.get(section)
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: {section} is a {_kind(entries)}, not a list")
    inner = section[:-1]  # clusters -> cluster
    named: dict[str, Any] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not entry.get("name"):
            raise ConfigError(f"{where}: {section}[{index}] has no name")
        named.setdefault(str(entry["name"]), entry.get(inner))
    return named


def _body(named: Mapping[str, Any], section: str, name: str, where: str) -> Mapping[str, Any]:
    """The mapping of the selected entry ``name`` of ``section``."""
    inner = section[:-1]
    value = named[name]
    if not isinstance(value, Mapping):
        hint = " (`user: {}` connects anonymously)" if inner == "user" else ""
        raise ConfigError(f"{where}: {inner} {name!r} has no {inner!r} mapping{hint}")
    return value


def _defined(section: str, named: Mapping[str, Any]) -> str:
    if not named:
        return f"the file defines no {section}"
    return f"{section}: " + ", ".join(repr(n) for n in named)


def _kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "mapping"
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )
