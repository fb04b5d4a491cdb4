"""What a failed connection to the API server says: :func:`describe_connection_error`.

aiohttp's messages are written for its own debugging (``Cannot connect to host
127.0.0.1:1 ssl:<ssl.SSLContext object at 0x7f...> [Connect call failed ('127.0.0.1',
1)]``). A user needs the cause in words, once: here each transport exception becomes a
short clause (``connection refused (nothing listens on 127.0.0.1:1)``, ``the host name
api.example.com does not resolve``, ``TLS certificate verification failed: ...``,
``timed out``) with no object representation in it, and whether the port *refused* the
connection: nothing listens there, so retrying within a startup budget only delays the
same answer (DNS failures, timeouts and resets may pass, and are retried).
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Final

import aiohttp

__all__ = ["ConnectionCause", "describe_connection_error"]

_OBJECT_REPR: Final = re.compile(r"<[^<>]*? object at 0x[0-9a-fA-F]+>")
_REFUSED: Final = (errno.ECONNREFUSED,)


@dataclass(frozen=True)
class ConnectionCause:
    """Why a connection failed: ``text`` (a clause, no object representations) and
    whether the server's port ``refused`` the connection."""

    text: str
    refused: bool = False


def describe_connection_error(exc: BaseException) -> ConnectionCause:
    """The cause of a transport failure ``exc`` (aiohttp, socket, TLS or timeout)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error = exc.certificate_error
        detail = getattr(error, "verify_message", None) or getattr(error, "reason", None)
        return ConnectionCause(f"TLS certificate verification failed: {detail or _text(error)}")
    if isinstance(exc, aiohttp.ClientSSLError):
        return ConnectionCause(f"the TLS handshake failed: {_os_text(exc.os_error)}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _connector(exc.os_error, f"{exc.host}:{exc.port}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ConnectionCause("the server closed the connection")
    if isinstance(exc, TimeoutError):
        return ConnectionCause("timed out")
    if isinstance(exc, ssl.SSLError):
        return ConnectionCause(f"the TLS handshake failed: {_os_text(exc)}")
    if isinstance(exc, aiohttp.ClientOSError | OSError) and not isinstance(
        exc, aiohttp.ClientResponseError
    ):
        return _connector(exc, None)
    return ConnectionCause(_text(exc))


def _connector(error: OSError, where: str | None) -> ConnectionCause:
    if isinstance(error, socket.gaierror) or _is_dns(error):
        host = where.rpartition(":")[0] if where else "the server's host name"
        return ConnectionCause(f"the host name {host} does not resolve ({_os_text(error)})")
    if isinstance(error, ConnectionRefusedError) or error.errno in _REFUSED:
        there = f" (nothing listens on {where})" if where else ""
        return ConnectionCause(f"connection refused{there}", refused=True)
    if isinstance(error, TimeoutError):
        return ConnectionCause("timed out")
    return ConnectionCause(_os_text(error))


def _is_dns(error: OSError) -> bool:
    return isinstance(error, aiohttp.ClientConnectorDNSError)


def _os_text(error: BaseException) -> str:
    """An OSError's ``strerror`` (``Connection reset by peer``), else its text."""
    strerror = getattr(error, "strerror", None)
    if isinstance(strerror, str) and strerror:
        return strerror[0].lower() + strerror[1:]
    return _text(error)


def _text(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return _OBJECT_REPR.sub("...", text) or type(error).__name__
