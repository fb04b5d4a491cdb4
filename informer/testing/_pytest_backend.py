"""The session-scoped ``anyio_backend`` that the kube-informer pytest plugin registers.

anyio's own pytest plugin defines a module-scoped ``anyio_backend``; which plugin wins
depends on entry-point load order, and a module-scoped one makes the plugin's
session-scoped async fixtures fail with ScopeMismatch. ``pytest_plugin`` registers this
module from ``pytest_configure``, after every entry-point plugin (anyio's included), so
this override wins; a ``conftest.py`` of the user's still overrides it.
"""

from __future__ import annotations

import pytest

__all__ = ["anyio_backend"]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """The anyio backend for the whole session: asyncio, one event loop."""
    return "asyncio"
