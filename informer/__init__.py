"""kube-informer: asyncio informers, work queues and controllers for Kubernetes.

The root holds what a controller's author uses every day: the Manager and its
configurations, Controller and Result, the informer factory, the Client, the
EventRecorder, the object helpers most controllers call and the errors they catch.
Second-tier names live in public modules, each with its own ``__all__``:

- :mod:`informer.cache`: ListerWatcher, Reflector, DeltaFIFO, Indexer, handlers, transforms;
- :mod:`informer.workqueue`: work queues and rate limiters;
- :mod:`informer.meta`: accessors, keys, label selectors, conditions, owner references,
  finalizers;
- :mod:`informer.resources`: :class:`Resource` and the built-in resource constants;
- :mod:`informer.observability`: metrics, health checks, probes and their endpoints;
- :mod:`informer.leaderelection`: the Lease elector;
- :mod:`informer.predicates`: event filters for ``Controller.watch``;
- :mod:`informer.testing`: the control plane, fakes and the operator testing kit.

Everything else (modules and folders whose name starts with ``_``) is internal and may
change without notice. Names that left the root keep resolving here for one release,
with a ``DeprecationWarning`` that names their new home.

``import informer`` imports none of them: each root name is imported from its module
the first time it is used (``from informer import Manager`` imports the Manager and
what it needs), so a program, a CLI call or a test subprocess pays only for what it
uses (the transport, kubernetes_asyncio and aiohttp among them, ~0.5-1 s).
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, imported on first use at run time (__getattr__)
    from ._cache.factory import SharedInformerFactory as SharedInformerFactory
    from ._cache.handlers import EventHandler as EventHandler
    from ._cache.handlers import FilteringHandler as FilteringHandler
    from ._cache.handlers import HandlerFuncs as HandlerFuncs
    from ._cache.informer import SharedIndexInformer as SharedIndexInformer
    from ._cache.lister import Lister as Lister
    from ._client.client import Client as Client
    from ._client.mutate import OperationResult as OperationResult
    from ._controller.controller import Controller as Controller
    from ._controller.mappers import KeyMapper as KeyMapper
    from ._controller.mappers import own_key as own_key
    from ._controller.mappers import owner_key as owner_key
    from ._controller.options import ControllerOptions as ControllerOptions
    from ._controller.reconcile import ReconcileStats as ReconcileStats
    from ._controller.reconcile import Result as Result
    from ._events.recorder import EventRecorder as EventRecorder
    from ._exceptions import AlreadyExists as AlreadyExists
    from ._exceptions import AlreadyOwnedError as AlreadyOwnedError
    from ._exceptions import ApiError as ApiError
    from ._exceptions import BadRequest as BadRequest
    from ._exceptions import CacheSyncTimeout as CacheSyncTimeout
    from ._exceptions import ConfigError as ConfigError
    from ._exceptions import Conflict as Conflict
    from ._exceptions import ConnectionFailed as ConnectionFailed
    from ._exceptions import Forbidden as Forbidden
    from ._exceptions import InformerError as InformerError
    from ._exceptions import LeaderElectionLost as LeaderElectionLost
    from ._exceptions import NotFound as NotFound
    from ._exceptions import ResourceExpired as ResourceExpired
    from ._exceptions import ResourceNotServed as ResourceNotServed
    from ._exceptions import ServerError as ServerError
    from ._exceptions import ShardMembershipLost as ShardMembershipLost
    from ._exceptions import TooManyRequests as TooManyRequests
    from ._exceptions import Unauthorized as Unauthorized
    from ._leaderelection.config import LeaderElectionConfig as LeaderElectionConfig
    from ._manager.manager import Manager as Manager
    from ._meta.conditions import get_condition as get_condition
    from ._meta.conditions import is_condition_true as is_condition_true
    from ._meta.conditions import set_condition as set_condition
    from ._meta.finalizers import has_finalizer as has_finalizer
    from ._meta.finalizers import is_being_deleted as is_being_deleted
    from ._meta.objects import DeletedFinalStateUnknown as DeletedFinalStateUnknown
    from ._meta.objects import annotations_of as annotations_of
    from ._meta.objects import labels_of as labels_of
    from ._meta.objects import meta_namespace_key as meta_namespace_key
    from ._meta.objects import name_of as name_of
    from ._meta.objects import namespace_of as namespace_of
    from ._meta.objects import uid_of as uid_of
    from ._meta.ownerrefs import set_controller_reference as set_controller_reference
    from ._meta.ownerrefs import set_owner_reference as set_owner_reference
    from ._meta.resource import Resource as Resource
    from ._meta.types import Obj as Obj
    from ._rest.api_client import new_api_client as new_api_client
    from ._rest.request import request_json as request_json
    from ._sharding.config import ShardingConfig as ShardingConfig

__all__ = [
    "AlreadyExists",
    "AlreadyOwnedError",
    "ApiError",
    "BadRequest",
    "CacheSyncTimeout",
    "Client",
    "ConfigError",
    "Conflict",
    "ConnectionFailed",
    "Controller",
    "ControllerOptions",
    "DeletedFinalStateUnknown",
    "EventHandler",
    "EventRecorder",
    "FilteringHandler",
    "Forbidden",
    "HandlerFuncs",
    "InformerError",
    "KeyMapper",
    "LeaderElectionConfig",
    "LeaderElectionLost",
    "Lister",
    "Manager",
    "NotFound",
    "Obj",
    "OperationResult",
    "ReconcileStats",
    "Resource",
    "ResourceExpired",
    "ResourceNotServed",
    "Result",
    "ServerError",
    "ShardMembershipLost",
    "ShardingConfig",
    "SharedIndexInformer",
    "SharedInformerFactory",
    "TooManyRequests",
    "Unauthorized",
    "annotations_of",
    "get_condition",
    "has_finalizer",
    "is_being_deleted",
    "is_condition_true",
    "labels_of",
    "meta_namespace_key",
    "name_of",
    "namespace_of",
    "new_api_client",
    "own_key",
    "owner_key",
    "request_json",
    "set_condition",
    "set_controller_reference",
    "set_owner_reference",
    "uid_of",
]

_LAZY: dict[str, str] = {
    "SharedInformerFactory": "._cache.factory",
    "EventHandler": "._cache.handlers",
    "FilteringHandler": "._cache.handlers",
    "HandlerFuncs": "._cache.handlers",
    "SharedIndexInformer": "._cache.informer",
    "Lister": "._cache.lister",
    "Client": "._client.client",
    "OperationResult": "._client.mutate",
    "Controller": "._controller.controller",
    "KeyMapper": "._controller.mappers",
    "own_key": "._controller.mappers",
    "owner_key": "._controller.mappers",
    "ControllerOptions": "._controller.options",
    "ReconcileStats": "._controller.reconcile",
    "Result": "._controller.reconcile",
    "EventRecorder": "._events.recorder",
    "AlreadyExists": "._exceptions",
    "AlreadyOwnedError": "._exceptions",
    "ApiError": "._exceptions",
    "BadRequest": "._exceptions",
    "CacheSyncTimeout": "._exceptions",
    "ConfigError": "._exceptions",
    "Conflict": "._exceptions",
    "ConnectionFailed": "._exceptions",
    "Forbidden": "._exceptions",
    "InformerError": "._exceptions",
    "LeaderElectionLost": "._exceptions",
    "NotFound": "._exceptions",
    "ResourceExpired": "._exceptions",
    "ResourceNotServed": "._exceptions",
    "ServerError": "._exceptions",
    "ShardMembershipLost": "._exceptions",
    "TooManyRequests": "._exceptions",
    "Unauthorized": "._exceptions",
    "LeaderElectionConfig": "._leaderelection.config",
    "Manager": "._manager.manager",
    "get_condition": "._meta.conditions",
    "is_condition_true": "._meta.conditions",
    "set_condition": "._meta.conditions",
    "has_finalizer": "._meta.finalizers",
    "is_being_deleted": "._meta.finalizers",
    "DeletedFinalStateUnknown": "._meta.objects",
    "annotations_of": "._meta.objects",
    "labels_of": "._meta.objects",
    "meta_namespace_key": "._meta.objects",
    "name_of": "._meta.objects",
    "namespace_of": "._meta.objects",
    "uid_of": "._meta.objects",
    "set_controller_reference": "._meta.ownerrefs",
    "set_owner_reference": "._meta.ownerrefs",
    "Resource": "._meta.resource",
    "Obj": "._meta.types",
    "new_api_client": "._rest.api_client",
    "request_json": "._rest.request",
    "ShardingConfig": "._sharding.config",
}
"""Root names -> the private module defining them, imported when a name is first used."""

_MOVED: dict[str, str] = {
    "ApiListerWatcher": "cache",
    "BindError": "observability",
    "BucketRateLimiter": "workqueue",
    "CONFIGMAPS": "resources",
    "CRONJOBS": "resources",
    "CUSTOM_RESOURCE_DEFINITIONS": "resources",
    "DAEMONSETS": "resources",
    "DEPLOYMENTS": "resources",
    "DelayingQueue": "workqueue",
    "Delta": "cache",
    "DeltaFIFO": "cache",
    "DeltaType": "cache",
    "EVENTS": "resources",
    "Endpoints": "observability",
    "ExponentialFailureRateLimiter": "workqueue",
    "FIFOClosedError": "cache",
    "HealthChecks": "observability",
    "HttpLimits": "observability",
    "IndexFunc": "cache",
    "Indexer": "cache",
    "ItemFastSlowRateLimiter": "workqueue",
    "JOBS": "resources",
    "LEASES": "resources",
    "LeaderElector": "leaderelection",
    "ListerWatcher": "cache",
    "MaxOfRateLimiter": "workqueue",
    "Metrics": "observability",
    "NAMESPACES": "resources",
    "NAMESPACE_INDEX": "cache",
    "NODES": "resources",
    "ObjectKeyError": "meta",
    "Observability": "observability",
    "PODS": "resources",
    "QueueMetrics": "workqueue",
    "QueueMetricsProvider": "workqueue",
    "QueueShutDown": "workqueue",
    "REPLICASETS": "resources",
    "RateLimiter": "workqueue",
    "RateLimitingQueue": "workqueue",
    "Reflector": "cache",
    "ReflectorStats": "cache",
    "SECRETS": "resources",
    "SERVICES": "resources",
    "SERVICE_ACCOUNTS": "resources",
    "STATEFULSETS": "resources",
    "TargetError": "run",
    "WatchDecodeError": "cache",
    "WatchEvent": "cache",
    "WatchEventTooLarge": "cache",
    "WorkQueue": "workqueue",
    "controller_of": "meta",
    "default_controller_rate_limiter": "workqueue",
    "format_label_selector": "meta",
    "namespace_index": "cache",
    "owner_references": "meta",
    "parse_label_selector": "meta",
    "resource_version": "meta",
    "run_observability": "observability",
    "serve_health": "observability",
    "serve_metrics": "observability",
    "share_strings": "cache",
    "split_meta_namespace_key": "meta",
    "strip_managed_fields": "cache",
    "unwrap_tombstone": "meta",
    "use_queue_metrics_provider": "workqueue",
}
"""Names that left the root -> their public module (``informer.<module>``)."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value  # once: later lookups do not come here
        return value
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"informer.{name} moved to informer.{home}.{name}: import it from there "
        f"(`from informer.{home} import {name}`); the root alias will be removed",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(f"informer.{home}"), name)


def __dir__() -> list[str]:
    return sorted([*__all__, *_MOVED])
