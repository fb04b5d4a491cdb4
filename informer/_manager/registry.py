"""What a Manager runs: the controller classes and instances and the webhooks added to it.

Additions are checked when they are made (a class or webhook added twice, two webhooks
on one path, an instance built on another Manager's factories); :meth:`Registry.build`
instantiates the classes once the factories exist and checks that every controller's
name is unique (names label logs and metrics). Only the Manager mutates a Registry, and
only before it starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._cache.factory import SharedInformerFactory
from .._controller.controller import Controller
from .._queue.metrics import QueueMetricsProvider, use_queue_metrics_provider
from .._rest.api_client import ApiClient
from .._webhook.base import Webhook

__all__ = ["Registry"]


class Registry:
    """The added controller classes, controller instances and webhooks, in order."""

    def __init__(self) -> None:
        self.classes: list[type[Controller]] = []
        self.controllers: list[Controller] = []
        self.webhooks: list[Webhook] = []

    def add(
        self,
        controller: type[Controller] | Controller,
        *,
        factories: Sequence[SharedInformerFactory],
    ) -> None:
        """Add a class, or an instance built on one of ``factories``."""
        if isinstance(controller, type) and issubclass(controller, Controller):
            if controller in self.classes:
                raise ValueError(f"controller class {controller.__qualname__} added twice")
            self.classes.append(controller)
        elif isinstance(controller, Controller):
            if not any(controller.factory is f for f in factories):
                raise ValueError(
                    f"controller {controller.name!r} was not built on this Manager's "
                    "factories: build it with manager.factory (or manager.factories[i]), "
                    "or add() its class"
                )
            if any(c is controller for c in self.controllers):
                raise ValueError(f"controller {controller.name!r} added twice")
            self.controllers.append(controller)
        else:
            raise TypeError(f"add() takes a Controller subclass or instance, got {controller!r}")

    def add_webhook(self, webhook: Webhook) -> None:
        """Add a webhook; two webhooks cannot share a path."""
        if not isinstance(webhook, Webhook):
            raise TypeError(f"add_webhook() takes an informer.webhook webhook, got {webhook!r}")
        if any(w is webhook for w in self.webhooks):
            raise ValueError(f"webhook {webhook.name!r} added twice")
        clash = next((w for w in self.webhooks if w.path == webhook.path), None)
        if clash is not None:
            raise ValueError(
                f"webhooks {clash.name!r} and {webhook.name!r} are both served at "
                f"{webhook.path}: give one a path="
            )
        self.webhooks.append(webhook)

    def build(
        self,
        api: ApiClient,
        pairs: Iterable[tuple[str | None, SharedInformerFactory]],
        *,
        several: bool,
        workers: int | None,
        grace: float,
        queue_metrics: QueueMetricsProvider,
    ) -> None:
        """Instantiate every class once per ``(namespace, factory)`` pair (named
        ``<name>@<namespace>`` when ``several``, queue metrics from ``queue_metrics``),
        put them before the added instances, cap every controller's shutdown grace at
        ``grace`` and check that names are unique."""
        built: list[Controller] = []
        with use_queue_metrics_provider(queue_metrics):
            for ns, factory in pairs:
                for cls in self.classes:
                    kwargs: dict[str, Any] = {}
                    if workers is not None:
                        kwargs["workers"] = workers
                    if several:
                        kwargs["name"] = f"{cls.name}@{ns}"
                    built.append(cls(factory, api, **kwargs))
        self.controllers = [*built, *self.controllers]
        names: set[str] = set()
        for controller in self.controllers:
            controller.shutdown_grace = min(controller.shutdown_grace, grace)
            if controller.name in names:
                raise ValueError(
                    f"two controllers are named {controller.name!r}: give one a name= "
                    "(names label logs and metrics)"
                )
            names.add(controller.name)
