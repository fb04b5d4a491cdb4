"""The kubernetes_asyncio ``ApiClient`` every request goes through, and
:func:`new_api_client`, which builds one from a kubeconfig or the in-cluster
configuration.

The selection follows client-go's ``clientcmd`` and controller-runtime's ``GetConfig``:
an explicit kubeconfig, else ``$KUBECONFIG``, else ``~/.kube/config``; the in-cluster
service account when that file does not exist and the process runs in a Pod
(:func:`~informer._rest.kubeconfig.resolve_config`). The
file's structure is checked first (:func:`~informer._rest.kubeconfig.check_kubeconfig`),
so a broken kubeconfig is one :class:`~informer.ConfigError` line; credentials that
rotate are kept fresh by the hooks of :mod:`informer._rest.credentials`.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config import incluster_config
from kubernetes_asyncio.config.exec_provider import ExecProvider
from kubernetes_asyncio.config.kube_config import ConfigNode

from .._exceptions import ConfigError
from .credentials import ExecToken, ExecTokenHook, FileToken, TokenFileHook
from .kubeconfig import check_kubeconfig, resolve_config, token_file

__all__ = ["ApiClient", "new_api_client"]


async def new_api_client(
    *, kubeconfig: str | None = None, context: str | None = None, in_cluster: bool | None = None
) -> ApiClient:
    """A kubernetes_asyncio ``ApiClient`` for a kubeconfig, or the in-cluster config.

    ``kubeconfig`` defaults to ``$KUBECONFIG`` then ``~/.kube/config``. With
    ``in_cluster=None`` the in-cluster config is used when no kubeconfig file exists and
    the process runs in a Pod (``KUBERNETES_SERVICE_HOST`` set). Raises
    :class:`ConfigError` naming the file, the context and the problem (one line). The
    caller owns the client and closes it (``async with`` or ``await client.close()``).

    Credentials stay fresh for the client's lifetime (through the configuration's
    ``refresh_api_key_hook``): a kubeconfig ``tokenFile`` and the in-cluster token file
    are re-read as client-go does (:class:`~informer._rest.credentials.FileToken`: every
    minute, and after a 401), and an exec plugin giving a token is run again once its
    ``expirationTimestamp`` passed and after a 401
    (:class:`~informer._rest.credentials.ExecToken`, as client-go).
    Client certificate files are re-read by the transport
    (see :func:`~informer._rest.transport.auth_status`).
    """
    cfg = Configuration()
    path, use_in_cluster = resolve_config(kubeconfig, in_cluster)
    if use_in_cluster:
        sa_token: str = incluster_config.SERVICE_TOKEN_FILENAME  # read per call: patchable
        try:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=cfg, try_refresh_token=False, token_filename=sa_token
            )
        except k8s_config.ConfigException as exc:
            raise ConfigError(f"in-cluster config: {exc}") from exc
        cfg.refresh_api_key_hook = TokenFileHook(FileToken(sa_token))
        return ApiClient(configuration=cfg)
    user = check_kubeconfig(path, context)  # one line naming file, context and what is missing
    token_path = token_file(path, user)
    try:
        loader = await k8s_config.load_kube_config(
            config_file=path, context=context, client_configuration=cfg, persist_config=False
        )
    except k8s_config.ConfigException as exc:
        raise ConfigError(f"kubeconfig {path!r}: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
        # AttributeError: a YAML document that is a scalar or a list, not a mapping.
        detail = " ".join(str(exc).split())  # YAML errors span lines; keep one
        raise ConfigError(f"kubeconfig {path!r} is invalid: {detail}") from exc
    exec_config = None if "auth-provider" in user else user.get("exec")  # the provider wins
    token = getattr(loader, "token", None)  # "Bearer ...": unset when the plugin gave a cert
    if isinstance(exec_config, Mapping) and isinstance(token, str) and token:
        provider = ExecProvider(ConfigNode("exec", dict(exec_config)))
        exec_token = ExecToken(
            provider.run,
            token=token.removeprefix("Bearer "),
            expiry=getattr(loader, "exec_plugin_expiry", None),
            command=str(exec_config.get("command")),
        )
        cfg.refresh_api_key_hook = ExecTokenHook(exec_token)
    if token_path is not None:
        cfg.refresh_api_key_hook = TokenFileHook(FileToken(token_path))
    return ApiClient(configuration=cfg)
