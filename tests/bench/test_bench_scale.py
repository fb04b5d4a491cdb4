"""``python -m bench scale`` without a control plane: the slope, growth and projection
arithmetic, ``--sizes`` parsing, the rounds per size, the report, and the peer's
event-loop stall monitor (the benchmark itself takes minutes: bench/RESULTS.md,
"Scaling curve")."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is not an installed package: it runs from the repo
    sys.path.insert(0, str(ROOT))

from bench import _cli, _scale  # noqa: E402
from bench._config import Config  # noqa: E402
from bench._peer import StallMonitor  # noqa: E402

pytestmark = pytest.mark.timeout(30)

LINEAR = [(10_000, 1.5), (50_000, 5.5), (100_000, 10.5), (200_000, 20.5)]
"""0.5 s fixed + 1 s per 10k objects."""


def test_slopes_are_per_object_between_consecutive_sizes() -> None:
    got = _scale.slopes(list(reversed(LINEAR)), per=10_000)
    assert [(a, b) for a, b, _ in got] == [(10_000, 50_000), (50_000, 100_000), (100_000, 200_000)]
    assert [s for _, _, s in got] == pytest.approx([1.0, 1.0, 1.0])


def test_fit_and_projection_of_a_line() -> None:
    line = _scale.fit(LINEAR)
    assert line is not None
    assert line == pytest.approx((0.5, 1e-4))
    assert _scale.project(LINEAR) == pytest.approx(100.5)
    assert _scale.project(LINEAR, 0) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "points", [[], [(10_000, 1.0)], [(10_000, 1.0), (10_000, 2.0)]], ids=["none", "one", "same"]
)
def test_no_fit_without_two_sizes(points: list[tuple[int, float]]) -> None:
    assert _scale.fit(points) is None
    assert _scale.project(points) is None


@pytest.mark.parametrize(
    ("f2", "superlinear"),
    [(2.0, False), (2.3, False), (2.31, True), (4.0, True), (1.0, False)],
    ids=["linear", "at-tolerance", "beyond-tolerance", "quadratic", "flat"],
)
def test_growth_flags_superlinear_beyond_the_tolerance(f2: float, superlinear: bool) -> None:
    (g,) = _scale.growth([(100_000, 1.0), (200_000, f2)])
    assert (g.ratio, g.linear) == pytest.approx((f2, 2.0))
    assert g.superlinear is superlinear
    assert ("SUPERLINEAR" in str(g)) is superlinear


def test_growth_of_a_linear_curve_with_a_fixed_cost_is_not_superlinear() -> None:
    assert not any(g.superlinear for g in _scale.growth(LINEAR))
    quadratic = [(n, (n / 10_000) ** 2) for n, _ in LINEAR]
    assert all(g.superlinear for g in _scale.growth(quadratic))


def test_growth_skips_figures_that_are_not_positive() -> None:
    assert _scale.growth([(10_000, 0.0), (50_000, 2.0), (100_000, 4.0)]) == [
        _scale.Growth(50_000, 100_000, 2.0, 2.0)
    ]


@pytest.mark.parametrize(
    ("text", "named", "sizes"),
    [
        ("10000,50000", {"cm10000": 10_000, "cm50000": 50_000}, (10_000, 50_000)),
        ("cm10k=10000,deploy2k=2000", {"cm10k": 10_000, "deploy2k": 2_000}, (2_000, 10_000)),
        ("50000, 10000,", {"cm50000": 50_000, "cm10000": 10_000}, (10_000, 50_000)),
    ],
    ids=["bare", "named", "unsorted"],
)
def test_sizes_serve_sync_and_scale(
    text: str, named: dict[str, int], sizes: tuple[int, ...]
) -> None:
    assert _cli.parse_sizes(text) == (named, sizes)


@pytest.mark.parametrize("text", ["", "0", "x", "cm=-5"], ids=["empty", "zero", "nan", "negative"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        _cli.parse_sizes(text)


def test_scale_runs_only_when_named() -> None:
    names, cfg = _cli.parse([])
    assert "scale" not in names
    names, cfg = _cli.parse(["scale", "--sizes", "1000,2000", "--repeat", "1"])
    assert names == ["scale"]
    assert cfg.scale_sizes == (1_000, 2_000)
    assert cfg.repeat == 1


@pytest.mark.parametrize(
    ("size", "repeat", "rounds"),
    [(10_000, 3, 3), (100_000, 3, 3), (200_000, 3, 2), (200_000, 1, 1)],
    ids=["small", "limit", "large", "large-one"],
)
def test_rounds_per_size(size: int, repeat: int, rounds: int) -> None:
    cfg = Config(repeat=repeat)
    assert _scale.rounds_for(size, cfg) == rounds


def _figures(seconds: float, rss: float, stall: float | None) -> _scale.Figures:
    return _scale.Figures(
        seconds=seconds,
        rss_mb=rss,
        stall_sync_ms=stall,
        stall_sync_cpu_ms=stall,
        stall_total_ms=stall,
        stall_total_cpu_ms=stall,
        freeze_ms=0.0 if stall is not None else None,
        full_collect_ms=stall,
        full_collect_cpu_ms=stall,
        gc_max_ms=None,
        rounds=1,
    )


def test_report_has_a_projection_row_and_flags_stalls() -> None:
    ours, go = _scale.SCALE_CLIENTS[0], _scale.SCALE_CLIENTS[2]
    figures = {
        ours.name: {10_000: _figures(1.0, 20.0, 20.0), 20_000: _figures(2.0, 40.0, 150.0)},
        go.name: {10_000: _figures(0.5, 10.0, None), 20_000: _figures(1.0, 20.0, None)},
    }
    text = _scale.report(
        [ours, go], [10_000, 20_000], figures, {}, {10_000: 1.0, 20_000: 2.0}, ["1.0"], Config()
    )
    rows = [line for line in text.splitlines() if "1,000,000 (projection)" in line]
    assert len(rows) == 2
    assert "| 100.0 " in rows[0]  # 1 s per 10k objects
    assert "| 2000 " in rows[0]  # 20 MB per 10k objects
    assert "stall (CPU) 10k-20k 7.50 (linear 2.0) SUPERLINEAR" in text
    assert "150 ms at 20,000 (target < 100 ms: MISSED)" in text


async def _blocked_loop(block: float, *, busy: bool) -> StallMonitor:
    monitor = StallMonitor(period=0.005)
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        await anyio.sleep(0.05)
        if busy:
            end = time.thread_time() + block
            while time.thread_time() < end:  # CPU work without a yield
                pass
        else:
            time.sleep(block)  # noqa: ASYNC251 -- blocked on purpose, off the CPU
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    return monitor


@pytest.mark.anyio
@pytest.mark.parametrize("busy", [True, False], ids=["cpu", "blocked"])
async def test_stall_monitor_measures_a_blocked_loop(busy: bool) -> None:
    monitor = await _blocked_loop(0.12, busy=busy)
    assert monitor.max_s >= 0.1
    assert monitor.worst[0][0] == monitor.max_s
    if busy:
        assert monitor.max_cpu_s >= 0.1
    else:
        assert monitor.max_cpu_s < 0.05


def test_attribution_keeps_the_longest_call_of_each_step() -> None:
    from bench._stallattr import Attribution

    found = Attribution()

    def work(seconds: float) -> str:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass
        return "done"

    timed = found.wrap("work", work)
    assert [timed(0.001), timed(0.03), timed(0.002)] == ["done"] * 3
    step = found.report()["work"]
    assert step["calls"] == 3
    assert step["cpu_ms"] >= 30
    assert step["wall_ms"] >= step["cpu_ms"] * 0.9


@pytest.mark.anyio
async def test_attribution_wraps_the_sync_steps_of_the_cache_and_unwraps_them() -> None:
    import orjson

    from bench import _stallattr
    from informer._cache.delta_fifo import DeltaFIFO
    from informer._cache.list_decode import ListStreamDecoder

    originals = (ListStreamDecoder.feed, DeltaFIFO.replace_steps, DeltaFIFO.pop_ready_keyed)
    found = _stallattr.install()
    try:
        body = orjson.dumps(
            {
                "kind": "ConfigMapList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "1"},
                "items": [{"metadata": {"name": f"c{i}", "namespace": "ns"}} for i in range(50)],
            }
        )
        decoder = ListStreamDecoder(lambda page: None)
        decoder.feed(body[:100])
        decoder.feed(body[100:])
        page = await _run_to_end(decoder.finish())
        fifo = DeltaFIFO()
        for _ in fifo.replace_steps(page["items"], step=20):
            pass
        assert fifo.pop_ready_keyed(lambda key, deltas, initial: None, 128) == 50
    finally:
        _stallattr.uninstall()
    assert (ListStreamDecoder.feed, DeltaFIFO.replace_steps, DeltaFIFO.pop_ready_keyed) == originals
    calls = {name: step["calls"] for name, step in found.report().items()}
    assert calls == {
        "ListStreamDecoder.feed": 2,
        "ListStreamDecoder.finish": 1,
        "DeltaFIFO.replace_steps": 3,  # pauses after 20 and 40, then the end
        "DeltaFIFO.pop_ready_keyed": 1,
    }


async def _run_to_end(steps: Any) -> Any:
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
