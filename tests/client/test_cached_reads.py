"""Reads served from selector-scoped informers (``informer/_client/cache_reads.py``).

controller-runtime serves a read from a cache restricted by selectors and answers a miss
there with ``NotFound`` although the object exists (its documented footgun). Here an
informer with selectors serves a ``get`` of an object it holds and a ``list`` whose
selectors imply its own; anything else goes to the API server, so a miss is never a
false ``NotFound``. Requests are counted (``ApiCalls``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from api_calls import ApiCalls

from informer import Client, NotFound, Obj, SharedInformerFactory
from informer._cache.factory import InformerScope
from informer._client.cache_reads import cached_get, list_source
from informer.resources import CONFIGMAPS

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> ApiCalls:
    return ApiCalls(monkeypatch)


def configmap(name: str, namespace: str, **labels: str) -> Obj:
    meta = {"name": name, "namespace": namespace, "labels": labels}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


@asynccontextmanager
async def informers(
    api_client: Any, namespace: str, *scopes: tuple[str | None, str | None]
) -> AsyncIterator[Client]:
    """A client on a factory with one ConfigMap informer per (label, field) selectors."""
    factory = SharedInformerFactory(api_client, namespace=namespace)
    for labels, fields in scopes:
        factory.informer_for(CONFIGMAPS, label_selector=labels, field_selector=fields)
    async with factory:
        assert await factory.wait_for_cache_sync(timeout=30)
        yield Client(api_client, factory=factory)


async def seed(client: Client, namespace: str) -> None:
    await client.create(configmap("web", namespace, app="web", tier="front"))
    await client.create(configmap("api", namespace, app="web", tier="back"))
    await client.create(configmap("db", namespace, app="db"))


async def test_get_from_a_selector_cache_and_a_miss_from_the_api(
    api_client: Any, namespace: str, api_calls: ApiCalls, client: Client
) -> None:
    await seed(client, namespace)
    async with informers(api_client, namespace, ("app=web", None)) as cached:
        api_calls.clear()
        web = await cached.get(CONFIGMAPS, "web", namespace=namespace)
        assert web["metadata"]["labels"]["app"] == "web" and api_calls.calls == []
        db = await cached.get(CONFIGMAPS, "db", namespace=namespace)  # exists, not cached
        assert db["metadata"]["name"] == "db" and api_calls.methods() == ["GET"]
        api_calls.clear()
        with pytest.raises(NotFound):
            await cached.get(CONFIGMAPS, "missing", namespace=namespace)
        assert api_calls.methods() == ["GET"]  # asked, not assumed


async def test_list_from_a_cache_whose_selectors_the_request_implies(
    api_client: Any, namespace: str, api_calls: ApiCalls, client: Client
) -> None:
    await seed(client, namespace)
    async with informers(api_client, namespace, ("app=web", None)) as cached:
        api_calls.clear()

        async def names(**selectors: Any) -> list[str]:
            objs = await cached.list(CONFIGMAPS, namespace=namespace, **selectors)
            return sorted(o["metadata"]["name"] for o in objs)

        assert await names(label_selector="app=web") == ["api", "web"]
        assert await names(label_selector="tier = front, app == web") == ["web"]
        assert await names(label_selector={"app": "web", "tier": "back"}) == ["api"]
        assert await names(label_selector="app=web", field_selector="metadata.name!=api") == ["web"]
        assert api_calls.calls == []  # all four from the cache
        assert await names(label_selector="tier=back") == ["api"]  # broader: the API
        assert await names() == ["api", "db", "web"]
        assert api_calls.methods() == ["GET", "GET"]


async def test_a_cache_without_selectors_is_preferred_and_final(
    api_client: Any, namespace: str, api_calls: ApiCalls, client: Client
) -> None:
    await seed(client, namespace)
    async with informers(api_client, namespace, ("app=web", None), (None, None)) as cached:
        api_calls.clear()
        with pytest.raises(NotFound, match="informer cache"):
            await cached.get(CONFIGMAPS, "missing", namespace=namespace)
        assert len(await cached.list(CONFIGMAPS, namespace=namespace)) == 3
        assert api_calls.calls == []


async def test_a_field_selected_cache_serves_its_own_selector(
    api_client: Any, namespace: str, api_calls: ApiCalls, client: Client
) -> None:
    await seed(client, namespace)
    async with informers(api_client, namespace, (None, "metadata.name=db")) as cached:
        api_calls.clear()
        [db] = await cached.list(CONFIGMAPS, namespace=namespace, field_selector="metadata.name=db")
        assert db["metadata"]["name"] == "db" and api_calls.calls == []
        await cached.get(CONFIGMAPS, "web", namespace=namespace)
        assert api_calls.methods() == ["GET"]


@pytest.mark.parametrize(
    ("informer", "request_labels", "request_fields", "served"),
    [
        (("app=web", None), "app=web", None, True),
        (("app=web", None), "app==web,x", None, True),
        (("env in (b,a)", None), "env in (a, b)", None, True),
        (("app=web", None), None, None, False),
        (("app=web,x", None), "app=web", None, False),
        ((None, "status.phase=Running"), None, "status.phase=Running", True),
        ((None, "metadata.name=a"), None, "metadata.name=a,status.phase=Running", False),
        ((None, None), None, "status.phase=Running", False),
    ],
    ids=[
        "same",
        "narrower",
        "set-spelled-otherwise",
        "no-selector",
        "broader",
        "own-field-term",
        "other-field-term",
        "server-side-field",
    ],
)
def test_which_lists_a_scoped_cache_serves(
    informer: tuple[str | None, str | None],
    request_labels: str | None,
    request_fields: str | None,
    served: bool,
) -> None:
    factory = SharedInformerFactory(None, namespace="ns")
    built = factory.informer_for(CONFIGMAPS, label_selector=informer[0], field_selector=informer[1])
    scope = InformerScope(built, "ns", informer[0], informer[1])
    source = list_source([scope], label_selector=request_labels, field_selector=request_fields)
    assert (source is not None) is served


class _Lister:
    def __init__(self, objs: dict[str, Obj]) -> None:
        self.objs = objs

    def get(self, name: str, *, namespace: str | None = None) -> Obj | None:
        return self.objs.get(name)


class _Informer:
    """What ``cached_get`` reads of an informer: its lister."""

    def __init__(self, *objs: Obj) -> None:
        self._lister = _Lister({o["metadata"]["name"]: o for o in objs})

    def lister(self) -> _Lister:
        return self._lister


def _cm(name: str, rv: str, **labels: str) -> Obj:
    obj = configmap(name, "ns", **labels)
    obj["metadata"]["resourceVersion"] = rv
    return obj


def _scope(informer: _Informer, labels: str | None = None, fields: str | None = None) -> Any:
    return InformerScope(informer, "ns", labels, fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        ([(_Informer(_cm("inv", "5")), None, None)], ("5", True)),
        ([(_Informer(), None, None)], (None, True)),
        ([(_Informer(), "app=web", None)], (None, False)),
        # a lagging cache without selectors still holds what a field-scoped one saw deleted
        (
            [(_Informer(_cm("inv", "5")), None, None), (_Informer(), None, "metadata.name=inv")],
            (None, False),
        ),
        # ... or lags behind a creation the scoped one saw
        (
            [(_Informer(), None, None), (_Informer(_cm("inv", "7")), None, "metadata.name=inv")],
            (None, False),
        ),
        # two caches at different resourceVersions
        (
            [(_Informer(_cm("inv", "5")), None, None), (_Informer(_cm("inv", "6")), "a=b", None)],
            (None, False),
        ),
        # agreeing caches answer; a scoped cache whose selectors exclude the object is no vote
        (
            [
                (_Informer(_cm("inv", "5", a="b")), None, None),
                (_Informer(_cm("inv", "5")), "a", None),
            ],
            ("5", True),
        ),
        (
            [(_Informer(_cm("inv", "5", a="c")), None, None), (_Informer(), "a=b", None)],
            ("5", True),
        ),
        (
            [(_Informer(_cm("inv", "5")), None, None), (_Informer(), None, "metadata.name=other")],
            ("5", True),
        ),
        # a field selector evaluated only by the server: ask the server
        (
            [(_Informer(_cm("inv", "5")), None, None), (_Informer(), None, "status.phase=Running")],
            (None, False),
        ),
    ],
    ids=[
        "one-complete-holds",
        "one-complete-lacks",
        "one-scoped-lacks",
        "lagging-delete",
        "lagging-create",
        "different-versions",
        "agree",
        "excluded-by-labels",
        "excluded-by-name",
        "server-side-field",
    ],
)
def test_a_get_asks_the_api_server_when_the_caches_disagree(
    scopes: list[tuple[_Informer, str | None, str | None]],
    expected: tuple[str | None, bool],
) -> None:
    obj, final = cached_get(
        [_scope(i, labels, fields) for i, labels, fields in scopes], "inv", namespace="ns"
    )
    assert ((obj or {}).get("metadata", {}).get("resourceVersion"), final) == expected
