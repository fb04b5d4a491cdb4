"""Telling a controller's own failure from the library's: :func:`user_code_error`.

An exception raised while a controller is built (its ``__init__``, or the ``setup`` that
``Controller.__init__`` calls) is the user's to fix, not a bug of the runner: the runner
reports it in one line naming the class, the method, the exception and the line of the
user's code that raised it (exit 3), and shows the traceback only at
``--log-level debug``. The culprit is found in the exception's traceback (in every leaf
of an exception group): the innermost frame of an ``__init__`` or ``setup`` of the
user's, running on an instance of one of the controller classes being run. The line
reported is the innermost frame below it in the files of the class's own top-level
package (or module),
so a helper of the user's that raised is named rather than the library code it called;
an exception raised by ``Controller.__init__`` itself (an invalid class attribute, say)
points at the class statement.
"""

from __future__ import annotations

import inspect
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from .._controller.controller import Controller

__all__ = ["UserCodeError", "user_code_error"]

_LIBRARY = Path(__file__).resolve().parents[1]  # informer/
_METHODS = ("__init__", "setup")


@dataclass(frozen=True)
class UserCodeError:
    """A controller's ``method`` raised ``error``; ``where`` is ``file:line``."""

    cls: type[Controller]
    method: str
    error: BaseException
    where: str

    def __str__(self) -> str:
        message = " ".join(str(self.error).split())
        detail = f"{type(self.error).__name__}: {message}" if message else type(self.error).__name__
        return f"{self.cls.__qualname__}.{self.method}() raised {detail} ({self.where})"


def user_code_error(
    exc: BaseException, classes: Sequence[type[Controller]]
) -> UserCodeError | None:
    """The failure of a controller's ``__init__``/``setup`` that ``exc`` is (or holds in
    an exception group), or ``None`` when ``exc`` came from elsewhere."""
    if not classes:
        return None
    for leaf in _leaves(exc):
        found = _in_leaf(leaf, tuple(classes))
        if found is not None:
            return found
    return None


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _in_leaf(exc: BaseException, classes: tuple[type[Controller], ...]) -> UserCodeError | None:
    walked = list(traceback.walk_tb(exc.__traceback__))
    building = [
        i
        for i, (frame, _) in enumerate(walked)
        if frame.f_code.co_name in _METHODS and isinstance(frame.f_locals.get("self"), classes)
    ]
    if not building:
        return None
    users = [i for i in building if not _in_library(walked[i][0])]
    if not users:  # Controller.__init__ itself refused the class (an invalid attribute)
        cls = type(walked[building[0]][0].f_locals["self"])
        return UserCodeError(cls, "__init__", exc, _class_location(cls))
    i = users[-1]
    frame, line = walked[i]
    cls = type(frame.f_locals["self"])
    root = _package_root(cls)
    for below, below_line in reversed(walked[i + 1 :]):
        if _is_within(below, root) and not _in_library(below):
            frame, line = below, below_line
            break
    return UserCodeError(
        cls, walked[i][0].f_code.co_name, exc, f"{frame.f_code.co_filename}:{line}"
    )


def _in_library(frame: FrameType) -> bool:
    return _is_within(frame, _LIBRARY)


def _is_within(frame: FrameType, root: Path | None) -> bool:
    if root is None:
        return False
    try:
        path = Path(frame.f_code.co_filename).resolve()
    except (OSError, ValueError):
        return False
    return path == root or root in path.parents


def _package_root(cls: type) -> Path | None:
    """The folder of the top-level package defining ``cls`` (its file for a module)."""
    top = sys.modules.get(cls.__module__.partition(".")[0])
    file = getattr(top, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    return path.parent if path.name == "__init__.py" else path


def _class_location(cls: type) -> str:
    try:
        file = inspect.getsourcefile(cls) or "?"
        line = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return os.fspath(getattr(sys.modules.get(cls.__module__), "__file__", "?"))
    return f"{file}:{line}"
