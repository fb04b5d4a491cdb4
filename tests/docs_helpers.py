"""Test helpers for the documentation: the Python code blocks of the docs pages and the
README, found by page and section, and run as modules (so the docs cannot drift from the
library)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"

_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path, *, section: str | None = None) -> list[str]:
    """The ```` ```python ```` blocks of ``page`` in order; with ``section``, only those
    under the heading of that title (up to the next heading of the same or a higher
    level)."""
    text = page.read_text()
    if section is not None:
        match = re.search(rf"^(#+) {re.escape(section)}\n", text, re.M)
        assert match, f"no section {section!r} in {page}"
        level = len(match[1])
        rest = text[match.end() :]
        end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
        text = rest[: end.start()] if end else rest
    return [m[1] for m in _BLOCK.finditer(text)]


def load_module(name: str, code: str, origin: Path) -> types.ModuleType:
    """``code`` executed as the module ``name`` (registered in ``sys.modules``, so that
    other blocks can import it by that name, as the docs do)."""
    module = types.ModuleType(name)
    module.__file__ = str(origin)
    sys.modules[name] = module
    exec(compile(code, str(origin), "exec"), module.__dict__)
    return module
