"""The exported surface is pinned: a change here must be deliberate (and in the README)."""

from __future__ import annotations

import informer

EXPECTED = {
    # objects and keys
    "meta_namespace_key", "split_meta_namespace_key", "DeletedFinalStateUnknown",
    "unwrap_tombstone", "ObjectKeyError", "name_of", "namespace_of", "resource_version",
    "uid_of", "labels_of", "annotations_of", "owner_references", "controller_of",
    "Obj", "WatchEvent",
    # store, FIFO
    "Indexer", "IndexFunc", "namespace_index", "NAMESPACE_INDEX", "Lister",
    "parse_label_selector", "format_label_selector", "DeltaType", "Delta", "DeltaFIFO",
    # list/watch, reflector, informers
    "ListerWatcher", "ApiListerWatcher", "Reflector", "ReflectorStats",
    "SharedIndexInformer", "SharedInformerFactory", "EventHandler", "HandlerFuncs",
    "FilteringHandler", "strip_managed_fields", "share_strings", "new_api_client", "request_json",
    # resources
    "Resource", "CONFIGMAPS", "CRONJOBS", "CUSTOM_RESOURCE_DEFINITIONS", "DAEMONSETS",
    "DEPLOYMENTS", "EVENTS", "JOBS", "LEASES", "NAMESPACES", "NODES", "PODS",
    "REPLICASETS", "SECRETS", "SERVICES", "SERVICE_ACCOUNTS", "STATEFULSETS",
    # work queues
    "WorkQueue", "DelayingQueue", "RateLimitingQueue", "QueueMetrics", "RateLimiter",
    "QueueMetricsProvider", "use_queue_metrics_provider",
    "ExponentialFailureRateLimiter", "BucketRateLimiter", "ItemFastSlowRateLimiter",
    "MaxOfRateLimiter", "default_controller_rate_limiter",
    # client
    "Client", "OperationResult",
    # controllers
    "Controller", "Result", "KeyMapper", "ReconcileStats", "own_key", "owner_key",
    "LeaderElector", "Manager", "LeaderElectionConfig", "EventRecorder",
    "ShardingConfig",
    # operator toolkit: finalizers, owner references, conditions
    "has_finalizer", "is_being_deleted", "set_controller_reference", "set_owner_reference",
    "AlreadyOwnedError", "set_condition", "get_condition", "is_condition_true",
    # observability
    "Observability", "Endpoints", "run_observability", "Metrics", "serve_metrics",
    "BindError", "HealthChecks", "serve_health", "HttpLimits",
    # errors
    "InformerError", "ApiError", "BadRequest", "Unauthorized", "Forbidden", "NotFound",
    "Conflict", "ResourceExpired", "TooManyRequests", "ServerError", "ConfigError",
    "ConnectionFailed", "WatchDecodeError", "WatchEventTooLarge", "FIFOClosedError",
    "QueueShutDown",
    "TargetError", "CacheSyncTimeout", "LeaderElectionLost", "AlreadyExists",
    "ResourceNotServed", "ShardMembershipLost",
}  # fmt: skip


def test_all_is_pinned() -> None:
    assert set(informer.__all__) == EXPECTED
    assert len(informer.__all__) == len(set(informer.__all__))


def test_every_exported_name_resolves() -> None:
    for name in informer.__all__:
        assert getattr(informer, name) is not None, name
