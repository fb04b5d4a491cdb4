"""ListStreamDecoder / decode_list_chunks: a List fed in chunks, however cut, gives what
decode_list (and orjson.loads) gives, each item prepared once, in order; the items of a
built-in kind's List are prepared while the body is still arriving (the real API server's
lists: test_list_decode_real)."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest
from test_list_decode import (
    CASES,
    Recorder,
    deployment,
    expected,
    extra_member,
    kind_repeated,
    many_false_cuts,
    odd_item,
    other_first_key,
    pretty,
    random_items,
    typed_list,
    unstructured_list,
)

from informer._cache import list_decode
from informer._cache.list_decode import ListStreamDecoder, Prepare, decode_list
from informer._meta.types import Obj

PREFIXES = (b'},{"metadata":{"name":', b'},{"apiVersion":"x.io/v1","kind":', b'"items":[{"')


def run(chunks: Iterable[bytes], prepare: Prepare) -> Any:
    decoder = ListStreamDecoder(prepare)
    for chunk in chunks:
        decoder.feed(chunk)
    steps = decoder.finish()
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def random_sizes(raw: bytes, seed: int, most: int) -> list[bytes]:
    rng = random.Random(seed)
    chunks, pos = [], 0
    while pos < len(raw):
        n = rng.randrange(1, most)
        chunks.append(raw[pos : pos + n])
        pos += n
    return chunks


def around(raw: bytes, needle: bytes, *, width: int) -> list[int]:
    """Every offset within ``width`` bytes of each occurrence of ``needle``."""
    points: list[int] = []
    at = raw.find(needle)
    while at >= 0:
        points += range(at - 1, at + len(needle) + width)
        at = raw.find(needle, at + 1)
    return points


CHUNKINGS: dict[str, Callable[[bytes], Iterator[list[bytes]]]] = {
    "whole": lambda raw: iter([[raw]]),
    "bytes": lambda raw: iter([[raw[i : i + 1] for i in range(len(raw))]]),
    "random-small": lambda raw: (random_sizes(raw, seed, 40) for seed in range(3)),
    "random-large": lambda raw: (random_sizes(raw, seed, 5000) for seed in range(3)),
    # every cut inside each separator, one per chunking (the separator split in two)
    "in-separator": lambda raw: (
        [raw[:p], raw[p:]] for needle in PREFIXES for p in around(raw, needle, width=2)[:80]
    ),
    # cuts inside the envelope (before "items":[) and just after it
    "in-envelope": lambda raw: ([raw[:p], raw[p:]] for p in range(raw.find(b'"items":[') + 12)),
    # cuts inside strings: the annotation that looks like a boundary, escapes
    "in-string": lambda raw: (
        [raw[:p], raw[p:]] for p in around(raw, b'"note":"},', width=40)[:60]
    ),
    "in-tail": lambda raw: ([raw[:p], raw[p:]] for p in range(len(raw) - 30, len(raw))),
}


def mangled() -> dict[str, bytes]:
    cases = dict(CASES)
    for mangle in (pretty, odd_item, other_first_key, many_false_cuts, extra_member):
        cases[mangle.__name__] = mangle(CASES["typed"])
    cases["typed-empty"] = typed_list([])
    cases["unstructured-empty"] = unstructured_list([])
    cases["empty-with-spaces"] = (
        b'{"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{},"items":[ ] }\n'
    )
    cases["no-items"] = orjson.dumps({"kind": "X", "apiVersion": "v1", "metadata": {}})
    cases["items-null"] = orjson.dumps({"kind": "X", "items": None})
    cases["item-one-key"] = typed_list([{"metadata": {"name": f"o{i}"}} for i in range(3)])
    return cases


ALL = mangled()


def reference(raw: bytes) -> tuple[Any, list[str], int]:
    """decode_list's page, the items it prepared, how many times prepare was called."""
    prepare = Recorder()
    page = decode_list(raw, tolerant(prepare))
    return page, prepare.items, len(prepare.lists)


def tolerant(prepare: Recorder) -> Prepare:
    """``prepare``, passing items that are not objects through unchanged."""

    def outer(page: Obj) -> Any:
        each = prepare(page)
        if each is None:
            return None
        return lambda obj: each(obj) if type(obj) is dict else obj

    return outer


COMBINATIONS = [
    (case, chunking)
    for case, raw in ALL.items()
    for chunking in CHUNKINGS
    # 1-byte chunks for small cases only; the cuts inside a place the case has
    if not (chunking == "bytes" and len(raw) > 40_000)
    and next(CHUNKINGS[chunking](raw), None) is not None
]


@pytest.mark.parametrize(
    ("case", "chunking"), COMBINATIONS, ids=[f"{c}-{k}" for c, k in COMBINATIONS]
)
def test_every_chunking_gives_the_whole_decode(
    case: str, chunking: str, rest_decodes: list[int]
) -> None:
    raw = ALL[case]
    page, items, lists = reference(raw)  # decode_list == orjson.loads: test_list_decode
    for chunks in CHUNKINGS[chunking](raw):
        prepare = Recorder()
        assert run(chunks, tolerant(prepare)) == page, chunks[:2]
        assert prepare.items == items  # each once, in order
        assert len(prepare.lists) == lists
    if case in STREAMED:  # cut item by item wherever the chunks end, no fallback
        assert rest_decodes == []


STREAMED = {"typed", "typed-one", "typed-nested-cuts", "typed-empty", "item-one-key"}


@pytest.fixture
def rest_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Items decoded before each fall back to decoding the rest whole."""
    calls: list[int] = []
    real = ListStreamDecoder._whole_rest

    def whole_rest(self: ListStreamDecoder) -> Any:
        calls.append(len(self._items))
        return real(self)

    monkeypatch.setattr(ListStreamDecoder, "_whole_rest", whole_rest)
    return calls


def test_odd_item_matches_orjson() -> None:
    """The reference above excuses odd_item's non-dict item from ``expected``."""
    raw = ALL["odd_item"]
    page = run([raw[i : i + 7] for i in range(0, len(raw), 7)], Recorder(none=True))
    assert page == orjson.loads(raw)


def test_a_repeated_kind_prepares_again_as_decode_list_documents() -> None:
    """ "kind" again after the items (bytes no server writes): the page is orjson's, with
    every item prepared for the last kind (those decoded before pass twice)."""
    raw = kind_repeated(CASES["typed"])
    prepare = Recorder()
    page = run(random_sizes(raw, 1, 3000), prepare)
    assert page == expected(raw)
    assert page["kind"] == "OtherList"
    assert len(prepare.lists) == 2
    assert set(prepare.items) == {o["metadata"]["name"] for o in page["items"]}


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"kind":"L","items":[{"a":1},{"a":]}', CASES["typed"][:-50], CASES["typed"][:-3]],
    ids=["open", "bad-item", "truncated", "truncated-tail"],
)
def test_not_json_raises_as_orjson(raw: bytes) -> None:
    for chunks in ([raw], random_sizes(raw, 0, 100)):
        with pytest.raises(orjson.JSONDecodeError):
            run(chunks, Recorder())


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"items"', b"3"], ids=["list", "string", "number"])
def test_not_an_object_is_returned_as_decoded(raw: bytes) -> None:
    prepare = Recorder()
    assert run([raw[:1], raw[1:]], prepare) == orjson.loads(raw)
    assert prepare.lists == []


@pytest.mark.parametrize("seed", range(30))
def test_random_lists_random_chunks(seed: int) -> None:
    rng = random.Random(seed)
    items = random_items(rng)
    for raw in (typed_list(items), unstructured_list(items)):
        prepare = Recorder()
        assert run(random_sizes(raw, seed, rng.choice([3, 30, 300])), prepare) == expected(raw)
        assert prepare.items == [o["metadata"]["name"] for o in items]


def test_built_in_items_are_prepared_while_the_body_arrives() -> None:
    """The memory and latency property: with all but the last bytes fed, every item but
    the last is prepared, and the decoder holds about one item's bytes, not the body."""
    raw = typed_list([deployment(i) for i in range(2000)])
    prepare = Recorder()
    decoder = ListStreamDecoder(prepare)
    held = 0
    for chunk in random_sizes(raw[:-100], 5, 64 * 1024):
        decoder.feed(chunk)
        held = max(held, len(decoder._buf))
    assert len(prepare.items) == 1999
    assert held < 64 * 1024 + 2 * len(raw) // 2000
    decoder.feed(raw[-100:])
    steps = decoder.finish()
    with pytest.raises(StopIteration) as done:
        next(steps)
    assert done.value.value == expected(raw)


def test_custom_resources_are_buffered_until_kind_is_known() -> None:
    """The unstructured layout names the List's kind after its items: nothing is
    prepared before the end (then as decode_list does, pausing as it goes)."""
    raw = unstructured_list([deployment(i) for i in range(300)])
    prepare = Recorder()
    decoder = ListStreamDecoder(prepare)
    for chunk in random_sizes(raw, 2, 5000):
        decoder.feed(chunk)
    assert prepare.lists == []
    steps = decoder.finish()
    pauses = 0
    while True:
        try:
            next(steps)
            pauses += 1
        except StopIteration as done:
            page = done.value
            break
    assert page == expected(raw)
    assert pauses >= len(raw) // list_decode.YIELD_EVERY_BYTES - 1


def test_an_exception_from_the_item_function_propagates() -> None:
    def each(obj: Obj) -> Obj:
        if obj["metadata"]["name"] == "web-3":
            raise RuntimeError("transform failed")
        return obj

    with pytest.raises(RuntimeError, match="transform failed"):
        run(random_sizes(CASES["typed"], 0, 1000), lambda _page: each)


async def achunks(raw: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(raw), size):
        yield raw[i : i + size]


@pytest.mark.anyio
@pytest.mark.parametrize("raw", CASES.values(), ids=CASES.keys())
async def test_decode_list_chunks_gives_the_same_page(raw: bytes) -> None:
    sync, asynchronous = Recorder(), Recorder()
    with anyio.fail_after(10):
        page = await list_decode.decode_list_chunks(achunks(raw, 777), asynchronous)
    assert page == decode_list(raw, sync)
    assert asynchronous.items == sync.items


@pytest.mark.anyio
async def test_decode_list_chunks_lets_other_tasks_run_after_each_chunk() -> None:
    """Chunks that are all ready at once (a fast server): another task still runs
    between two chunks, so never more than one chunk of items is decoded in one go."""
    raw = typed_list([deployment(i) for i in range(3000)])
    size = list_decode.YIELD_EVERY_BYTES
    prepare = Recorder()
    seen: list[int] = []

    async def watch() -> None:
        while True:
            seen.append(len(prepare.items))
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await anyio.lowlevel.checkpoint()
            page = await list_decode.decode_list_chunks(achunks(raw, size), prepare)
            tg.cancel_scope.cancel()
    assert len(page["items"]) == 3000
    progress = sorted(set(seen))
    per_item = len(raw) / 3000
    steps = [b - a for a, b in itertools.pairwise(progress)]
    assert len(progress) >= len(raw) // size - 1
    assert max(steps) <= size / per_item + 2
