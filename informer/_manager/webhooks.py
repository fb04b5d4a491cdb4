"""The Manager's webhook server (:class:`~informer._webhook.server.WebhookServer`).

Started first, before the Manager connects: conversion webhooks must answer before the
Manager's own informers can list a CRD at a version other than its storage version, and
an admission webhook must answer whatever else the replica does. Served on **every**
replica: leader election and sharding gate reconciles, never webhooks (the API server
spreads its calls over the replicas behind the Service). Stopped last, after the
controllers.

With no webhook added, or with the address ``"0"``, nothing is served (and no
certificate is needed). Otherwise the server's metrics join the Manager's registry and
its readiness check is ``webhooks``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import anyio
import anyio.abc
import structlog

from .._observability.endpoints import Observability
from .._webhook.base import Webhook
from .._webhook.server import WebhookServer

__all__ = ["serving_webhooks"]

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def serving_webhooks(
    webhooks: Sequence[Webhook],
    *,
    address: str,
    cert_dir: str | None,
    observability: Observability,
) -> AsyncIterator[WebhookServer | None]:
    """Serve ``webhooks`` inside the block (see the module docstring); yields the server,
    or ``None`` when there is nothing to serve. Raises :class:`~informer.ConfigError`
    (no usable certificate) or :class:`~informer.BindError` before yielding."""
    if not webhooks:
        yield None
        return
    if not address or address == "0":
        log.info("manager.webhooks_not_served", webhooks=[w.name for w in webhooks])
        yield None
        return
    server = WebhookServer(webhooks, cert_dir=cert_dir)
    await server.bind(address)
    observability.metrics.registry.register(server.metrics)
    observability.checks.add_readiness("webhooks", server.check)
    # Shielded: a stop cancels everything under the Manager at once, but the controllers'
    # draining reconciles may still call these webhooks; the server stops when the block
    # ends (the Manager exits its stack last-in first-out: after the controllers).
    stop = anyio.CancelScope(shield=True)

    async def serve(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        with stop:
            await server.serve(task_status=task_status)

    async with anyio.create_task_group() as tg:
        await tg.start(serve, name="webhook server")
        try:
            yield server
        finally:
            stop.cancel()
