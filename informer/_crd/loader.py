"""Targets of the commands: ``package.module:Class`` (one class) or ``package.module``
(every class of the kind wanted *defined* in that module, in definition order).

The current directory is put first on ``sys.path`` (as ``python -m`` does), so a
project's own modules load without installing it. Failures raise ``ValueError`` with a
one-line message naming the target.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from typing import TypeVar

__all__ = ["load_classes"]

T = TypeVar("T")


def load_classes(target: str, base: type[T], wanted: Callable[[type[T]], bool]) -> list[type[T]]:
    """The classes ``target`` names (see the module docstring): subclasses of ``base``
    for which ``wanted(cls)`` holds."""
    module_name, _, attr = target.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{target}: cannot import {module_name}: {exc}") from exc
    if attr:
        value: object = module
        for part in attr.split("."):
            value = getattr(value, part, None)
            if value is None:
                raise ValueError(f"{target}: {module_name} has no {attr}")
        if not (inspect.isclass(value) and issubclass(value, base) and wanted(value)):
            raise ValueError(f"{target}: {attr} is not a {base.__name__} this command can use")
        return [value]
    found = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__ and issubclass(cls, base) and wanted(cls)
    ]
    if not found:
        raise ValueError(f"{target}: defines no {base.__name__}")
    return sorted(found, key=lambda c: inspect.getsourcelines(c)[1])
