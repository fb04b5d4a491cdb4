"""The exit codes of ``python -m informer.run`` and the one table from fatal errors to
them (the meaning of each code is the runner's module docstring,
:mod:`informer.run.runner`).

:func:`exit_code` maps an exception to its code by the first matching row of
:data:`EXIT_CODES` (most specific first); an exception no row matches is a bug (exit 1,
the only case that prints a traceback).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from .._exceptions import (
    ApiError,
    BindError,
    CacheSyncTimeout,
    ConfigError,
    ConnectionFailed,
    Forbidden,
    LeaderElectionLost,
    ShardMembershipLost,
    TargetError,
    Unauthorized,
)

__all__ = ["EXIT_CODES", "ExitCode", "UsageError", "exit_code"]


class ExitCode(IntEnum):
    """Exit codes of ``python -m informer.run`` (see the module docstring)."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    TARGET = 3
    CONFIG = 4
    UNREACHABLE = 5
    UNAUTHORIZED = 6
    FORBIDDEN = 7
    SYNC_TIMEOUT = 8
    API_ERROR = 9
    LEADERSHIP_LOST = 10
    FORCED = 130


class UsageError(Exception):
    """A command line argparse cannot reject by itself (e.g. inconsistent timings)."""


EXIT_CODES: Final[tuple[tuple[type[BaseException], ExitCode], ...]] = (
    (UsageError, ExitCode.USAGE),
    (BindError, ExitCode.USAGE),
    (TargetError, ExitCode.TARGET),
    (ConfigError, ExitCode.CONFIG),
    (ConnectionFailed, ExitCode.UNREACHABLE),
    (Unauthorized, ExitCode.UNAUTHORIZED),
    (Forbidden, ExitCode.FORBIDDEN),
    (CacheSyncTimeout, ExitCode.SYNC_TIMEOUT),
    (LeaderElectionLost, ExitCode.LEADERSHIP_LOST),
    (ShardMembershipLost, ExitCode.LEADERSHIP_LOST),
    (ApiError, ExitCode.API_ERROR),
)
"""Exception type -> exit code, most specific first; anything else is a bug (exit 1)."""


def exit_code(exc: BaseException) -> ExitCode | None:
    """The exit code of a fatal error (:data:`EXIT_CODES`), or None for a bug."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return None
