"""Generated manifests (CRDs, Roles) as YAML text, and the check that committed files
are current (``python -m informer.crd`` and ``python -m informer.rbac``).

:func:`to_yaml` writes documents as controller-gen does (block style, keys in the order
built, no line folding of long descriptions), after a header comment naming the command
that regenerates them. :func:`check` compares a file with the text it should hold and
returns a unified diff (empty when they agree), so a CI step fails when someone edits a
generated file by hand or changes the code without regenerating.
"""

from __future__ import annotations

import argparse
import difflib
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["add_output_arguments", "check", "regenerating_command", "to_yaml", "write_or_check"]


class _Dumper(yaml.SafeDumper):
    """Block style; lists indented under their key, as kubectl and controller-gen write."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(documents: Iterable[Any], *, header: str = "") -> str:
    """``documents`` as one multi-document YAML text, ``header`` (lines) as comments."""
    lines = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    body = yaml.dump_all(
        list(documents),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        width=float("inf"),
        allow_unicode=True,
        explicit_start=False,
    )
    return lines + body


def check(path: Path, expected: str) -> str:
    """A unified diff from ``path``'s text to ``expected`` ('' when equal; a missing
    file differs from everything)."""
    current = path.read_text() if path.exists() else ""
    if current == expected:
        return ""
    return (
        "".join(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                fromfile=f"{path} (committed)",
                tofile=f"{path} (generated)",
            )
        )
        or f"{path}: differs\n"
    )


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """The commands' ``-o/--output FILE`` and ``--check`` (see :func:`write_or_check`)."""
    parser.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff when FILE is not what would be written",
    )


def regenerating_command(program: str, argv: Sequence[str]) -> str:
    """``program`` and ``argv`` without ``--check``: the command a generated file's
    header names, the same whether it was written or checked."""
    return f"{program} " + shlex.join(a for a in argv if a != "--check")


def write_or_check(text: str, output: str | None, *, check_only: bool, out: Any, err: Any) -> int:
    """The commands' common ending: print ``text`` (no ``output``), write it to
    ``output``, or (``check_only``) compare ``output`` with it: exit status 1 and the
    diff on ``err`` when they differ."""
    if output is None or output == "-":
        if check_only:
            err.write("--check needs --output FILE (the committed file to compare)\n")
            return 2
        out.write(text)
        return 0
    path = Path(output)
    if check_only:
        diff = check(path, text)
        if diff:
            err.write(diff)
            err.write(f"{path} is out of date: regenerate it (the same command without --check)\n")
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return 0
