"""The error tree of kube-informer.

Every error the library raises derives from :class:`InformerError`. Errors coming from
the transport (kubernetes_asyncio / aiohttp) are translated at one boundary,
``informer._rest.errors``, and chained with ``raise ... from exc``; nothing else in the library
sees a transport exception.

::

    InformerError
    ├── ConfigError                 kubeconfig / in-cluster config missing or invalid
    ├── ConnectionFailed            API server unreachable (refused, DNS, TLS, timeout)
    ├── WatchDecodeError            a watch line that is not a JSON watch event
    │   └── WatchEventTooLarge      a watch line over 16 MiB (client-go's limit) -> relist
    ├── ObjectKeyError              an object without a name, or a malformed key (ValueError)
    ├── ResourceNotServed           API discovery: the server serves no such apiVersion/kind
    ├── ApiError                    the API server answered with a failure Status
    │   ├── BadRequest              400
    │   ├── Unauthorized            401
    │   ├── Forbidden               403 (names verb, resource, namespace)
    │   ├── NotFound                404
    │   ├── Conflict                409 (a stale resourceVersion, a failed precondition)
    │   │   └── AlreadyExists       409 with reason AlreadyExists: create() of an existing name
    │   ├── ResourceExpired         410 Gone: the resourceVersion is too old -> relist
    │   ├── TooManyRequests         429 (retry_after seconds when the server says)
    │   └── ServerError             5xx
    ├── FIFOClosedError             pop() on a closed, empty DeltaFIFO
    ├── QueueShutDown               get() on a shut-down, empty WorkQueue
    ├── TargetError                 a controller name, module, class or file cannot be loaded
    ├── BindError                   a metrics/health endpoint cannot listen on its address
    ├── CacheSyncTimeout            caches did not sync within the Manager's startup timeout
    ├── LeaderElectionLost          the Lease was lost: the Manager stopped the controllers
    ├── ShardMembershipLost         a shard member's Lease was not renewed in time: stopped
    ├── AlreadyOwnedError           set_controller_reference: another owner is the controller
    ├── InvalidObject               an object does not fit its typed model (names it and the field)
    └── UndeclaredAccess            a controller's API call its declared writes do not cover
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "AlreadyExists",
    "AlreadyOwnedError",
    "ApiError",
    "BadRequest",
    "BindError",
    "CacheSyncTimeout",
    "ConfigError",
    "Conflict",
    "ConnectionFailed",
    "FIFOClosedError",
    "Forbidden",
    "InformerError",
    "InvalidObject",
    "LeaderElectionLost",
    "NotFound",
    "ObjectKeyError",
    "QueueShutDown",
    "ResourceExpired",
    "ResourceNotServed",
    "ServerError",
    "ShardMembershipLost",
    "TargetError",
    "TooManyRequests",
    "Unauthorized",
    "UndeclaredAccess",
    "WatchDecodeError",
    "WatchEventTooLarge",
    "api_error_from_status",
]


class InformerError(Exception):
    """Root of every error raised by kube-informer."""


class ConfigError(InformerError):
    """The client configuration (kubeconfig, context, in-cluster files) is missing or invalid."""


class ConnectionFailed(InformerError):
    """The API server could not be reached; ``address`` names where we tried, ``refused``
    says the port refused the connection (nothing listens there: retrying will not help
    soon, unlike a DNS failure or a timeout)."""

    def __init__(self, message: str, *, address: str | None = None, refused: bool = False) -> None:
        super().__init__(message)
        self.address = address
        self.refused = refused


class WatchDecodeError(InformerError):
    """A line of a watch stream was not a decodable watch event.

    ``line`` holds at most the first 200 bytes of the offending line.
    """

    def __init__(self, message: str, *, line: bytes = b"") -> None:
        super().__init__(message)
        self.line = line[:200]


class WatchEventTooLarge(WatchDecodeError):
    """A watch line grew past ``limit`` bytes without its newline; reading stopped there.

    The Reflector drops the watch and relists after a backoff (re-watching from the same
    resourceVersion would meet the same event again). ``line`` holds its first 200 bytes.
    """

    def __init__(self, message: str, *, limit: int, line: bytes = b"") -> None:
        super().__init__(message, line=line)
        self.limit = limit


class ObjectKeyError(InformerError, ValueError):
    """An object has no usable key (no ``metadata.name``), or a key string is malformed.

    Derives from ``ValueError`` as well as :class:`InformerError`.
    """


class ResourceNotServed(InformerError):
    """API discovery found no resource for ``api_version``/``kind`` (controller-runtime's
    ``NoKindMatchError``): the group/version is not served, or serves no such kind (a CRD
    not installed yet, a typo in ``apiVersion`` or ``kind``). Raised after discovery was
    refreshed once."""

    def __init__(self, message: str, *, api_version: str, kind: str) -> None:
        super().__init__(message)
        self.api_version = api_version
        self.kind = kind


class ApiError(InformerError):
    """The API server answered with a failure.

    ``status`` is the HTTP code (or the Status ``code`` of an ERROR watch event),
    ``reason`` the Status reason (``"Expired"``, ``"Forbidden"``, ...), ``body`` the decoded
    Status object when there was one.
    """

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        body: Mapping[str, Any] | None = None,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message
        self.reason = reason
        self.body = body
        self.verb = verb
        self.resource = resource
        self.namespace = namespace

    def has_cause(self, reason: str) -> bool:
        """Whether the Status lists a cause of ``reason`` in ``details.causes``
        (apimachinery's ``HasStatusCause``): e.g. ``"NamespaceTerminating"`` on the 403 a
        creation in a namespace being deleted gets."""
        details = (self.body or {}).get("details")
        causes = details.get("causes") if isinstance(details, Mapping) else None
        return any(isinstance(c, Mapping) and c.get("reason") == reason for c in causes or ())


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    """403. ``verb``, ``resource`` and ``namespace`` say which RBAC rule is missing."""

    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class AlreadyExists(Conflict):
    """409 with reason ``AlreadyExists``: a create named an object that exists (client-go's
    ``IsAlreadyExists``). A :class:`Conflict`, so ``except Conflict`` still catches it."""


class ResourceExpired(ApiError):
    """410 Gone: the requested resourceVersion was compacted; the caller must relist."""

    status = 410


class TooManyRequests(ApiError):
    """429. ``retry_after`` is the server's Retry-After in seconds, when it sent one."""

    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(ApiError):
    status = 500


class FIFOClosedError(InformerError):
    """Raised by ``DeltaFIFO.pop`` once the FIFO is closed and empty."""


class QueueShutDown(InformerError):
    """Raised by ``WorkQueue.get`` once the queue is shut down and drained."""


class TargetError(InformerError):
    """A controller name, module, attribute or file cannot be loaded (the message names
    the target)."""


class BindError(InformerError):
    """An endpoint could not listen on its address (in use, not local, bad host...).

    ``endpoint`` is the server's name (``"metrics"``, ``"health"``), ``address`` the
    address it was given; the message names both and the system's reason.
    """

    def __init__(self, message: str, *, endpoint: str, address: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.address = address


class CacheSyncTimeout(InformerError):
    """Caches did not sync within the startup timeout; ``pending`` names the informers
    that had not synced (or not opened their first watch)."""

    def __init__(self, message: str, *, pending: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.pending = pending


class LeaderElectionLost(InformerError):
    """The leader's Lease was not renewed in time or was taken by another replica; the
    controllers were stopped. ``lease`` is ``namespace/name``, ``identity`` ours."""

    def __init__(self, message: str, *, lease: str = "", identity: str = "") -> None:
        super().__init__(message)
        self.lease = lease
        self.identity = identity


class ShardMembershipLost(InformerError):
    """A sharded replica's member Lease was not renewed within the renew deadline (or
    was deleted or taken over): it stopped reconciling before the others could take its
    keys over, and the controllers were stopped. ``lease`` is ``namespace/name``,
    ``identity`` ours. Restart the process: a new process joins as a new member."""

    def __init__(self, message: str, *, lease: str = "", identity: str = "") -> None:
        super().__init__(message)
        self.lease = lease
        self.identity = identity


class AlreadyOwnedError(InformerError):
    """:func:`~informer.set_controller_reference` found another controller reference.

    An object has at most one controller (the API server rejects a second one).
    ``owner`` is the current controller's owner reference (a copy), ``object_key`` the
    owned object's ``namespace/name``. Do not retry: either the object is legitimately
    another controller's (pick another name), or remove that reference deliberately.
    """

    def __init__(self, message: str, *, owner: Mapping[str, Any], object_key: str) -> None:
        super().__init__(message)
        self.owner = dict(owner)
        self.object_key = object_key


_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: ResourceExpired,
    429: TooManyRequests,
}


def api_error_from_status(
    code: int,
    status: Mapping[str, Any] | None = None,
    *,
    verb: str | None = None,
    resource: str | None = None,
    namespace: str | None = None,
    retry_after: float | None = None,
) -> ApiError:
    """Build the :class:`ApiError` subclass for an HTTP code and an optional Status body.

    Pure function: used by ``informer._rest.errors`` for HTTP failures and by the Reflector for
    ``ERROR`` watch events (whose object is a ``Status``). A Status ``reason`` of
    ``"Expired"`` or ``"Gone"`` maps to :class:`ResourceExpired` whatever the code.
    """
    body = status if isinstance(status, Mapping) else None
    reason = str(body.get("reason", "")) if body else ""
    message = str(body.get("message", "")) if body else ""
    if body and isinstance(body.get("code"), int) and body["code"]:
        code = int(body["code"])
    cls: type[ApiError]
    if reason in ("Expired", "Gone"):
        cls = ResourceExpired
    elif code == 409 and reason == "AlreadyExists":
        cls = AlreadyExists
    elif code in _BY_CODE:
        cls = _BY_CODE[code]
    elif code >= 500:
        cls = ServerError
    else:
        cls = ApiError
    if not message:
        message = f"API server answered {code}" + (f" ({reason})" if reason else "")
    if cls is Forbidden and verb and resource:
        where = f" in namespace {namespace!r}" if namespace else " at cluster scope"
        message = f"forbidden: cannot {verb} {resource}{where}: {message}"
    if cls is TooManyRequests:
        return TooManyRequests(
            message,
            retry_after=retry_after,
            status=code,
            reason=reason,
            body=body,
            verb=verb,
            resource=resource,
            namespace=namespace,
        )
    return cls(
        message,
        status=code,
        reason=reason,
        body=body,
        verb=verb,
        resource=resource,
        namespace=namespace,
    )


class InvalidObject(InformerError, ValueError):
    """An object does not validate against its typed model (``informer.crd``).

    ``obj`` names it (``Kind namespace/name``) and ``errors`` lists each failure as
    ``(field path, message)``, the path in the object's own (camelCase) field names,
    e.g. ``("spec.targetNamespaces[0]", "String should have at least 1 character")``.
    """

    def __init__(self, obj: str, errors: list[tuple[str, str]]) -> None:
        self.obj = obj
        self.errors = errors
        shown = "; ".join(f"{path or '<root>'}: {message}" for path, message in errors)
        super().__init__(f"{obj}: {shown}")


class UndeclaredAccess(InformerError):
    """A controller that declares its writes (``Controller.writes``, ``informer.rbac``)
    made an API call they do not cover, which its generated Role would not allow.

    Raised before the request in strict mode (the pytest plugin's); in the default mode
    the call is logged once and made. Add the verb to the controller's ``writes`` (and
    regenerate its Role with ``python -m informer.rbac generate``).
    """

    def __init__(
        self,
        controller: str,
        verb: str,
        resource: str,
        *,
        name: str | None = None,
        namespace: str | None = None,
    ) -> None:
        self.controller = controller
        self.verb = verb
        self.resource = resource
        self.name = name
        self.namespace = namespace
        where = f" {name}" if name else ""
        scope = f" in namespace {namespace!r}" if namespace else ""
        super().__init__(
            f"controller {controller}: {verb} {resource}{where}{scope} is not declared: add "
            f"Access(<its Resource>, {verb!r}) to the controller's writes (reads for get, "
            "list) and regenerate its Role (python -m informer.rbac generate)"
        )
