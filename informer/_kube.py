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
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser(
        "~/.kube/config"
    )
    if in_cluster is None:
        in_cluster = (
            kubeconfig is None
            and not os.path.exists(path)
            and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        )
    if in_cluster:
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)
        except k8s_config.ConfigException as exc:
            raise ConfigError(f"in-cluster config: {exc}") from exc
        return ApiClient(configuration=cfg)
    if not os.path.exists(path):
        raise ConfigError(f"kubeconfig {path!r} does not exist")
    try:
        await k8s_config.load_kube_config(
            config_file=path, context=context, client_configuration=cfg, persist_config=False
        )
    except k8s_config.ConfigException as exc:
        raise ConfigError(f"kubeconfig {path!r}: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"kubeconfig {path!r} is invalid: {exc}") from exc
    return ApiClient(configuration=cfg)
