"""The runner: ``python -m informer.run``, its flags, log configuration and controller
targets (the command's contract is :mod:`informer.run.runner`'s docstring)."""

from .._exceptions import TargetError as TargetError
from .cli import build_parser as build_parser
from .exit_codes import ExitCode as ExitCode
from .exit_codes import exit_code as exit_code
from .runner import main as main

__all__ = ["ExitCode", "TargetError", "build_parser", "exit_code", "main"]
