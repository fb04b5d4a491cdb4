"""Conventions of this test suite that a test cannot check about itself.

**No pytest outcome inside ``async with``.** ``pytest.fail``, ``pytest.skip`` and
``pytest.xfail`` raise ``BaseException`` subclasses. Raised inside an anyio task group,
they leave it as a ``BaseExceptionGroup``, which ends the anyio pytest plugin's runner
task (anyio 4.16): every later async test of that xdist worker then fails with
``ClosedResourceError`` (one demo failure once showed as 104 failures and 54 errors).
Inside ``async with`` (task groups, and the contexts that may hold one: a Manager, a
watch, a factory), fail with ``assert`` or ``raise AssertionError(...)``; a plain call
in the test's own body is fine. The check below sees the calls written inside a block,
not those of a helper called from it (``tests/samples/test_demo.py``'s ``until_prompt``
follows the rule by hand).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
OUTCOMES = frozenset({"fail", "skip", "xfail"})


def _outcomes_in_async_with(tree: ast.AST) -> list[int]:
    """Lines of ``pytest.fail/skip/xfail(...)`` calls nested in an ``async with`` body,
    or in a function defined there (it runs inside the block)."""
    lines: list[int] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.AsyncWith):
            continue
        for inner in (n for stmt in node.body for n in ast.walk(stmt)):
            if (
                isinstance(inner, ast.Call)
                and isinstance(inner.func, ast.Attribute)
                and inner.func.attr in OUTCOMES
                and isinstance(inner.func.value, ast.Name)
                and inner.func.value.id == "pytest"
            ):
                lines.append(inner.lineno)
    return sorted(set(lines))


@pytest.mark.parametrize(
    "path", sorted(TESTS.rglob("*.py")), ids=lambda p: str(p.relative_to(TESTS))
)
def test_no_pytest_outcome_inside_async_with(path: Path) -> None:
    lines = _outcomes_in_async_with(ast.parse(path.read_text(), filename=str(path)))
    assert not lines, (
        f"{path.name}: pytest.fail/skip/xfail inside `async with` at lines {lines}: raise "
        "AssertionError instead (module docstring)"
    )


def test_the_check_finds_an_outcome_in_a_task_group() -> None:
    source = (
        "async def t():\n"
        "    pytest.skip('fine here')\n"
        "    async with anyio.create_task_group() as tg:\n"
        "        if x:\n"
        "            pytest.fail('ends the runner')\n"
    )
    assert _outcomes_in_async_with(ast.parse(source)) == [5]
