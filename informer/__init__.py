"""kube-informer: asyncio informers, work queues and controllers for Kubernetes.

The public API is re-exported here from private, one-concept modules; everything not
listed in ``__all__`` is internal and may change without notice.
"""

from ._cache.delta_fifo import Delta as Delta
from ._cache.delta_fifo import DeltaFIFO as DeltaFIFO
from ._cache.delta_fifo import DeltaType as DeltaType
from ._cache.factory import SharedInformerFactory as SharedInformerFactory
from ._cache.handlers import EventHandler as EventHandler
from ._cache.handlers import FilteringHandler as FilteringHandler
from ._cache.handlers import HandlerFuncs as HandlerFuncs
from ._cache.informer import SharedIndexInformer as SharedIndexInformer
from ._cache.lister import Lister as Lister
from ._cache.listwatch import ApiListerWatcher as ApiListerWatcher
from ._cache.listwatch import ListerWatcher as ListerWatcher
from ._cache.reflector import Reflector as Reflector
from ._cache.reflector_stats import ReflectorStats as ReflectorStats
from ._cache.store import NAMESPACE_INDEX as NAMESPACE_INDEX
from ._cache.store import Indexer as Indexer
from ._cache.store import IndexFunc as IndexFunc
from ._cache.store import namespace_index as namespace_index
from ._client.client import Client as Client
from ._client.mutate import OperationResult as OperationResult
from ._conditions import get_condition as get_condition
from ._conditions import is_condition_true as is_condition_true
from ._conditions import set_condition as set_condition
from ._controller import Controller as Controller
from ._events.recorder import EventRecorder as EventRecorder
from ._exceptions import AlreadyExists as AlreadyExists
from ._exceptions import AlreadyOwnedError as AlreadyOwnedError
from ._exceptions import ApiError as ApiError
from ._exceptions import BadRequest as BadRequest
from ._exceptions import BindError as BindError
from ._exceptions import CacheSyncTimeout as CacheSyncTimeout
from ._exceptions import ConfigError as ConfigError
from ._exceptions import Conflict as Conflict
from ._exceptions import ConnectionFailed as ConnectionFailed
from ._exceptions import FIFOClosedError as FIFOClosedError
from ._exceptions import Forbidden as Forbidden
from ._exceptions import InformerError as InformerError
from ._exceptions import LeaderElectionLost as LeaderElectionLost
from ._exceptions import NotFound as NotFound
from ._exceptions import ObjectKeyError as ObjectKeyError
from ._exceptions import QueueShutDown as QueueShutDown
from ._exceptions import ResourceExpired as ResourceExpired
from ._exceptions import ResourceNotServed as ResourceNotServed
from ._exceptions import ServerError as ServerError
from ._exceptions import ShardMembershipLost as ShardMembershipLost
from ._exceptions import TargetError as TargetError
from ._exceptions import TooManyRequests as TooManyRequests
from ._exceptions import Unauthorized as Unauthorized
from ._exceptions import WatchDecodeError as WatchDecodeError
from ._exceptions import WatchEventTooLarge as WatchEventTooLarge
from ._finalizers import has_finalizer as has_finalizer
from ._finalizers import is_being_deleted as is_being_deleted
from ._keys import KeyMapper as KeyMapper
from ._keys import own_key as own_key
from ._keys import owner_key as owner_key
from ._kube import new_api_client as new_api_client
from ._kube import request_json as request_json
from ._labels import format_label_selector as format_label_selector
from ._labels import parse_label_selector as parse_label_selector
from ._leaderelection import LeaderElector as LeaderElector
from ._objects import DeletedFinalStateUnknown as DeletedFinalStateUnknown
from ._objects import annotations_of as annotations_of
from ._objects import controller_of as controller_of
from ._objects import labels_of as labels_of
from ._objects import meta_namespace_key as meta_namespace_key
from ._objects import name_of as name_of
from ._objects import namespace_of as namespace_of
from ._objects import owner_references as owner_references
from ._objects import resource_version as resource_version
from ._objects import split_meta_namespace_key as split_meta_namespace_key
from ._objects import uid_of as uid_of
from ._objects import unwrap_tombstone as unwrap_tombstone
from ._ownerrefs import set_controller_reference as set_controller_reference
from ._ownerrefs import set_owner_reference as set_owner_reference
from ._queue.metrics import QueueMetrics as QueueMetrics
from ._queue.metrics import QueueMetricsProvider as QueueMetricsProvider
from ._queue.metrics import use_queue_metrics_provider as use_queue_metrics_provider
from ._queue.ratelimit import BucketRateLimiter as BucketRateLimiter
from ._queue.ratelimit import ExponentialFailureRateLimiter as ExponentialFailureRateLimiter
from ._queue.ratelimit import ItemFastSlowRateLimiter as ItemFastSlowRateLimiter
from ._queue.ratelimit import MaxOfRateLimiter as MaxOfRateLimiter
from ._queue.ratelimit import RateLimiter as RateLimiter
from ._queue.ratelimit import default_controller_rate_limiter as default_controller_rate_limiter
from ._queue.workqueue import DelayingQueue as DelayingQueue
from ._queue.workqueue import RateLimitingQueue as RateLimitingQueue
from ._queue.workqueue import WorkQueue as WorkQueue
from ._reconcile import ReconcileStats as ReconcileStats
from ._reconcile import Result as Result
from ._resource import CONFIGMAPS as CONFIGMAPS
from ._resource import CRONJOBS as CRONJOBS
from ._resource import CUSTOM_RESOURCE_DEFINITIONS as CUSTOM_RESOURCE_DEFINITIONS
from ._resource import DAEMONSETS as DAEMONSETS
from ._resource import DEPLOYMENTS as DEPLOYMENTS
from ._resource import EVENTS as EVENTS
from ._resource import JOBS as JOBS
from ._resource import LEASES as LEASES
from ._resource import NAMESPACES as NAMESPACES
from ._resource import NODES as NODES
from ._resource import PODS as PODS
from ._resource import REPLICASETS as REPLICASETS
from ._resource import SECRETS as SECRETS
from ._resource import SERVICE_ACCOUNTS as SERVICE_ACCOUNTS
from ._resource import SERVICES as SERVICES
from ._resource import STATEFULSETS as STATEFULSETS
from ._resource import Resource as Resource
from ._runtime.election import LeaderElectionConfig as LeaderElectionConfig
from ._runtime.health import HealthChecks as HealthChecks
from ._runtime.health import serve_health as serve_health
from ._runtime.http import HttpLimits as HttpLimits
from ._runtime.manager import Manager as Manager
from ._runtime.metrics import Metrics as Metrics
from ._runtime.metrics import serve_metrics as serve_metrics
from ._runtime.observability import Endpoints as Endpoints
from ._runtime.observability import Observability as Observability
from ._runtime.observability import run_observability as run_observability
from ._runtime.sharding import ShardingConfig as ShardingConfig
from ._strings import share_strings as share_strings
from ._transforms import strip_managed_fields as strip_managed_fields
from ._types import Obj as Obj
from ._types import WatchEvent as WatchEvent

__all__ = [
    "CONFIGMAPS",
    "CRONJOBS",
    "CUSTOM_RESOURCE_DEFINITIONS",
    "DAEMONSETS",
    "DEPLOYMENTS",
    "EVENTS",
    "JOBS",
    "LEASES",
    "NAMESPACES",
    "NAMESPACE_INDEX",
    "NODES",
    "PODS",
    "REPLICASETS",
    "SECRETS",
    "SERVICES",
    "SERVICE_ACCOUNTS",
    "STATEFULSETS",
    "AlreadyExists",
    "AlreadyOwnedError",
    "ApiError",
    "ApiListerWatcher",
    "BadRequest",
    "BindError",
    "BucketRateLimiter",
    "CacheSyncTimeout",
    "Client",
    "ConfigError",
    "Conflict",
    "ConnectionFailed",
    "Controller",
    "DelayingQueue",
    "DeletedFinalStateUnknown",
    "Delta",
    "DeltaFIFO",
    "DeltaType",
    "Endpoints",
    "EventHandler",
    "EventRecorder",
    "ExponentialFailureRateLimiter",
    "FIFOClosedError",
    "FilteringHandler",
    "Forbidden",
    "HandlerFuncs",
    "HealthChecks",
    "HttpLimits",
    "IndexFunc",
    "Indexer",
    "InformerError",
    "ItemFastSlowRateLimiter",
    "KeyMapper",
    "LeaderElectionConfig",
    "LeaderElectionLost",
    "LeaderElector",
    "Lister",
    "ListerWatcher",
    "Manager",
    "MaxOfRateLimiter",
    "Metrics",
    "NotFound",
    "Obj",
    "ObjectKeyError",
    "Observability",
    "OperationResult",
    "QueueMetrics",
    "QueueMetricsProvider",
    "QueueShutDown",
    "RateLimiter",
    "RateLimitingQueue",
    "ReconcileStats",
    "Reflector",
    "ReflectorStats",
    "Resource",
    "ResourceExpired",
    "ResourceNotServed",
    "Result",
    "ServerError",
    "ShardMembershipLost",
    "ShardingConfig",
    "SharedIndexInformer",
    "SharedInformerFactory",
    "TargetError",
    "TooManyRequests",
    "Unauthorized",
    "WatchDecodeError",
    "WatchEvent",
    "WatchEventTooLarge",
    "WorkQueue",
    "annotations_of",
    "controller_of",
    "default_controller_rate_limiter",
    "format_label_selector",
    "get_condition",
    "has_finalizer",
    "is_being_deleted",
    "is_condition_true",
    "labels_of",
    "meta_namespace_key",
    "name_of",
    "namespace_index",
    "namespace_of",
    "new_api_client",
    "own_key",
    "owner_key",
    "owner_references",
    "parse_label_selector",
    "request_json",
    "resource_version",
    "run_observability",
    "serve_health",
    "serve_metrics",
    "set_condition",
    "set_controller_reference",
    "set_owner_reference",
    "share_strings",
    "split_meta_namespace_key",
    "strip_managed_fields",
    "uid_of",
    "unwrap_tombstone",
    "use_queue_metrics_provider",
]
