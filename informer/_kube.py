"""The one module that touches kubernetes_asyncio and aiohttp.

It loads client configuration, performs raw (non-model) requests for the ListerWatcher,
and translates transport failures into the error tree of ``informer._exceptions``.
"""

from __future__ import annotations

import os

from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client import ApiClient, Configuration

from ._exceptions import ConfigError

__all__ = ["ApiClient", "new_api_client"]


async def new_api_client(
    *, kubeconfig: str | None = None, context: str | None = None, in_cluster: bool | None = None
) -> ApiClient:
    """A kubernetes_asyncio ``ApiClient`` for a kubeconfig, or the in-cluster config.

    ``kubeconfig`` defaults to ``$KUBECONFIG`` then ``~/.kube/config``. With
    ``in_cluster=None`` the in-cluster config is used when no kubeconfig file exists and
    the process runs in a Pod (``KUBERNETES_SERVICE_HOST`` set). Raises
    :class:`ConfigError` naming the file and the problem. The caller owns the client and
    closes it (``async with`` or ``await client.close()``).
    """
    cfg = Configuration()
    path, use_in_cluster = _resolve_config(kubeconfig, in_cluster)
    if use_in_cluster:
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException as exc:
            raise ConfigError(f"in-cluster config: {exc}") from exc
        return ApiClient(configuration=cfg)
    try:
        await k8s_config.load_kube_config(
            config_file=path, context=context, client_configuration=cfg, persist_config=False
        )
    except k8s_config.ConfigException as exc:
        raise ConfigError(f"kubeconfig {path!r}: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"kubeconfig {path!r} is invalid: {exc}") from exc
    return ApiClient(configuration=cfg)


def _resolve_config(kubeconfig: str | None, in_cluster: bool | None) -> tuple[str, bool]:
    """The kubeconfig path to load, and whether to use the in-cluster config instead."""
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
