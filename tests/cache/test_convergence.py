"""Randomised convergence: after any sequence of changes, watch drops, 410s (as HTTP
errors and as ERROR events), stalls, resourceVersion jumps and late handlers, the store
and a handler-built view both equal the server's truth (keys and resourceVersions), and
every delete names a key the handler knew. Seeded, so a failure reproduces."""

from __future__ import annotations

import random
from typing import Any, Literal

import anyio
import pytest

from informer import DeletedFinalStateUnknown, HandlerFuncs, SharedIndexInformer
from informer.testing import FakeListerWatcher, eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def cm(name: str, v: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns"},
        "data": {"v": str(v)},
    }


def rvs(objects: Any) -> dict[str, str]:
    return {f"ns/{o['metadata']['name']}": o["metadata"]["resourceVersion"] for o in objects}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("watch_list", [False, True], ids=["list-watch", "watch-list"])
@pytest.mark.parametrize("expired", ["raise", "event"], ids=["410-http", "410-event"])
async def test_cache_converges_to_the_truth(
    seed: int, watch_list: bool, expired: Literal["raise", "event"]
) -> None:
    rnd = random.Random(seed)
    fake = FakeListerWatcher([cm(f"c{i}") for i in range(5)], expired_watch=expired)
    informer = SharedIndexInformer(
        fake,
        resync_period=1,
        reflector_options={
            "use_watch_list": watch_list,
            "backoff_initial": 0.001,
            "backoff_cap": 0.01,
            "inactivity_timeout": 0.2,
            "page_size": 2,
        },
    )
    view: dict[str, str] = {}

    async def on_add(obj: Any) -> None:
        if rnd.random() < 0.3:
            await anyio.sleep(0.001)  # a slow handler: its buffer grows meanwhile
        view[f"ns/{obj['metadata']['name']}"] = obj["metadata"]["resourceVersion"]

    def on_update(old: Any, new: Any) -> None:
        view[f"ns/{new['metadata']['name']}"] = new["metadata"]["resourceVersion"]

    def on_delete(obj: Any) -> None:
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else (
            f"ns/{obj['metadata']['name']}"
        )  # fmt: skip
        assert key in view, f"delete of a key the handler never saw: {key}"
        del view[key]

    informer.add_event_handler(HandlerFuncs(on_add, on_update, on_delete), resync_period=1)
    n = 100
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        for step in range(200):
            r = rnd.random()
            keys = list(fake.objects)
            if r < 0.3:
                n += 1
                fake.create(cm(f"c{n}"))
            elif r < 0.55 and keys:
                fake.modify(cm(rnd.choice(keys).split("/")[1], step))
            elif r < 0.75 and keys:
                fake.delete(rnd.choice(keys))
            elif r < 0.8:
                fake.compact()
                fake.close_watches()
            elif r < 0.83:
                fake.compact()
                fake.push_error(410, "Expired", "too old resource version")
            elif r < 0.85:
                fake.stall_watches()
            elif r < 0.87:
                fake.advance_resource_version(3)
                fake.compact()
            elif r < 0.88 and len(informer.listeners) < 3:
                informer.add_event_handler(HandlerFuncs())
            if rnd.random() < 0.4:
                await anyio.sleep(rnd.choice([0, 0, 0.001, 0.01]))
        fake.close_watches()
        truth = rvs(fake.objects.values())

        def converged() -> None:
            assert rvs(informer.indexer.list()) == truth
            assert view == truth

        await eventually(converged, timeout=10, interval=0.02)
        tg.cancel_scope.cancel()
