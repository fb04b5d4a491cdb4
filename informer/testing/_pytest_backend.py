"""The session-scoped ``anyio_backend`` the kube-informer pytest plugin registers in a
suite that turned it on (``kube_informer = true``), and only there.

anyio's own pytest plugin defines a module-scoped ``anyio_backend``; which plugin wins
depends on entry-point load order, and a module-scoped one makes session-scoped async
fixtures (the session ``api_client`` of such a suite) fail with ScopeMismatch.
``pytest_plugin`` registers this module from ``pytest_configure``, after every
entry-point plugin (anyio's included), so this override wins; a ``conftest.py`` of the
user's still overrides it.
"""

from __future__ import annotations

import pytest

__all__ = ["anyio_backend"]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """The anyio backend for the whole session: asyncio, one event loop."""
    return "asyncio"
