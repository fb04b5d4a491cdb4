"""The docs' griffe extension (docs/_ext/sphinx_roles.py): Sphinx roles in the library's
docstrings become cross-references (required for the documented API, optional for
internals, failing for names that do not exist), and the reST forms Markdown lacks
(simple tables, literal blocks, grouped parameters) are translated."""

from __future__ import annotations

import importlib.util
import logging
import textwrap
from types import ModuleType

import griffe
import pytest
from docs_helpers import DOCS, ROOT

DOCUMENTED = ["informer", "informer.cache", "informer.workqueue", "informer.observability"]


def _extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sphinx_roles", DOCS / "_ext" / "sphinx_roles.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ROLES = _extension()


@pytest.fixture(scope="module")
def informer_package() -> griffe.Module:
    extension = ROLES.SphinxRoles(documented=DOCUMENTED)
    loader = griffe.GriffeLoader(
        search_paths=[str(ROOT)], extensions=griffe.load_extensions(extension)
    )
    package = loader.load("informer")
    loader.resolve_aliases(implicit=False, external=False)
    return package  # type: ignore[return-value]


def docstring(package: griffe.Module, path: str) -> str:
    obj = package.modules_collection[path]  # type: ignore[attr-defined]
    assert obj.docstring is not None, path
    return str(obj.docstring.value)


def test_documented_targets_become_required_cross_references(
    informer_package: griffe.Module,
) -> None:
    # :class:`~informer.ControllerOptions` in the Controller's docstring
    text = docstring(informer_package, "informer._controller.controller.Controller")
    assert "[`ControllerOptions`][informer._controller.options.ControllerOptions]" in text
    assert ":class:" not in text and ":meth:" not in text and ":attr:" not in text


def test_names_that_left_the_root_resolve_to_their_new_home(
    informer_package: griffe.Module,
) -> None:
    # :func:`~informer.default_controller_rate_limiter` (now in informer.workqueue)
    text = docstring(informer_package, "informer._controller.controller.Controller")
    assert "[`default_controller_rate_limiter()`][informer._queue.ratelimit." in text


def test_internal_targets_become_optional_references(informer_package: griffe.Module) -> None:
    # :data:`~informer._cache.transforms.TransformFunc` in the Reflector's docstring
    text = docstring(informer_package, "informer._cache.reflector.Reflector")
    assert '<autoref identifier="informer._cache.transforms.TransformFunc" optional>' in text


def test_a_role_naming_nothing_is_reported_and_left_unresolved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)])
    package = loader.load("informer")
    resolver = ROLES._Resolver(package, loader, DOCUMENTED)
    manager = package["_manager.manager.Manager"]
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.sphinx_roles"):
        text = resolver.rewrite_docstring("See :class:`~informer.NoSuchThing`.", manager)
    assert text == "See [`NoSuchThing`][informer.NoSuchThing]."  # autorefs fails the build
    assert "informer.NoSuchThing names no object" in caplog.text
    assert "informer/_manager/manager.py" in caplog.text


def test_simple_tables_become_markdown_tables() -> None:
    table = textwrap.dedent(
        """\
        Outcomes:

        ========== =============================
        outcome    what happens
        ========== =============================
        ``None``   forgotten
        raises     retried with a backoff, up to
                   ``max_retries`` | then dropped
        ========== =============================

        After."""
    )
    assert ROLES._simple_tables(table) == textwrap.dedent(
        """\
        Outcomes:

        | outcome | what happens |
        |---|---|
        | ``None`` | forgotten |
        | raises | retried with a backoff, up to ``max_retries`` \\| then dropped |

        After."""
    )


def test_literal_blocks_become_fenced_code() -> None:
    text = "Use it so::\n\n    x = f(1)\n    y = g(x)\n\nThen more.\n\n::\n\n    A -> B\n"
    blocks = list(ROLES._literal_blocks(text))
    rendered = "".join(prose + literal for prose, literal in blocks)
    assert "Use it so:\n\n```python\nx = f(1)\ny = g(x)\n```\n" in rendered
    assert "```text\nA -> B\n```" in rendered
    assert "::" not in rendered


def test_grouped_parameters_become_one_field_each() -> None:
    text = ":param a, b,\n    c: see X.\n:param d: own."
    assert ROLES.GROUPED_PARAMS.sub(ROLES._split_params, text) == (
        ":param a: see X.\n:param b: see X.\n:param c: see X.\n:param d: own."
    )


def test_a_wrapped_first_sentence_becomes_one_line() -> None:
    assert ROLES._one_line_summary("First sentence\nwraps here.\n\nBody\ntext.") == (
        "First sentence wraps here.\n\nBody\ntext."
    )
    listed = "Names:\n- a\n- b"
    assert ROLES._one_line_summary(listed) == listed
