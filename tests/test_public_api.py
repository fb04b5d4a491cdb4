"""The exported surface is pinned: a change here must be deliberate (and in the docs).

The root ``informer`` holds the everyday names; second-tier names live in public modules,
each with its own ``__all__``. Names that left the root resolve there for one release,
with a ``DeprecationWarning`` naming their new home.
"""

from __future__ import annotations

import importlib
import warnings

import pytest

import informer

EXPECTED: dict[str, set[str]] = {
    "informer": {
        "AlreadyExists", "AlreadyOwnedError", "ApiError", "BadRequest", "CacheSyncTimeout",
        "Client", "ConfigError", "Conflict", "ConnectionFailed", "Controller", "ControllerOptions",
        "DeletedFinalStateUnknown", "EventHandler", "EventRecorder", "FilteringHandler",
        "Forbidden", "HandlerFuncs", "InformerError", "KeyMapper", "LeaderElectionConfig",
        "LeaderElectionLost", "Lister", "Manager", "NotFound", "Obj", "OperationResult",
        "ReconcileStats", "Resource", "ResourceExpired", "ResourceNotServed", "Result",
        "ServerError", "ShardMembershipLost", "ShardingConfig", "SharedIndexInformer",
        "SharedInformerFactory", "TooManyRequests", "Unauthorized", "annotations_of",
        "get_condition", "has_finalizer", "is_being_deleted", "is_condition_true", "labels_of",
        "meta_namespace_key", "name_of", "namespace_of", "new_api_client", "own_key",
        "owner_key", "request_json", "set_condition", "set_controller_reference",
        "set_owner_reference", "uid_of",
    },
    "informer.cache": {
        "ApiListerWatcher", "DeletedFinalStateUnknown", "Delta", "DeltaFIFO", "DeltaType",
        "EventHandler", "FIFOClosedError", "FilteringHandler", "HandlerFuncs", "IndexFunc",
        "Indexer", "Lister", "ListerWatcher", "NAMESPACE_INDEX", "Reflector", "ReflectorStats",
        "SharedIndexInformer", "SharedInformerFactory", "WatchDecodeError", "WatchEvent",
        "WatchEventTooLarge", "namespace_index", "share_strings", "strip_managed_fields",
    },
    "informer.workqueue": {
        "BucketRateLimiter", "DelayingQueue", "ExponentialFailureRateLimiter",
        "ItemFastSlowRateLimiter", "MaxOfRateLimiter", "QueueMetrics", "QueueMetricsProvider",
        "QueueShutDown", "RateLimiter", "RateLimitingQueue", "WorkQueue",
        "default_controller_rate_limiter", "use_queue_metrics_provider",
    },
    "informer.meta": {
        "AlreadyOwnedError", "DeletedFinalStateUnknown", "Obj", "ObjectKeyError", "WatchEvent",
        "annotations_of", "controller_of", "format_label_selector", "get_condition",
        "has_finalizer", "is_being_deleted", "is_condition_true", "labels_of",
        "meta_namespace_key", "name_of", "namespace_of", "owner_references",
        "parse_label_selector", "resource_version", "set_condition",
        "set_controller_reference", "set_owner_reference", "split_meta_namespace_key",
        "uid_of", "unwrap_tombstone",
    },
    "informer.resources": {
        "CONFIGMAPS", "CRONJOBS", "CUSTOM_RESOURCE_DEFINITIONS", "DAEMONSETS", "DEPLOYMENTS",
        "EVENTS", "JOBS", "LEASES", "NAMESPACES", "NODES", "PODS", "REPLICASETS", "Resource",
        "SECRETS", "SERVICES", "SERVICE_ACCOUNTS", "STATEFULSETS",
    },
    "informer.observability": {
        "BindError", "Endpoints", "HealthChecks", "HttpLimits", "Metrics", "Observability",
        "run_observability", "serve_health", "serve_metrics",
    },
    "informer.leaderelection": {
        "LeaderElectionConfig", "LeaderElectionLost", "LeaderElector", "LeaseTimings",
    },
    "informer.predicates": {
        "Predicate", "UpdatePredicate", "and_", "annotations_changed", "generation_changed",
        "is_update_aware", "labels_changed", "not_", "or_", "resource_version_changed",
    },
    "informer.run": {
        "ExitCode", "TargetError", "build_parser", "exit_code", "main",
    },
    "informer.testing": {
        "ControlPlane", "ControlPlaneError", "FakeListerWatcher", "ServedWebhooks", "TcpProxy",
        "User", "eventually", "install_crds", "run_controllers", "serve_webhooks",
        "wait_for_crds", "write_webhook_certificates",
    },
    "informer.webhook": {
        "CERT_MANAGER_INJECT_CA_FROM", "DEFAULT_CERT_DIR", "AdmissionRequest",
        "AdmissionResponse", "AdmissionWebhook", "ClientConfig", "ConversionWebhook",
        "Convertible", "Defaulter", "Denied", "JsonPatchError", "MutateFunc", "MutatingWebhook",
        "ServiceReference", "Spoke", "ValidateFunc", "ValidatingWebhook", "Validator",
        "Warnings", "Webhook", "WebhookServer", "apply_json_patch", "check_round_trip",
        "configure_crd", "crd_conversion", "json_patch", "webhook_configurations",
        "webhook_manifests",
    },
    "informer.crd": {
        "Condition", "Conditions", "CustomResource", "Definition", "EmbeddedResource", "Format",
        "IntOrString", "InvalidObject", "LabelSelector", "LabelSelectorRequirement", "ListType",
        "MapType", "ObjectMeta", "PreserveUnknownFields", "PrinterColumn", "Scale", "Schema",
        "SchemaError", "Validation", "Version", "definitions", "models_source",
    },
    "informer.rbac": {
        "Access", "AccessMode", "Need", "UndeclaredAccess", "access_mode", "controller_needs",
        "lease_needs", "policy_rules", "role_documents", "set_access_mode",
    },
    "informer.testing.control_plane": {
        "ControlPlane", "ControlPlaneError", "User",
    },
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(EXPECTED), ids=str)
def test_all_is_pinned(module: str) -> None:
    names = importlib.import_module(module).__all__
    assert set(names) == EXPECTED[module]
    assert len(names) == len(set(names)), f"{module}.__all__ lists a name twice"


@pytest.mark.parametrize("module", sorted(EXPECTED), ids=str)
def test_every_exported_name_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{module}.{name}"


def test_the_root_stays_curated() -> None:
    """About 45-60 everyday names; the rest belong in the public modules."""
    assert 45 <= len(informer.__all__) <= 60, len(informer.__all__)


def test_public_modules_export_no_private_names() -> None:
    for module, names in EXPECTED.items():
        assert not [n for n in names if n.startswith("_")], module


MOVED = sorted(informer._MOVED.items())


@pytest.mark.parametrize(("name", "home"), MOVED, ids=[n for n, _ in MOVED])
def test_a_name_that_left_the_root_resolves_with_a_warning(name: str, home: str) -> None:
    assert name not in informer.__all__
    assert name in EXPECTED[f"informer.{home}"], f"informer.{home} does not export {name}"
    with pytest.warns(DeprecationWarning, match=rf"informer\.{name} moved to informer\.{home}"):
        value = getattr(informer, name)
    assert value is getattr(importlib.import_module(f"informer.{home}"), name)


def test_an_unknown_root_name_is_an_attribute_error() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
            _ = informer.NoSuchName  # type: ignore[attr-defined]


def test_the_removed_root_names_are_exactly_the_old_surface_minus_the_root() -> None:
    """Every name the old flat root exported still resolves (here or with a warning)."""
    added = {"ControllerOptions"}  # new in the root, not part of the old surface
    old_root = {
        *EXPECTED["informer"],
        *informer._MOVED,
    } - added
    assert len(old_root) == 119
