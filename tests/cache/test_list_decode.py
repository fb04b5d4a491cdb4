"""decode_list: a List decoded item by item gives what orjson.loads gives, each item
prepared once, in order, whatever the bytes hold (the real API server's lists are in
test_informer_e2e, test_convergence and test_metadata_informer)."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest

from informer._cache import list_decode
from informer._cache.list_decode import MAX_FALSE_CUTS, ItemFunc, decode_list
from informer._meta.types import Obj


@pytest.fixture
def whole_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many items were prepared before each fall back to a whole decode."""
    calls: list[int] = []
    real = list_decode._whole

    def whole(raw: bytes, prepare: Any, envelope: Any = None, each: Any = None, done: Any = None):
        calls.append(len(done or []))
        return real(raw, prepare, envelope, each, done)

    monkeypatch.setattr(list_decode, "_whole", whole)
    return calls


def deployment(i: int, *, templates: int = 0, managers: int = 1) -> Obj:
    """A Deployment item as a Go struct writes it (no kind/apiVersion in a List)."""
    spec: Obj = {
        "replicas": 3,
        "selector": {"matchLabels": {"app": f"web-{i}"}},
        "template": {
            "metadata": {"labels": {"app": f"web-{i}"}},
            "spec": {
                "containers": [
                    {"name": "app", "ports": [{"containerPort": 8080}, {"containerPort": 9090}]},
                    {"name": "sidecar"},
                ]
            },
        },
    }
    if templates:  # a StatefulSet's: nested objects that begin as items do
        spec["volumeClaimTemplates"] = [
            {"metadata": {"name": f"data-{t}"}, "spec": {}} for t in range(templates)
        ]
    return {
        "metadata": {
            "name": f"web-{i}",
            "namespace": "ns",
            "resourceVersion": str(100 + i),
            "annotations": {"note": '},{"metadata":{"name":"x"}}]} "items":[', "b": "\\"},
            "managedFields": [
                {"manager": f"m{m}", "fieldsV1": {"f:spec": {}}} for m in range(managers)
            ],
        },
        "spec": spec,
        "status": {},
    }


def typed_list(items: list[Obj], kind: str = "DeploymentList") -> bytes:
    """A List as the API server writes a built-in kind's: items last."""
    body = {
        "kind": kind,
        "apiVersion": "apps/v1",
        "metadata": {"resourceVersion": "9", "continue": "abc"},
        "items": items,
    }
    return orjson.dumps(body) + b"\n"


def unstructured_list(items: list[Obj]) -> bytes:
    """A custom resources' List: keys sorted at every level, items carry apiVersion/kind."""
    body = {
        "apiVersion": "x.io/v1",
        "kind": "WidgetList",
        "metadata": {"resourceVersion": "9"},
        "items": [
            {
                "apiVersion": "x.io/v1",
                "kind": "Widget",
                **item,
                "metadata": {
                    **item["metadata"],
                    # entries that begin as items do: {"apiVersion":"x.io/v1",...
                    "managedFields": [
                        {"apiVersion": "x.io/v1", "kind": "Widget", "manager": "a"},
                        {"apiVersion": "x.io/v1", "kind": "Widget", "manager": "b"},
                    ],
                    "ownerReferences": [{"apiVersion": "x.io/v1", "kind": "Widget"}] * 2,
                },
            }
            for item in items
        ],
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


class Recorder:
    """A Prepare that records its calls and those of the function it returns."""

    def __init__(self, each: Callable[[Obj], Obj] | None = None, *, none: bool = False):
        self.lists: list[Obj] = []
        self.items: list[str] = []
        self._each = each
        self._none = none

    def __call__(self, page: Obj) -> ItemFunc | None:
        self.lists.append({k: v for k, v in page.items() if k != "items"})
        if self._none:
            return None

        def each(obj: Obj) -> Obj:
            self.items.append(obj["metadata"]["name"])
            obj["seen"] = page["kind"]
            return self._each(obj) if self._each else obj

        return each


def expected(raw: bytes, *, kind: str | None = None) -> Any:
    page = orjson.loads(raw)
    for obj in page["items"]:
        obj["seen"] = kind or page["kind"]
    return page


CASES = {
    "typed": typed_list([deployment(i) for i in range(50)]),
    "typed-one": typed_list([deployment(0)]),
    "typed-nested-cuts": typed_list([deployment(i, templates=i % 4) for i in range(20)]),
    "unstructured": unstructured_list([deployment(i) for i in range(20)]),
    "unstructured-one": unstructured_list([deployment(0)]),
}


@pytest.mark.parametrize("raw", CASES.values(), ids=CASES.keys())
def test_same_as_a_whole_decode_each_item_once_in_order(
    raw: bytes, whole_decodes: list[int]
) -> None:
    prepare = Recorder()
    page = decode_list(raw, prepare)
    assert whole_decodes == []  # cut, item by item
    assert page == expected(raw)
    assert list(page) == list(orjson.loads(raw))  # the List's members, in the same order
    assert prepare.items == [o["metadata"]["name"] for o in orjson.loads(raw)["items"]]
    assert len(prepare.lists) == 1


@pytest.mark.parametrize(
    "raw",
    [
        orjson.dumps({"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {}}),
        typed_list([]),
        unstructured_list([]),
        b'{"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{},"items":[ ] }\n',
        orjson.dumps({"kind": "X", "items": None}),
    ],
    ids=["no-items", "typed-empty", "unstructured-empty", "empty-with-spaces", "items-null"],
)
def test_empty_or_absent_items(raw: bytes) -> None:
    prepare = Recorder()
    assert decode_list(raw, prepare) == orjson.loads(raw)
    assert prepare.items == []
    assert len(prepare.lists) == 1


def test_the_function_may_replace_each_item() -> None:
    raw = CASES["typed"]
    page = decode_list(raw, lambda _page: lambda obj: {"name": obj["metadata"]["name"]})
    assert page["items"] == [{"name": f"web-{i}"} for i in range(50)]
    assert page["metadata"] == {"resourceVersion": "9", "continue": "abc"}


def test_prepare_may_return_none() -> None:
    raw = CASES["typed-nested-cuts"]
    prepare = Recorder(none=True)
    assert decode_list(raw, prepare) == orjson.loads(raw)
    assert len(prepare.lists) == 1


def pretty(raw: bytes) -> bytes:
    return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2)


def odd_item(raw: bytes) -> bytes:
    """The third item is not an object."""
    page = orjson.loads(raw)
    page["items"][2] = ["not", "an", "object"]
    return orjson.dumps(page)


def other_first_key(raw: bytes) -> bytes:
    """Items from the fourth on begin differently: no boundary is found after the third."""
    page = orjson.loads(raw)
    page["items"][3:] = [{"spec": o["spec"], "metadata": o["metadata"]} for o in page["items"][3:]]
    return orjson.dumps(page)


def many_false_cuts(raw: bytes) -> bytes:
    """The fifth item holds more nested item-like objects than are tried."""
    page = orjson.loads(raw)
    page["items"][4] = deployment(4, templates=MAX_FALSE_CUTS + 3)
    return orjson.dumps(page)


def extra_member(raw: bytes) -> bytes:
    """Another member after items (no API server writes it): the List is decoded whole."""
    return raw.rstrip()[:-1] + b',"extra":[1]}'


def kind_repeated(raw: bytes) -> bytes:
    """ "kind" again after the items: the last one counts, as for orjson (no fallback)."""
    return raw.rstrip()[:-1] + b',"kind":"OtherList"}'


@pytest.mark.parametrize(
    ("mangle", "prepared_before"),
    [
        (pretty, [0]),
        (odd_item, [1]),  # the second one ends where no boundary follows
        (other_first_key, [2]),
        (many_false_cuts, [4]),
        (extra_member, [49]),
        (kind_repeated, []),
    ],
    ids=lambda f: getattr(f, "__name__", ""),
)
def test_fallbacks_give_the_same_result_each_item_once(
    mangle: Callable[[bytes], bytes], prepared_before: list[int], whole_decodes: list[int]
) -> None:
    raw = mangle(CASES["typed"])
    prepare = Recorder(each=lambda o: o)
    names: list[str] = []

    def each_named(page: Obj) -> ItemFunc | None:
        inner = prepare(page)
        assert inner is not None

        def each(obj: Any) -> Any:
            names.append(obj["metadata"]["name"] if type(obj) is dict else repr(obj))
            return inner(obj) if type(obj) is dict else obj

        return each

    page = decode_list(raw, each_named)
    reference = orjson.loads(raw)
    for obj in reference["items"]:
        if type(obj) is dict:
            obj["seen"] = reference["kind"]
    assert page == reference
    assert len(names) == len(reference["items"])  # each item once, even after a fallback
    assert len(prepare.lists) == 1
    assert whole_decodes == prepared_before


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"kind":"L","items":[{"a":1},{"a":]}', CASES["typed"][:-50]],
    ids=["empty", "open", "bad-item", "truncated"],
)
def test_not_json_raises_as_orjson(raw: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        decode_list(raw, Recorder())


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"items"', b"3"], ids=["list", "string", "number"])
def test_not_an_object_is_returned_as_decoded(raw: bytes) -> None:
    prepare = Recorder()
    assert decode_list(raw, prepare) == orjson.loads(raw)
    assert prepare.lists == []


def test_an_exception_from_the_item_function_propagates() -> None:
    def each(obj: Obj) -> Obj:
        if obj["metadata"]["name"] == "web-3":
            raise RuntimeError("transform failed")
        return obj

    with pytest.raises(RuntimeError, match="transform failed"):
        decode_list(CASES["typed"], lambda _page: each)


def random_value(rng: random.Random, depth: int) -> Any:
    pick = rng.randrange(9 if depth < 4 else 5)
    if pick == 0:
        return rng.choice(["", "a", '},{"metadata":{"name":', "]}", '"items":[', "\\", "é☃"])
    if pick == 1:
        return rng.randrange(-5, 100000)
    if pick == 2:
        return rng.choice([True, False, None, 1.5])
    if pick in (3, 4):
        return f"s{rng.randrange(100)}"
    if pick in (5, 6):
        keys = ["metadata", "name", "items", "kind", "apiVersion", "spec", "x"]
        return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def random_items(rng: random.Random) -> list[Obj]:
    """1-11 items named o0, o1... with random members (some hold "},{..." inside)."""
    items = []
    for i in range(rng.randrange(1, 12)):
        extra = random_value(rng, 2)
        item: Obj = {"metadata": {"name": f"o{i}", **(extra if type(extra) is dict else {})}}
        for _ in range(rng.randrange(4)):
            item[rng.choice(["spec", "status", "data", "metadata2"])] = random_value(rng, 1)
        items.append(item)
    return items


@pytest.mark.parametrize("seed", range(40))
def test_random_lists(seed: int, whole_decodes: list[int]) -> None:
    rng = random.Random(seed)
    items = random_items(rng)
    for raw in (typed_list(items), unstructured_list(items)):
        prepare = Recorder()
        page = decode_list(raw, prepare)
        assert page == expected(raw)
        assert len(prepare.items) == len(items)
    assert whole_decodes.count(0) < 2  # some random items hold "},{...": cut all the same


async def one_chunk(raw: bytes) -> AsyncIterator[bytes]:
    yield raw


@pytest.mark.anyio
@pytest.mark.parametrize("raw", CASES.values(), ids=CASES.keys())
async def test_the_chunked_decode_of_one_chunk_gives_the_same_page(raw: bytes) -> None:
    sync, asynchronous = Recorder(), Recorder()
    with anyio.fail_after(10):
        page = await list_decode.decode_list_chunks(one_chunk(raw), asynchronous)
    assert page == decode_list(raw, sync)
    assert asynchronous.items == sync.items


@pytest.mark.anyio
async def test_a_buffered_decode_lets_other_tasks_run_as_it_goes() -> None:
    """A custom resources' page of ~2.3 MiB of items, buffered whole (its kind follows
    the items): another task runs between every 64 KiB decoded (the first list of a big
    cache is one page; decoded in one call it held the loop)."""
    raw = unstructured_list([deployment(i) for i in range(5000)])
    assert len(raw) > 30 * list_decode.YIELD_EVERY_BYTES
    prepare = Recorder()
    seen: list[int] = []  # items prepared so far, each time the other task ran

    async def watch() -> None:
        while True:
            seen.append(len(prepare.items))
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await anyio.lowlevel.checkpoint()  # let it start
            page = await list_decode.decode_list_chunks(one_chunk(raw), prepare)
            tg.cancel_scope.cancel()
    assert len(page["items"]) == 5000
    progress = sorted(set(seen))
    assert len(progress) >= len(raw) // list_decode.YIELD_EVERY_BYTES - 1
    per_item = len(raw) / 5000
    steps = [b - a for a, b in itertools.pairwise(progress)]
    # never more than one budget (plus the item that crosses it) between two runs
    assert max(steps) <= list_decode.YIELD_EVERY_BYTES / per_item + 2
