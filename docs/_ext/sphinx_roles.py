"""Sphinx cross-reference roles in docstrings, rendered as mkdocstrings cross-references.

The library's docstrings are Sphinx-style: they name other objects with roles
(``:class:`~informer.Client```, ``:meth:`watch```, ``:mod:`informer.cache```). Markdown has
no such syntax, so this griffe extension rewrites each role in every docstring of the
package, once the package is loaded and before mkdocstrings parses the docstrings:

- a target that is part of the documented API (a module the reference renders, a name
  such a module exports, or a public member of one) becomes a required cross-reference:
  if the site does not render it, the strict build fails;
- a target that exists but is internal (a private module, a name no documented module
  exports) becomes an optional cross-reference: a link when some page renders it (under a
  public alias), inline code otherwise;
- a target outside the package (the standard library, anyio, builtins) becomes inline code;
- a target that names nothing (a typo, a renamed object) in the docstring of a documented
  object is reported with the docstring's file and line, and becomes a required
  cross-reference: the strict build fails. In an internal object's docstring (never
  rendered) it becomes inline code.

A name that left the package root for a public module (the root's ``_MOVED`` table, the
names its ``__getattr__`` still resolves with a ``DeprecationWarning``) resolves to its
new home, as it does at run time.

As in Sphinx, ``~a.b.C`` shows ``C`` and ``a.b.C`` shows ``a.b.C``; functions and methods
show ``()``. Relative names resolve from the docstring's object outward (its members, its
module's names and imports), as griffe resolves names.

Three more reST forms are translated: simple tables (``=== ===`` borders) become Markdown
tables; literal blocks (a paragraph ending in ``::`` and the indented lines after it)
become fenced code blocks, their text untouched; a field naming several parameters
(``:param a, b: text``), which the Sphinx docstring parser does not know, becomes one
field per parameter. And a docstring's first paragraph is put on one line, so that the
summary tables (which show the first line) do not cut a wrapped first sentence.

Options (``mkdocs.yml``): ``documented``, the modules the API reference renders.
"""

from __future__ import annotations

import ast
import builtins
import html
import logging
import re
import textwrap
from collections.abc import Iterable, Iterator
from typing import Any

import griffe

_log = logging.getLogger("mkdocs.plugins.sphinx_roles")

ROLE = re.compile(
    r":(?:py:)?(?P<role>class|func|meth|attr|mod|data|exc|obj|const):`(?P<target>[^`]+)`"
)
CALLABLE_ROLES = {"func", "meth"}
TABLE_BORDER = re.compile(r"^[ \t]*=+(?: +=+)+[ \t]*$")
# ":param a, b,\n    c: text" (the names may wrap onto indented lines)
GROUPED_PARAMS = re.compile(
    r"^(?P<indent>[ \t]*):param (?P<names>\w+(?:,\s+\w+)+):(?P<text>.*)$", re.MULTILINE
)


class SphinxRoles(griffe.Extension):
    """Rewrites Sphinx roles in the docstrings of every object of a loaded package."""

    def __init__(self, documented: Iterable[str] = ()) -> None:
        super().__init__()
        self.documented_modules = list(documented)

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        resolver = _Resolver(pkg, loader, self.documented_modules)
        for obj in _walk(pkg):
            docstring = obj.docstring
            if docstring is None or ":" not in docstring.value:
                continue
            docstring.value = resolver.rewrite_docstring(docstring.value, obj)


class _Resolver:
    def __init__(self, pkg: griffe.Module, loader: griffe.GriffeLoader, modules: list[str]):
        self.pkg = pkg
        self.collection = loader.modules_collection
        self.moved = _moved(pkg)
        self.modules: set[str] = set()  # rendered: the module docstring and its exports
        self.exports: set[str] = set()  # rendered with their public members
        for name in modules:
            module = self._lookup(name)
            if module is None or not name.startswith(pkg.name):
                continue  # another package of the site: its own on_package call
            self.modules.add(module.path)
            for export in module.exports or ():
                member = module.members.get(str(export))
                if member is not None:
                    self.exports.add(_canonical(member))
        self.by_name: dict[str, set[str]] = {}
        for obj in _walk(pkg):
            self.by_name.setdefault(obj.name, set()).add(obj.path)

    def rewrite_docstring(self, text: str, obj: griffe.Object) -> str:
        text = _one_line_summary(text)
        parts = []
        for prose, literal in _literal_blocks(text):
            prose = GROUPED_PARAMS.sub(_split_params, _simple_tables(prose))
            parts.append(ROLE.sub(lambda match: self.rewrite(match, obj), prose))
            parts.append(literal)
        return "".join(parts)

    def rewrite(self, match: re.Match[str], obj: griffe.Object) -> str:
        role, target = match["role"], match["target"].strip()
        short = target.startswith("~")
        target = target.lstrip("~!")
        shown = target.rsplit(".", 1)[-1] if short else target
        if role in CALLABLE_ROLES:
            shown += "()"
        code = f"`{shown}`"
        full = self._resolve(target, obj)
        if full is None:
            if "." in target or target in vars(builtins):
                return code  # outside the package
            return self._broken(code, target, obj)
        if full.partition(".")[0] not in self.collection.members:
            return code  # an import from another package (anyio, asyncio...)
        found = self._lookup(full)
        if found is None:
            return self._broken(code, full, obj)
        canonical = _canonical(found)
        if self._is_documented(canonical):
            return f"[{code}][{canonical}]"
        return (
            f'<autoref identifier="{canonical}" optional>'
            f"<code>{html.escape(shown)}</code></autoref>"
        )

    def _resolve(self, target: str, obj: griffe.Object) -> str | None:
        """The full path ``target`` names from ``obj``'s scope, or None when it names
        nothing griffe knows (an external object, or nothing at all)."""
        head, _, rest = target.partition(".")
        full: str | None
        if head in self.collection.members:
            full = target
        else:
            full = None
            scope: griffe.Object | None = obj
            while scope is not None and full is None:
                member = scope.members.get(head)
                if member is not None:
                    full = member.target_path if member.is_alias else member.path  # type: ignore[union-attr]
                else:
                    try:
                        full = scope.resolve(head)
                    except griffe.NameResolutionError:
                        scope = scope.parent
            if full is None and not rest:
                full = self._unique(head)
                if full is not None:
                    self._imprecise(obj, target, full)
            if full is None:
                return None
            full = f"{full}.{rest}" if rest else full
        root, _, tail = full.partition(".")
        name, dot, after = tail.partition(".")
        if root == self.pkg.name and name in self.moved:
            moved = f"{root}.{self.moved[name]}.{name}{dot}{after}"
            self._imprecise(obj, target, moved)
            return moved
        return full

    def _unique(self, name: str) -> str | None:
        """The one object of the package named ``name``, wherever it is (as Sphinx's
        search for a name the current module does not define), or None."""
        paths = self.by_name.get(name, set())
        return next(iter(paths)) if len(paths) == 1 else None

    def _lookup(self, path: str) -> griffe.Object | griffe.Alias | None:
        try:
            return self.collection[path]  # type: ignore[no-any-return]
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None

    def _is_documented(self, canonical: str) -> bool:
        if canonical in self.modules:
            return True
        parts = canonical.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in self.exports:
                return not any(part.startswith("_") for part in parts[i:])
        return False

    def _broken(self, code: str, target: str, obj: griffe.Object) -> str:
        if not self._is_documented(obj.path):
            return code  # never rendered
        _log.warning(
            "%s: %s names no object (in the docstring of %s)", _where(obj), target, obj.path
        )
        return f"[{code}][{target}]"

    def _imprecise(self, obj: griffe.Object, target: str, found: str) -> None:
        """A target found by name only, or through a name that left the root: it
        resolves, but the docstring should name ``found``."""
        if self._is_documented(obj.path):
            _log.info(
                "%s: %s resolved as %s (in the docstring of %s)",
                _where(obj),
                target,
                found,
                obj.path,
            )


def _where(obj: griffe.Object) -> str:
    lineno = obj.docstring.lineno if obj.docstring else obj.lineno
    return f"{obj.relative_filepath}:{lineno}"


def _walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)  # type: ignore[arg-type]


def _canonical(obj: griffe.Object | griffe.Alias) -> str:
    try:
        return obj.final_target.path if obj.is_alias else obj.path  # type: ignore[union-attr]
    except griffe.AliasResolutionError:
        return obj.path


def _moved(pkg: griffe.Module) -> dict[str, str]:
    """The root's ``_MOVED`` table (name -> public module), if it has one."""
    attribute = pkg.members.get("_MOVED")
    if attribute is None or attribute.is_alias or attribute.value is None:  # type: ignore[union-attr]
        return {}
    value = ast.literal_eval(str(attribute.value))  # type: ignore[union-attr]
    return {str(k): str(v) for k, v in value.items()}


def _one_line_summary(text: str) -> str:
    """The first paragraph on one line: summaries (the API reference's tables) show a
    docstring's first line, and a first sentence wrapped over two lines would be cut.
    Markdown renders the paragraph the same either way. Left alone when the paragraph
    holds anything but prose (a list, a field, a literal block, a table)."""
    head, sep, rest = text.partition("\n\n")
    lines = head.split("\n")
    if len(lines) < 2 or any(
        not line.strip()
        or line.startswith((" ", "\t", "-", "*", "|", "=", "#", ">"))
        or (line.startswith(":") and not ROLE.match(line))  # a field, not a role
        or line.rstrip().endswith("::")
        for line in lines
    ):
        return text
    return " ".join(line.strip() for line in lines) + sep + rest


def _literal_blocks(text: str) -> Iterator[tuple[str, str]]:
    """``text`` cut into (prose, literal block) pairs, each literal block (the indented
    lines after a paragraph ending in ``::``) as a fenced code block: Python when it
    parses as Python, plain text otherwise. The ``::`` becomes ``:`` (nothing when it
    stands alone), as Sphinx renders it."""
    lines = text.split("\n")
    prose: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.rstrip().endswith("::"):
            prose.append(line)
            continue
        indent = len(line) - len(line.lstrip())
        head = line.rstrip()[:-2].rstrip()
        prose.append(head + ":" if head.strip() and not line.rstrip().endswith(" ::") else head)
        block: list[str] = []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():
            block.pop()
        body = textwrap.dedent("\n".join(block)).strip("\n")
        if not body:
            continue
        try:
            ast.parse(body)
        except SyntaxError:
            language = "text"
        else:
            language = "python"
        margin = " " * indent
        fenced = [f"{margin}```{language}", *(margin + b if b else b for b in body.split("\n"))]
        yield "\n".join(prose) + "\n\n", "\n".join([*fenced, f"{margin}```", ""]) + "\n"
        prose = []
    yield "\n".join(prose), ""


def _simple_tables(text: str) -> str:
    """reST simple tables (columns drawn by ``=== ===`` borders; a row whose first
    column is blank continues the row above) as Markdown tables."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not TABLE_BORDER.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        border = lines[i]
        indent = len(border) - len(border.lstrip())
        columns = [m.start() for m in re.finditer(r"=+", border)]
        borders = [j for j in range(i + 1, len(lines)) if lines[j].rstrip() == border.rstrip()]
        if not borders:
            out.append(lines[i])
            i += 1
            continue
        end = borders[0]
        header: list[list[str]] = []
        if len(borders) > 1 and end + 1 < len(lines) and lines[end + 1].strip():
            header = _table_rows(lines[i + 1 : end], columns)
            i, end = end, borders[1]
        body = _table_rows(lines[i + 1 : end], columns)
        margin = " " * indent
        head = header[0] if header else [""] * len(columns)
        out.append(margin + "| " + " | ".join(head) + " |")
        out.append(margin + "|" + "---|" * len(columns))
        out.extend(margin + "| " + " | ".join(row) + " |" for row in [*header[1:], *body])
        i = end + 1
    return "\n".join(out)


def _table_rows(lines: list[str], columns: list[int]) -> list[list[str]]:
    rows: list[list[str]] = []
    for line in lines:
        if not line.strip():
            continue
        cells = [
            line[start : columns[k + 1] if k + 1 < len(columns) else None].strip()
            for k, start in enumerate(columns)
        ]
        if rows and not cells[0]:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    return [[cell.replace("|", "\\|") for cell in row] for row in rows]


def _split_params(match: re.Match[str]) -> str:
    indent = match["indent"]
    names = re.split(r",\s+", match["names"])
    return "\n".join(f"{indent}:param {name}:{match['text']}" for name in names)
