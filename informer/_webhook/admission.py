"""Admission webhooks: :class:`ValidatingWebhook` and :class:`MutatingWebhook`
(controller-runtime's ``admission.Webhook`` with ``CustomValidator`` / ``CustomDefaulter``).

A handler works on the object dicts of one :class:`~informer._webhook.review.AdmissionRequest`
and is a plain function or a class, sync or async:

- validating: ``fn(request) -> warnings`` or a :class:`Validator` (``validate_create(obj,
  request)``, ``validate_update(old, new, request)``, ``validate_delete(old, request)``);
- mutating: ``fn(obj, request) -> warnings`` or a :class:`Defaulter` (``default(obj,
  request)``): ``obj`` is a private copy of ``request.object`` to change in place; the
  JSON patch from the original to it is computed for you (:mod:`informer._webhook.patch`).

A handler allows by returning (``None``, a warning, or a list of warnings: each reaches
the client as a ``Warning`` header) and denies by raising :class:`Denied` (a message, an
HTTP-style code, default 403, and warnings). ``request.dry_run`` tells it that nothing
will be persisted.

Failures never hang a request: a handler that raises anything else is answered with a
denial (code 500) naming the webhook and the exception, one that runs past
``handler_timeout`` (default: 80% of ``timeout_seconds``, at most one second less, so
that the answer reaches the API server before it gives up) is cancelled and answered
with a denial (code 504). Both are logged and reported as absorbed failures of kind
``webhook`` (:mod:`informer._failures`; the pytest plugin fails the test). Such a
denial is an answer, so ``failure_policy`` (which covers an unreachable or failing
server) does not turn it into an admission. A sync handler runs on the event loop and
cannot be interrupted: it must be fast (put slow work in an async handler).

The other arguments are the webhook's entry in its ValidatingWebhookConfiguration or
MutatingWebhookConfiguration (:mod:`informer._webhook.configuration` generates them):
``resources`` the :class:`~informer.Resource`\\s its rules match, ``operations``
(default: the operations a :class:`Validator` implements, else ``CREATE`` and
``UPDATE``), ``failure_policy``, ``side_effects``, ``timeout_seconds``,
``match_policy``, ``namespace_selector``, ``object_selector``, ``match_conditions``
(name -> CEL expression), ``reinvocation_policy`` (mutating). ``name`` is the webhook's
name in the configuration (a DNS subdomain of three segments or more, such as
``vconfigmapmirror.mirror.informer.dev``); ``path`` defaults to kubebuilder's
``/validate-<group>-<version>-<kind>`` (``/mutate-...``), dots of the group as dashes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, Literal, TypeAlias

import anyio
import orjson
import structlog

from .._failures import report_failure
from .._meta.resource import Resource
from .._meta.types import Obj
from .base import WEBHOOK_NAME, Webhook, WebhookType, check_path
from .patch import json_patch
from .review import (
    OPERATIONS,
    AdmissionRequest,
    AdmissionResponse,
    decode_admission_review,
    encode_admission_review,
)

__all__ = [
    "AdmissionWebhook",
    "Defaulter",
    "Denied",
    "MutateFunc",
    "MutatingWebhook",
    "ValidateFunc",
    "ValidatingWebhook",
    "Validator",
    "Warnings",
]

log = structlog.get_logger(__name__)

Warnings: TypeAlias = str | Sequence[str] | None
"""What a handler returns to allow: nothing, one warning or several."""

ValidateFunc = Callable[[AdmissionRequest], Warnings | Awaitable[Warnings]]
MutateFunc = Callable[[Obj, AdmissionRequest], Warnings | Awaitable[Warnings]]

FailurePolicy = Literal["Fail", "Ignore"]
SideEffects = Literal["None", "NoneOnDryRun"]
MatchPolicy = Literal["Equivalent", "Exact"]
ReinvocationPolicy = Literal["Never", "IfNeeded"]

_REASONS: Final = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Gone",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class Denied(Exception):
    """Raised by a handler to deny the request: ``message`` reaches the client (after
    the API server's ``admission webhook "<name>" denied the request:``), ``code`` is
    the HTTP status of its error (400-599; 403 by default, 422 for an invalid object),
    ``reason`` its ``Status.reason`` (default from the code), ``warnings`` are sent too.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int = 403,
        reason: str | None = None,
        warnings: Sequence[str] = (),
    ) -> None:
        if not 400 <= code <= 599:
            raise ValueError(f"a denial's code is an HTTP error status (400-599), got {code}")
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason if reason is not None else _REASONS.get(code, "")
        self.warnings = tuple(warnings)


class Validator:
    """controller-runtime's ``CustomValidator``: override the operations to validate.

    Each method returns warnings (or ``None``) to allow, raises :class:`Denied` to
    deny; it may be a coroutine. Objects are read-only. ``validate_delete`` receives
    the object being deleted. An operation whose method is not overridden is allowed,
    and left out of the webhook's default ``operations``.
    """

    def validate_create(
        self, obj: Obj, request: AdmissionRequest
    ) -> Warnings | Awaitable[Warnings]:
        return None

    def validate_update(
        self, old: Obj, new: Obj, request: AdmissionRequest
    ) -> Warnings | Awaitable[Warnings]:
        return None

    def validate_delete(
        self, obj: Obj, request: AdmissionRequest
    ) -> Warnings | Awaitable[Warnings]:
        return None

    def operations(self) -> tuple[str, ...]:
        """The operations this class validates (the methods it overrides)."""
        methods = {
            "CREATE": "validate_create",
            "UPDATE": "validate_update",
            "DELETE": "validate_delete",
        }
        own = type(self)
        return tuple(
            op for op, m in methods.items() if getattr(own, m) is not getattr(Validator, m)
        )

    def __call__(self, request: AdmissionRequest) -> Warnings | Awaitable[Warnings]:
        new, old = request.object, request.old_object
        if request.operation == "CREATE":
            return self.validate_create(_present(new, request, "object"), request)
        if request.operation == "UPDATE":
            return self.validate_update(
                _present(old, request, "oldObject"), _present(new, request, "object"), request
            )
        if request.operation == "DELETE":
            return self.validate_delete(_present(old, request, "oldObject"), request)
        return None


class Defaulter:
    """controller-runtime's ``CustomDefaulter``: :meth:`default` changes ``obj`` (a
    private copy of the request's object) in place and returns warnings or ``None``; it
    may be a coroutine and may raise :class:`Denied`."""

    def default(self, obj: Obj, request: AdmissionRequest) -> Warnings | Awaitable[Warnings]:
        raise NotImplementedError(f"{type(self).__qualname__} must implement default()")

    def __call__(self, obj: Obj, request: AdmissionRequest) -> Warnings | Awaitable[Warnings]:
        return self.default(obj, request)


def _present(obj: Obj | None, request: AdmissionRequest, what: str) -> Obj:
    if obj is None:
        raise Denied(f"the {request.operation} request has no {what}", code=400)
    return obj


def _warnings(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(w, str) for w in value):
        return tuple(value)
    raise TypeError(f"a handler returns None, a warning or a list of warnings, got {value!r}")


async def _call(fn: Callable[..., Any], *args: Any) -> tuple[str, ...]:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return _warnings(result)


def _default_path(prefix: str, resource: Resource) -> str:
    kind = (resource.kind or resource.plural).lower()
    return f"/{prefix}-{resource.group.replace('.', '-')}-{resource.version}-{kind}"


class AdmissionWebhook(Webhook):
    """What validating and mutating webhooks share: configuration, timeout, failures
    (see the module docstring)."""

    type: ClassVar[WebhookType]
    _prefix: ClassVar[str]

    def __init__(
        self,
        resources: Resource | Sequence[Resource],
        *,
        name: str,
        path: str | None,
        operations: Sequence[str] | None,
        failure_policy: FailurePolicy,
        side_effects: SideEffects,
        timeout_seconds: int,
        handler_timeout: float | None,
        match_policy: MatchPolicy,
        namespace_selector: Mapping[str, Any] | None,
        object_selector: Mapping[str, Any] | None,
        match_conditions: Mapping[str, str] | None,
        default_operations: Sequence[str],
    ) -> None:
        self.resources = (resources,) if isinstance(resources, Resource) else tuple(resources)
        if not self.resources:
            raise ValueError(f"webhook {name!r}: give at least one Resource to match")
        if not (WEBHOOK_NAME.match(name) and name.count(".") >= 2 and len(name) <= 253):
            raise ValueError(
                f"an admission webhook's name is a DNS subdomain of at least three "
                f"segments (e.g. 'v{self.resources[0].plural}.example.com'), got {name!r}"
            )
        self.name = name
        self.path = check_path(path or _default_path(self._prefix, self.resources[0]))
        self.operations = tuple(operations if operations is not None else default_operations)
        unknown = [op for op in self.operations if op not in (*OPERATIONS, "*")]
        if unknown or not self.operations:
            raise ValueError(
                f"webhook {name!r}: operations are CREATE, UPDATE, DELETE, CONNECT or *, "
                f"got {list(self.operations)!r}"
            )
        if failure_policy not in ("Fail", "Ignore"):
            raise ValueError(f"failure_policy is 'Fail' or 'Ignore', got {failure_policy!r}")
        if side_effects not in ("None", "NoneOnDryRun"):
            raise ValueError(f"side_effects is 'None' or 'NoneOnDryRun', got {side_effects!r}")
        if match_policy not in ("Equivalent", "Exact"):
            raise ValueError(f"match_policy is 'Equivalent' or 'Exact', got {match_policy!r}")
        if not (isinstance(timeout_seconds, int) and 1 <= timeout_seconds <= 30):
            raise ValueError(
                f"timeout_seconds is 1-30 (the API server's range), got {timeout_seconds!r}"
            )
        self.failure_policy = failure_policy
        self.side_effects = side_effects
        self.timeout_seconds = timeout_seconds
        self.handler_timeout = (
            handler_timeout
            if handler_timeout is not None
            else max(0.8 * timeout_seconds, timeout_seconds - 1.0)
        )
        if not 0 < self.handler_timeout <= timeout_seconds:
            raise ValueError(
                f"handler_timeout must be > 0 and <= timeout_seconds ({timeout_seconds}), "
                f"got {handler_timeout!r}"
            )
        self.match_policy = match_policy
        self.namespace_selector = dict(namespace_selector) if namespace_selector else None
        self.object_selector = dict(object_selector) if object_selector else None
        self.match_conditions = dict(match_conditions or {})

    async def review(self, body: bytes) -> bytes:
        api_version, request = decode_admission_review(body)
        return encode_admission_review(api_version, await self.admit(request))

    async def admit(self, request: AdmissionRequest) -> AdmissionResponse:
        """The answer to ``request``: the handler's verdict, or a denial when it raised
        or ran out of time (module docstring). Never raises."""
        with anyio.move_on_after(self.handler_timeout):
            try:
                return await self._handle(request)
            except Denied as denied:
                return AdmissionResponse(
                    request.uid,
                    False,
                    code=denied.code,
                    reason=denied.reason,
                    message=denied.message,
                    warnings=denied.warnings,
                )
            except Exception as exc:
                return self._failed(request, exc, 500, f"{type(exc).__name__}: {exc}")
        timeout = TimeoutError(f"no answer within {self.handler_timeout:g}s")
        return self._failed(
            request, timeout, 504, f"the handler did not answer within {self.handler_timeout:g}s"
        )

    def _failed(
        self, request: AdmissionRequest, error: BaseException, code: int, what: str
    ) -> AdmissionResponse:
        log.error(
            "webhook.handler_failed",
            webhook=self.name,
            operation=request.operation,
            key=request.key,
            error=what,
            exc_info=error if code == 500 else None,
        )
        report_failure("webhook", self.name, error, key=request.key or None)
        return AdmissionResponse(
            request.uid,
            False,
            code=code,
            reason=_REASONS[code],
            message=f"webhook {self.name} failed: {what}",
        )

    async def _handle(self, request: AdmissionRequest) -> AdmissionResponse:
        raise NotImplementedError


class ValidatingWebhook(AdmissionWebhook):
    """A validating admission webhook: ``handler`` is a :class:`Validator` or a
    function of the request (module docstring)."""

    type: ClassVar[WebhookType] = "validating"
    _prefix = "validate"

    def __init__(
        self,
        resources: Resource | Sequence[Resource],
        handler: Validator | ValidateFunc,
        *,
        name: str,
        path: str | None = None,
        operations: Sequence[str] | None = None,
        failure_policy: FailurePolicy = "Fail",
        side_effects: SideEffects = "None",
        timeout_seconds: int = 10,
        handler_timeout: float | None = None,
        match_policy: MatchPolicy = "Equivalent",
        namespace_selector: Mapping[str, Any] | None = None,
        object_selector: Mapping[str, Any] | None = None,
        match_conditions: Mapping[str, str] | None = None,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"a validating handler is a Validator or a function, got {handler!r}")
        defaults = handler.operations() if isinstance(handler, Validator) else ("CREATE", "UPDATE")
        super().__init__(
            resources,
            name=name,
            path=path,
            operations=operations,
            failure_policy=failure_policy,
            side_effects=side_effects,
            timeout_seconds=timeout_seconds,
            handler_timeout=handler_timeout,
            match_policy=match_policy,
            namespace_selector=namespace_selector,
            object_selector=object_selector,
            match_conditions=match_conditions,
            default_operations=defaults or ("CREATE", "UPDATE"),
        )
        self.handler = handler

    async def _handle(self, request: AdmissionRequest) -> AdmissionResponse:
        warnings = await _call(self.handler, request)
        return AdmissionResponse(request.uid, True, warnings=warnings)


class MutatingWebhook(AdmissionWebhook):
    """A mutating admission webhook: ``handler`` is a :class:`Defaulter` or a function
    changing its ``obj`` argument (module docstring). A request without an object (a
    DELETE) is allowed unchanged."""

    type: ClassVar[WebhookType] = "mutating"
    _prefix = "mutate"

    def __init__(
        self,
        resources: Resource | Sequence[Resource],
        handler: Defaulter | MutateFunc,
        *,
        name: str,
        path: str | None = None,
        operations: Sequence[str] | None = None,
        failure_policy: FailurePolicy = "Fail",
        side_effects: SideEffects = "None",
        timeout_seconds: int = 10,
        handler_timeout: float | None = None,
        match_policy: MatchPolicy = "Equivalent",
        namespace_selector: Mapping[str, Any] | None = None,
        object_selector: Mapping[str, Any] | None = None,
        match_conditions: Mapping[str, str] | None = None,
        reinvocation_policy: ReinvocationPolicy = "Never",
    ) -> None:
        if not callable(handler):
            raise TypeError(f"a mutating handler is a Defaulter or a function, got {handler!r}")
        if reinvocation_policy not in ("Never", "IfNeeded"):
            raise ValueError(
                f"reinvocation_policy is 'Never' or 'IfNeeded', got {reinvocation_policy!r}"
            )
        super().__init__(
            resources,
            name=name,
            path=path,
            operations=operations,
            failure_policy=failure_policy,
            side_effects=side_effects,
            timeout_seconds=timeout_seconds,
            handler_timeout=handler_timeout,
            match_policy=match_policy,
            namespace_selector=namespace_selector,
            object_selector=object_selector,
            match_conditions=match_conditions,
            default_operations=("CREATE", "UPDATE"),
        )
        self.handler = handler
        self.reinvocation_policy = reinvocation_policy

    async def _handle(self, request: AdmissionRequest) -> AdmissionResponse:
        if request.object is None:
            return AdmissionResponse(request.uid, True)
        obj = orjson.loads(orjson.dumps(request.object))
        warnings = await _call(self.handler, obj, request)
        patch = json_patch(request.object, obj)
        return AdmissionResponse(request.uid, True, warnings=warnings, patch=patch or None)
