"""One default for the initial sync everywhere: a list then a watch.

The runner (``python -m informer.run``), the Reflector, the factory, the Manager and
``informer.testing.run_controllers`` agree, so tests sync their caches as production does;
``watch_list=True`` / ``--watch-list`` opts into a watch-list stream.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from informer import Controller, Manager, SharedInformerFactory
from informer.cache import Reflector
from informer.resources import CONFIGMAPS
from informer.run.cli import build_parser
from informer.testing import run_controllers

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


class Watcher(Controller):
    def setup(self) -> None:
        self.configmaps = self.watch(CONFIGMAPS)

    async def reconcile(self, key: str) -> None:
        return None


def test_every_entry_point_defaults_to_list_then_watch() -> None:
    reflector = inspect.signature(Reflector).parameters["use_watch_list"].default
    manager = inspect.signature(Manager).parameters["watch_list"].default
    runner = build_parser().parse_args([]).watch_list
    factory = SharedInformerFactory(None).informer_for(CONFIGMAPS).reflector.use_watch_list
    assert (reflector, manager, runner, factory) == (False, False, False, False)
    built = Manager(object(), namespaces=["a"]).factory.informer_for(CONFIGMAPS)
    assert built.reflector.use_watch_list is False
    opted = Manager(object(), namespaces=["a"], watch_list=True).factory.informer_for(CONFIGMAPS)
    assert opted.reflector.use_watch_list is True


async def test_run_controllers_syncs_with_a_list(api_client: Any, namespace: str) -> None:
    async with run_controllers(api_client, Watcher, namespace=namespace) as manager:
        stats = manager.controllers[0].informers[0].reflector.stats
        assert (stats.lists, stats.watch_lists) == (1, 0), stats
