"""Who may scrape the secure metrics: bearer tokens checked by the API server.

:class:`DelegatingAuthorizer` is controller-runtime's
``filters.WithAuthenticationAndAuthorization`` (itself kube-rbac-proxy's logic): the
``Authorization: Bearer <token>`` of each request is

1. authenticated with a ``TokenReview`` (``authentication.k8s.io/v1``): missing, or not
   a token the API server accepts -> **401**;
2. authorized with a ``SubjectAccessReview`` (``authorization.k8s.io/v1``) for the
   reviewed user, its groups, uid and extra, on the non-resource URL (the request's
   path, e.g. ``/metrics``) with verb ``get`` (``HEAD`` is a ``get`` too; other methods
   never get this far) -> **403** when denied. An RBAC rule grants it::

       rules:
         - nonResourceURLs: ["/metrics"]
           verbs: ["get"]

The runner's own identity (the ApiClient's) needs ``create`` on ``tokenreviews`` and
``subjectaccessreviews`` (``deploy/base/metrics-rbac.yaml``). When a review cannot be made
(the API server unreachable, that RBAC missing) the scrape is refused, 401 for the
authentication and 500 for the authorization (as controller-runtime), and the reason is
logged with what to do.

Results are cached per token (its SHA-256, never the token itself) and per (user,
path, verb): ``allowed_ttl`` seconds for a success, ``denied_ttl`` for a failure, in
LRU caches of at most ``max_entries`` each; failures to review are not cached.
Concurrent identical reviews are made once, and at most ``max_in_flight`` reviews are
in flight (a flood of random tokens costs the API server that much, no more). Requests
go through :func:`informer._rest.request.request_json` with the given ApiClient.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import anyio
import structlog

from .._exceptions import Forbidden, InformerError
from .._rest.api_client import ApiClient
from .._rest.request import request_json
from .head import HttpRequest, HttpResponse

__all__ = ["DelegatingAuthorizer", "UserInfo", "bearer_token"]

log = structlog.get_logger(__name__)

_TOKEN_REVIEWS: Final = "/apis/authentication.k8s.io/v1/tokenreviews"
_ACCESS_REVIEWS: Final = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
_UNAUTHORIZED = HttpResponse(
    401, b"Unauthorized\n", headers=(("WWW-Authenticate", 'Bearer realm="metrics"'),)
)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class UserInfo:
    """An authenticated identity, as a TokenReview returns it."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive,
    as kube-apiserver reads it); ``None`` without one."""
    parts = (authorization or "").split()
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


class DelegatingAuthorizer:
    """A :data:`~informer._http.server.RequestFilter`: TokenReview, then
    SubjectAccessReview, both cached (module docstring). Runs on the event loop."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        allowed_ttl: float = 60.0,
        denied_ttl: float = 10.0,
        max_entries: int = 4096,
        max_in_flight: int = 8,
        timeout: float = 10.0,
        audiences: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if allowed_ttl < 0 or denied_ttl < 0 or max_entries < 1 or max_in_flight < 1:
            raise ValueError("TTLs must be >= 0, max_entries and max_in_flight >= 1")
        self._api = api_client
        self.allowed_ttl = allowed_ttl
        self.denied_ttl = denied_ttl
        self.timeout = timeout
        self.audiences = list(audiences)
        self._limiter = anyio.CapacityLimiter(max_in_flight)
        self._tokens: _Cache[bytes, UserInfo | None] = _Cache(max_entries, clock)
        self._access: _Cache[tuple[UserInfo, str, str], bool] = _Cache(max_entries, clock)
        self.reviews = 0
        """TokenReviews and SubjectAccessReviews sent (cache misses)."""

    async def __call__(self, request: HttpRequest) -> HttpResponse | None:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            return _UNAUTHORIZED
        try:
            user = await self.authenticate(token)
        except (InformerError, TimeoutError) as exc:
            log.error("metrics.authentication_failed", error=str(exc), hint=_hint(exc))
            return HttpResponse.text(401, "Authentication failed\n")
        if user is None:
            return _UNAUTHORIZED
        verb = "get" if request.method in ("GET", "HEAD") else request.method.lower()
        try:
            allowed = await self.authorize(user, verb=verb, path=request.path)
        except (InformerError, TimeoutError) as exc:
            log.error(
                "metrics.authorization_failed", user=user.name, error=str(exc), hint=_hint(exc)
            )
            return HttpResponse.text(500, f"Authorization for user {user.name} failed\n")
        if not allowed:
            log.debug("metrics.access_denied", user=user.name, verb=verb, path=request.path)
            return HttpResponse.text(403, f"Authorization denied for user {user.name}\n")
        return None

    async def authenticate(self, token: str) -> UserInfo | None:
        """The token's user, ``None`` when the API server does not accept the token.
        Raises :class:`~informer.InformerError` or ``TimeoutError`` when it cannot say."""
        key = hashlib.sha256(token.encode()).digest()
        return await self._tokens.get(key, lambda: self._review_token(token))

    async def authorize(self, user: UserInfo, *, verb: str, path: str) -> bool:
        """Whether ``user`` may ``verb`` the non-resource URL ``path``."""
        return await self._access.get(
            (user, verb, path), lambda: self._review_access(user, verb, path)
        )

    async def _review_token(self, token: str) -> tuple[UserInfo | None, float]:
        spec: dict[str, Any] = {"token": token}
        if self.audiences:
            spec["audiences"] = self.audiences
        status = await self._post(_TOKEN_REVIEWS, "TokenReview", "authentication.k8s.io", spec)
        user = status.get("user") or {}
        if not status.get("authenticated") or not user.get("username"):
            log.debug("metrics.token_rejected", error=status.get("error", ""))
            return None, self.denied_ttl
        if self.audiences and not set(self.audiences) & set(status.get("audiences") or ()):
            return None, self.denied_ttl
        extra = user.get("extra") or {}
        info = UserInfo(
            name=user["username"],
            uid=user.get("uid", ""),
            groups=tuple(user.get("groups") or ()),
            extra=tuple(sorted((k, tuple(v or ())) for k, v in extra.items())),
        )
        return info, self.allowed_ttl

    async def _review_access(self, user: UserInfo, verb: str, path: str) -> tuple[bool, float]:
        spec: dict[str, Any] = {
            "user": user.name,
            "groups": list(user.groups),
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra}
        status = await self._post(
            _ACCESS_REVIEWS, "SubjectAccessReview", "authorization.k8s.io", spec
        )
        allowed = bool(status.get("allowed")) and not status.get("denied")
        return allowed, self.allowed_ttl if allowed else self.denied_ttl

    async def _post(self, path: str, kind: str, group: str, spec: dict[str, Any]) -> Any:
        body = {"apiVersion": f"{group}/v1", "kind": kind, "spec": spec}
        async with self._limiter:
            self.reviews += 1
            with anyio.fail_after(self.timeout):
                answer = await request_json(
                    self._api,
                    "POST",
                    path,
                    body=body,
                    resource=f"{path.rsplit('/', 1)[1]}.{group}",
                    read_timeout=self.timeout,
                )
        return answer.get("status") or {}


def _hint(exc: BaseException) -> str:
    if isinstance(exc, Forbidden):
        return (
            "grant the runner's identity 'create' on tokenreviews.authentication.k8s.io and "
            "subjectaccessreviews.authorization.k8s.io (deploy/base/metrics-rbac.yaml)"
        )
    return "the API server must be reachable to check scrapers' tokens"


class _Flight(Generic[V]):
    """One review in progress; others asking for the same key wait for it."""

    __slots__ = ("done", "error", "has_value", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: V | None = None
        self.has_value = False
        self.error: BaseException | None = None


class _Cache(Generic[K, V]):
    """An LRU cache of at most ``max_entries`` results, each with its own TTL, loading a
    missing key once however many ask for it concurrently."""

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._flights: dict[K, _Flight[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: K, load: Callable[[], Awaitable[tuple[V, float]]]) -> V:
        """The cached value, or ``load()``'s (cached for the TTL it returns); a failing
        load raises in every caller waiting for it and caches nothing."""
        while True:
            entry = self._entries.get(key)
            if entry is not None:
                if entry[0] > self._clock():
                    self._entries.move_to_end(key)
                    return entry[1]
                del self._entries[key]
            flight = self._flights.get(key)
            if flight is None:
                break
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if flight.has_value:
                return flight.value  # type: ignore[return-value]
            # the loading request was cancelled (its connection closed): load again
        flight = _Flight[V]()
        self._flights[key] = flight
        try:
            value, ttl = await load()
            flight.value, flight.has_value = value, True
        except Exception as exc:
            flight.error = exc
            raise
        finally:
            del self._flights[key]
            flight.done.set()
        if ttl > 0:
            self._entries[key] = (self._clock() + ttl, value)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value
