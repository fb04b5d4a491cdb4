#!/usr/bin/env python
"""Everyday client operations with kube-informer, as one runnable script.

::

    python examples/client_operations.py --kubeconfig PATH [--namespace NS]

It shows, in order:

1. creating a client from a kubeconfig (``new_api_client``: ``--kubeconfig``, else
   ``$KUBECONFIG``, else ``~/.kube/config``; in-cluster inside a Pod);
2. creating a Deployment in code, with labels, namespace, selector and imagePullPolicy;
3. creating a Deployment from a YAML string;
4. getting a Deployment through the API (one GET, a fresh dict);
5. getting it through an informer's lister (from the informer's cache, no API call);
6. getting a ConfigMap (created first if it is missing).

Objects are plain dicts, exactly the JSON the API server speaks (camelCase keys); writes
go through ``request_json`` on the kubernetes_asyncio ``ApiClient``. The script is
idempotent: objects that exist already are reused. It exits 0 on success and 1 with a
one-line ``error: ...`` otherwise. The namespace must exist (default: ``default``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import anyio
import structlog
import yaml

from informer import (
    CONFIGMAPS,
    DEPLOYMENTS,
    Conflict,
    InformerError,
    SharedInformerFactory,
    new_api_client,
    request_json,
    strip_managed_fields,
)

Obj = dict[str, Any]

DEPLOYMENT_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello-yaml
  labels:
    app: hello-yaml
    created-by: client-operations
spec:
  replicas: 1
  selector:
    matchLabels:
      app: hello-yaml
  template:
    metadata:
      labels:
        app: hello-yaml
    spec:
      containers:
        - name: hello
          image: busybox:1.36
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "echo hello; sleep 3600"]
"""


def deployment_in_code(namespace: str) -> Obj:
    """A Deployment built as a dict: labels, namespace, selector, imagePullPolicy."""
    labels = {"app": "hello-code", "created-by": "client-operations"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "hello-code", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "hello-code"}},
            "template": {
                "metadata": {"labels": {"app": "hello-code"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.27",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"containerPort": 80}],
                        }
                    ]
                },
            },
        },
    }


async def create_or_get(api: Any, path: str, obj: Obj) -> tuple[Obj, bool]:
    """POST ``obj`` to the collection ``path``; if it exists already, GET it instead."""
    name = obj["metadata"]["name"]
    try:
        return await request_json(api, "POST", path, body=obj), True
    except Conflict as exc:
        if exc.reason != "AlreadyExists":
            raise
        return await request_json(api, "GET", f"{path}/{name}"), False


def describe(d: Obj) -> str:
    c = d["spec"]["template"]["spec"]["containers"][0]
    return (
        f"{d['metadata']['namespace']}/{d['metadata']['name']} replicas={d['spec']['replicas']} "
        f"image={c['image']} imagePullPolicy={c.get('imagePullPolicy')} "
        f"labels={d['metadata'].get('labels', {})} selector={d['spec']['selector']}"
    )


async def run(kubeconfig: str | None, namespace: str) -> None:
    # 1. A client from a kubeconfig. The caller owns it: ``async with`` closes it.
    async with await new_api_client(kubeconfig=kubeconfig) as api:
        print(f"1. client for {api.configuration.host}")

        # 2. A Deployment built in code.
        created, new = await create_or_get(
            api, DEPLOYMENTS.path(namespace=namespace), deployment_in_code(namespace)
        )
        print(f"2. {'created' if new else 'exists '} {describe(created)}")

        # 3. A Deployment from a YAML string (namespace set here, not in the YAML).
        from_yaml = yaml.safe_load(DEPLOYMENT_YAML)
        from_yaml["metadata"]["namespace"] = namespace
        created, new = await create_or_get(api, DEPLOYMENTS.path(namespace=namespace), from_yaml)
        print(f"3. {'created' if new else 'exists '} {describe(created)}")

        # 4. Get a Deployment through the API.
        fetched = await request_json(
            api, "GET", DEPLOYMENTS.path("hello-code", namespace=namespace)
        )
        print(f"4. API GET:    {describe(fetched)}")

        # 5. Get it through an informer's lister: list+watch once, then read the cache.
        factory = SharedInformerFactory(api, namespace=namespace, transform=strip_managed_fields)
        deployments = factory.informer_for(DEPLOYMENTS)
        async with factory:
            if not await factory.wait_for_cache_sync(timeout=30):
                raise InformerError("the Deployments informer did not sync within 30s")
            cached = deployments.lister().get("hello-code", namespace=namespace)
            if cached is None:
                raise InformerError(f"{namespace}/hello-code is not in the informer's cache")
            print(f"5. lister get: {describe(cached)}")
            names = sorted(
                d["metadata"]["name"] for d in deployments.lister().list(namespace=namespace)
            )
            print(f"   lister list: {', '.join(names)}")
            labelled = deployments.lister().list(
                namespace=namespace, label_selector="created-by=client-operations"
            )
            print(f"   lister list created-by=client-operations: {len(labelled)} Deployment(s)")

        # 6. Get a ConfigMap (created first when missing).
        config = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "hello-config", "namespace": namespace},
            "data": {"greeting": "hello", "color": "blue"},
        }
        await create_or_get(api, CONFIGMAPS.path(namespace=namespace), config)
        cm = await request_json(api, "GET", CONFIGMAPS.path("hello-config", namespace=namespace))
        print(f"6. ConfigMap {namespace}/hello-config data={cm.get('data', {})}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--kubeconfig", metavar="PATH", help="kubeconfig (default: $KUBECONFIG, ~/.kube/config)"
    )
    parser.add_argument(
        "--namespace", "-n", default="default", help="namespace to work in (default: default)"
    )
    args = parser.parse_args(argv)
    # An application configures logging (libraries never do): warnings and up, on stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    try:
        anyio.run(run, args.kubeconfig, args.namespace)
    except InformerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
