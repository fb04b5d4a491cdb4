"""What every webhook is to the server: a :class:`Webhook` answers a POSTed review at its
``path``; a body it cannot answer raises :class:`ReviewError`.

The server (:mod:`informer._webhook.server`) routes, times and counts requests; the
webhooks (:mod:`~informer._webhook.admission`, :mod:`~informer._webhook.conversion`)
decode, call the user's functions and encode. A webhook never raises anything but
:class:`ReviewError` from :meth:`Webhook.review`: a failing user function is answered
(a denial, a failed conversion) and reported as an absorbed failure.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Final, Literal

import orjson

__all__ = [
    "WEBHOOK_NAME",
    "ReviewError",
    "Webhook",
    "WebhookType",
    "check_path",
    "decode_review",
]

WebhookType = Literal["validating", "mutating", "conversion"]

WEBHOOK_NAME: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$"
)
"""A DNS-1123 subdomain: what admission webhook names must be (with 3 segments or more)."""

_PATH: Final = re.compile(r"^(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$")


class ReviewError(Exception):
    """A request body the webhook cannot answer (not JSON, not a review of a supported
    version, no ``uid``): the server answers 400 with this message."""


def decode_review(
    body: bytes, *, kind: str, versions: Sequence[str]
) -> tuple[str, dict[str, Any], str]:
    """The envelope of a review body (an AdmissionReview or a ConversionReview):
    ``(apiVersion, request, request uid)``; :class:`ReviewError` for a body that is not
    JSON, not a ``kind`` review in one of ``versions``, or has no request or uid."""
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ReviewError(f"the body is not JSON: {exc}") from exc
    if not isinstance(review, dict) or review.get("kind") != kind:
        article = "an" if kind[:1] in "AEIOU" else "a"
        raise ReviewError(f"the body is not {article} {kind} (kind)")
    api_version = review.get("apiVersion")
    if api_version not in versions:
        raise ReviewError(
            f"unsupported {kind} apiVersion {api_version!r} (expected one of {', '.join(versions)})"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise ReviewError(f"the {kind} has no request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError(f"the {kind} request has no uid")
    return str(api_version), request, uid


def check_path(path: str) -> str:
    """``path`` if it is an absolute URL path without a query (``/validate-x``); else
    ``ValueError``."""
    if not _PATH.match(path):
        raise ValueError(
            f"a webhook path is an absolute URL path without a query, like "
            f"'/validate-configmaps', got {path!r}"
        )
    return path


class Webhook(ABC):
    """A webhook the Manager serves: ``name`` (logs, failures, the configuration),
    ``path`` (its URL path on the webhook server, the ``webhook`` label of its metrics)
    and the review it answers.

    Instances are what ``python -m informer.run`` collects from a target module and from
    the ``kube_informer.webhooks`` entry points, as it collects Controller subclasses.
    """

    type: ClassVar[WebhookType]
    name: str
    path: str

    @abstractmethod
    async def review(self, body: bytes) -> bytes:
        """The JSON answer to one POSTed review body; :class:`ReviewError` when the body
        cannot be answered. Runs on the event loop; bounded by the webhook's own
        timeout."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} at {self.path}>"
