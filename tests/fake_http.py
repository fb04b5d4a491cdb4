"""``serving``: an in-process HTTP server for fakes of edge cases the real API server
cannot be made to produce on demand (its ``dispatch`` answers every request)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import RawTestServer

Dispatch = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(dispatch: Dispatch) -> AsyncIterator[str]:
    """Serve ``dispatch`` on 127.0.0.1 (a free port); yield the base URL, no trailing
    slash. The server is closed on exit."""
    srv = RawTestServer(dispatch, host="127.0.0.1")
    await srv.start_server()
    try:
        yield str(srv.make_url("")).rstrip("/")
    finally:
        await srv.close()
