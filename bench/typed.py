"""``python -m bench.typed``: what typed access costs (``informer.crd``), per object.

A reconcile that reads its ConfigMapMirror typed pays for ``Mirror.parse(obj)`` (pydantic
validation of the cached dict into a new model) where a dict reader pays for a few
subscripts; writing back pays for ``to_dict()``. This measures both, in microseconds per
object, for the sample's resource as the controller caches it: a new mirror (spec only)
and a synced one (status with a condition, ten target namespaces, the server's metadata
with managedFields). No cluster: the objects are built here; the figures are the median
of ``--repeat`` runs of ``--number`` calls each, with the machine's load average before
and after (other processes share the cores).
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import platform
import statistics
import timeit
from collections.abc import Callable
from typing import Any

from kube_informer_samples.configmap_mirror_types import Mirror

__all__ = ["main", "mirrors"]


def mirrors() -> dict[str, dict[str, Any]]:
    """The two shapes measured, as an informer caches them."""
    new: dict[str, Any] = {
        "apiVersion": "mirror.informer.dev/v1alpha1",
        "kind": "ConfigMapMirror",
        "metadata": {
            "name": "app-config",
            "namespace": "team-a",
            "uid": "7f1c8a2e-5b7e-4a51-9a43-3c2b9f0d6e11",
            "resourceVersion": "123456",
            "generation": 1,
            "creationTimestamp": "2025-01-02T03:04:05Z",
        },
        "spec": {"source": "app-config", "targetNamespaces": ["team-b"]},
    }
    synced = copy.deepcopy(new)
    synced["metadata"]["finalizers"] = ["mirror.informer.dev/copies"]
    synced["metadata"]["managedFields"] = [
        {
            "manager": manager,
            "operation": "Update",
            "apiVersion": "mirror.informer.dev/v1alpha1",
            "time": "2025-01-02T03:04:06Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {".": {}, "f:source": {}, "f:targetNamespaces": {}}},
        }
        for manager in ("kubectl", "configmap-mirror")
    ]
    targets = [f"team-{i}" for i in range(10)]
    synced["spec"]["targetNamespaces"] = targets
    synced["status"] = {
        "observedGeneration": 1,
        "syncedNamespaces": targets,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "observedGeneration": 1,
                "lastTransitionTime": "2025-01-02T03:04:07Z",
                "reason": "Synced",
                "message": "copied to 10 namespaces",
            }
        ],
    }
    return {"new (spec only)": new, "synced (status, 10 targets)": synced}


def read_dict(obj: dict[str, Any]) -> Any:
    """What a reconcile reads, from the dict."""
    spec = obj["spec"]
    status = obj.get("status") or {}
    return (
        spec["source"],
        spec.get("targetNamespaces"),
        spec.get("namespaceSelector"),
        obj["metadata"]["generation"],
        status.get("observedGeneration"),
    )


def read_typed(obj: dict[str, Any]) -> Any:
    """The same reads, typed."""
    mirror = Mirror.parse(obj)
    spec, status = mirror.spec, mirror.status
    return (
        spec.source,
        spec.target_namespaces,
        spec.namespace_selector,
        mirror.metadata.generation,
        status.observed_generation if status else None,
    )


def measure(fn: Callable[[], Any], number: int, repeat: int) -> float:
    """Median microseconds per call."""
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.typed", description=__doc__)
    parser.add_argument("--number", type=int, default=2000, help="calls per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs (the median is shown)")
    args = parser.parse_args(argv)
    import pydantic

    load_before = os.getloadavg()
    rows = []
    for shape, obj in mirrors().items():
        parsed = Mirror.parse(obj)
        assert parsed.to_dict() == obj  # the round trip measured is exact
        d = measure(functools.partial(read_dict, obj), args.number, args.repeat)
        t = measure(functools.partial(read_typed, obj), args.number, args.repeat)
        w = measure(parsed.to_dict, args.number, args.repeat)
        rows.append((shape, d, t, w))
    load_after = os.getloadavg()
    print(
        f"Python {platform.python_version()}, pydantic {pydantic.VERSION}, "
        f"{os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after; median of {args.repeat} x {args.number} calls"
    )
    print()
    print("| object | dict reads µs | parse + typed reads µs | to_dict() µs | parse / dict |")
    print("|---|---:|---:|---:|---:|")
    for shape, d, t, w in rows:
        print(f"| {shape} | {d:.2f} | {t:.1f} | {w:.1f} | {t / d:.0f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
