"""HTTP/1.1 messages of :mod:`informer._http.server`: request heads read and parsed,
responses described.

:class:`HeadReader` buffers one connection's bytes: it returns each request head (and,
when the server asks, the body that follows it) and keeps what follows (a pipelined
request) for the next call. :func:`parse_head` accepts
the origin and absolute forms of the request target, bare-LF line ends and leading empty
lines (RFC 9112), and rejects everything else with :class:`BadRequest`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc

__all__ = [
    "MAX_HEAD_BYTES",
    "BadRequest",
    "HeadReader",
    "HeadTooLarge",
    "HttpRequest",
    "HttpResponse",
    "parse_head",
]

MAX_HEAD_BYTES: Final = 8192
"""Default largest request head (request line and headers); larger is answered 431."""

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VERSION = re.compile(r"^HTTP/(\d)\.(\d)$")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_PLAIN = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A parsed request head: ``path`` is as sent (not percent-decoded), ``query`` maps
    each parameter to its values (``?verbose`` gives ``{"verbose": [""]}``), header
    names are lower-case (repeated headers joined with ``", "``), ``version`` is
    ``"1.0"`` or ``"1.1"``. ``body`` is the request body once the server read it (only
    for a POST route), ``None`` when it was not read."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    version: str = "1.1"
    body: bytes | None = None

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another request after this one: HTTP/1.1
        without ``Connection: close`` (HTTP/1.0 with ``keep-alive``), and no body left
        unread (the server reads a body only for a POST route, so a connection whose
        request had another one is closed)."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if "close" in tokens or (self.version == "1.0" and "keep-alive" not in tokens):
            return False
        has_body = "transfer-encoding" in self.headers or self.headers.get(
            "content-length", "0"
        ).strip() not in ("", "0")
        return not has_body or self.body is not None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """An answer: ``headers`` are extra headers (``Content-Type``, ``Content-Length``,
    ``Connection`` and ``Cache-Control: no-store`` are always sent)."""

    status: int
    body: bytes = b""
    content_type: str = _PLAIN
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)

    @classmethod
    def text(cls, status: int, text: str) -> HttpResponse:
        return cls(status, text.encode())


class HeadTooLarge(Exception):
    """The request head exceeds the limit (431)."""


class BadRequest(Exception):
    """A malformed request (``status`` 400, or 505 for an unsupported version)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class HeadReader:
    """Reads request heads from one connection's stream (one reader at a time)."""

    def __init__(self, stream: anyio.abc.ByteReceiveStream, limit: int = MAX_HEAD_BYTES) -> None:
        self._stream = stream
        self._limit = limit
        self._buf = bytearray()

    @property
    def buffered(self) -> bool:
        """Bytes of the next (or current, unfinished) request are here: the client has
        started it."""
        return bool(self._buf)

    async def wait_for_data(self) -> bool:
        """Until bytes are buffered (``True``) or the client closed (``False``)."""
        return bool(self._buf) or await self._fill()

    async def read_head(self) -> bytes | None:
        """The next head, without its blank line; ``None`` when the client closed before
        sending a byte of it. Raises :class:`BadRequest` when it closed in the middle,
        :class:`HeadTooLarge` past the limit."""
        searched = 0
        while True:
            match = _HEAD_END.search(self._buf, max(0, searched - 3))
            if match is not None:
                if match.start() > self._limit:
                    raise HeadTooLarge
                head = bytes(self._buf[: match.start()])
                del self._buf[: match.end()]
                return head
            if len(self._buf) > self._limit:
                raise HeadTooLarge
            searched = len(self._buf)
            if not await self._fill():
                if not self._buf:
                    return None
                raise BadRequest("incomplete request")

    async def read_body(self, length: int) -> bytes:
        """The next ``length`` bytes (a request body, after its head); raises
        :class:`BadRequest` when the client closed before sending them all."""
        while len(self._buf) < length:
            if not await self._fill():
                raise BadRequest("incomplete request body")
        body = bytes(self._buf[:length])
        del self._buf[:length]
        return body

    async def _fill(self) -> bool:
        try:
            self._buf += await self._stream.receive(65536)
        except anyio.EndOfStream:
            return False
        return True


def parse_head(head: bytes) -> HttpRequest:
    """The request a head (without its final blank line) describes; :class:`BadRequest`
    when it is malformed."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("non-ASCII request head") from None
    lines = text.split("\n")
    while lines and not lines[0].strip():  # RFC 9112: ignore leading empty lines
        lines.pop(0)
    if not lines:
        raise BadRequest("empty request")
    parts = lines[0].rstrip("\r").split(" ")
    if len(parts) != 3:
        raise BadRequest("malformed request line")
    method, target, version = parts
    if not _TOKEN.match(method):
        raise BadRequest("malformed method")
    ver = _VERSION.match(version)
    if ver is None:
        raise BadRequest("malformed HTTP version")
    if ver.group(1) != "1":
        raise BadRequest("HTTP version not supported", 505)
    if not target.startswith(("/", "http://", "https://")):
        raise BadRequest("malformed request target")  # origin-form or absolute-form only
    split = urlsplit(target)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        line = line.rstrip("\r")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise BadRequest("malformed header line")
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return HttpRequest(
        method=method,
        path=split.path or "/",
        query=parse_qs(split.query, keep_blank_values=True),
        headers=headers,
        version="1.0" if ver.group(2) == "0" else "1.1",
    )
