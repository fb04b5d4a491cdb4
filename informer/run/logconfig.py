"""structlog configuration for ``python -m informer.run`` (the only place that configures it).

Library modules only call ``structlog.get_logger(__name__)`` and bind context; the runner
calls :func:`configure_logging` once, before anything logs. Everything, structlog events
and stdlib ``logging`` records alike (aiohttp, asyncio, user code), goes through one stdlib
handler on one stream (stderr unless told otherwise), rendered by one structlog renderer:

- ``console``: :class:`structlog.dev.ConsoleRenderer`, with colours when the stream is a
  terminal (tracebacks pretty-printed by ``rich`` when it is installed, else plain);
- ``json``: one JSON object per line (``timestamp``, ``level``, ``logger``, ``event`` and
  the bound context: ``controller``, ``key``, ...), tracebacks as a string field.

Tracebacks never show local variables, in either format: the frames of a failing handler
or reconcile hold the objects being processed, Secrets included. structlog's default
console formatter would (``rich`` with ``show_locals=True``, or ``better-exceptions``,
whichever is importable), so the formatter is chosen here, explicitly.

``--log-level`` filters both structlog and stdlib records (structlog events are filtered
before any processor runs). Context bound with ``structlog.contextvars`` (the controller
binds ``controller`` and ``key`` around each reconcile) is merged into both kinds.
"""

from __future__ import annotations

import logging
import sys
from typing import Final, Literal, TextIO

import structlog
from structlog.typing import ExceptionRenderer, Processor

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "LogFormat", "configure_logging", "default_log_format"]

LogFormat = Literal["console", "json"]
LOG_FORMATS: Final = ("console", "json")
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")


def default_log_format(stream: TextIO) -> LogFormat:
    """``console`` when ``stream`` is a terminal, ``json`` otherwise."""
    try:
        return "console" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def configure_logging(
    log_format: LogFormat, level: str = "info", *, stream: TextIO | None = None
) -> None:
    """Configure structlog and the stdlib root logger (replacing its handlers); logs go
    to ``stream``, by default ``sys.stderr``."""
    out = stream if stream is not None else sys.stderr
    numeric = logging.getLevelNamesMapping()[level.upper()]
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Processor
    final: list[Processor]
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
        final = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
            renderer,
        ]
    else:
        colors = default_log_format(out) == "console"
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=_traceback_formatter(colors=colors)
        )
        final = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=final,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    logging.captureWarnings(True)

    structlog.reset_defaults()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _traceback_formatter(*, colors: bool) -> ExceptionRenderer:
    """The console's traceback formatter: never with local variables (Secrets)."""
    if colors:
        try:
            import rich  # noqa: F401 - only whether it is importable
        except ImportError:
            pass
        else:
            return structlog.dev.RichTracebackFormatter(show_locals=False)
    return structlog.dev.plain_traceback
