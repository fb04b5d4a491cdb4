"""POST request bodies of :mod:`informer._http.server`: framing, limits and reading.

:func:`read_body` is called by the server for a POST to a ``post_routes`` path, once the
request head is parsed, and only then: no other request has its body read. Its contract:

- **Framing.** Only ``Content-Length`` framing is accepted (a missing header means an
  empty body). A body with ``Transfer-Encoding`` (chunked) is refused 411, a
  ``Content-Length`` that is not a decimal number 400.
- **Limits.** A declared length over ``max_bytes`` is refused 413 before a byte of the
  body is read. The whole body must arrive within ``time_limit`` seconds, counted from the
  end of the head (``Expect: 100-continue`` is answered first, inside that time): 408
  otherwise. A client closing before the declared length is a 400.
- **Ownership.** On success the returned request is a copy of the given one with
  ``body`` set (the given one is not changed), and the reader keeps whatever follows the
  body (a pipelined request), so the connection may stay alive. On a refusal the request
  is ``None`` and the connection must close after the answer: what is left of its input
  is not a request.

Errors are answers, never exceptions: the caller sends the response it gets.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import anyio
import anyio.abc

from .head import BadRequest, HeadReader, HttpRequest, HttpResponse

__all__ = ["MAX_BODY_BYTES", "read_body"]

MAX_BODY_BYTES: Final = 7 * 1024 * 1024
"""Default largest POST body (controller-runtime's webhook limit: an AdmissionReview holds
two objects of up to 3 MiB each); larger is answered 413."""

_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


async def read_body(
    stream: anyio.abc.ByteStream,
    reader: HeadReader,
    request: HttpRequest,
    *,
    max_bytes: int,
    time_limit: float,
) -> tuple[HttpRequest, None] | tuple[None, HttpResponse]:
    """``(request with its body, None)``, or ``(None, the answer refusing it)``; see the
    module docstring. ``reader`` is the connection's, positioned after the head."""
    if "transfer-encoding" in request.headers:
        return None, HttpResponse.text(411, "a request body needs a Content-Length\n")
    declared = request.headers.get("content-length", "0").strip() or "0"
    if not declared.isdigit():
        return None, HttpResponse.text(400, "malformed Content-Length\n")
    length = int(declared)
    if length > max_bytes:
        return None, HttpResponse.text(413, f"request body over {max_bytes} bytes\n")
    try:
        with anyio.fail_after(time_limit):
            if request.headers.get("expect", "").lower() == "100-continue":
                await stream.send(_CONTINUE)
            body = await reader.read_body(length)
    except TimeoutError:
        return None, HttpResponse.text(408, "request body timeout\n")
    except BadRequest as exc:
        return None, HttpResponse.text(exc.status, f"{exc.reason}\n")
    return replace(request, body=body), None
