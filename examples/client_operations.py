#!/usr/bin/env python
"""Everyday client operations with kube-informer, as one runnable script.

::

    python examples/client_operations.py --kubeconfig PATH [--namespace NS]

It shows, in order:

1. creating a client from a kubeconfig (``new_api_client``: ``--kubeconfig``, else
   ``$KUBECONFIG``, else ``~/.kube/config``; in-cluster inside a Pod) and an
   ``informer.Client`` on it;
2. creating a Deployment in code, with labels, namespace, selector and imagePullPolicy
   (``Client.create_or_update``: created when missing, else what the script manages is
   set and written only when it changed);
3. creating a Deployment from a YAML string (``Client.apply_manifests``: server-side
   apply, the namespace given to objects that set none);
4. getting a Deployment through the API (one GET, a fresh dict);
5. getting it through an informer's cache (a ``Client`` on a started factory serves
   ``get`` and ``list`` from the informer, no API call);
6. getting a ConfigMap (created first if it is missing).

Objects are plain dicts, exactly the JSON the API server speaks (camelCase keys). The
script is idempotent: a second run changes nothing. It exits 0 on success and 1 with a
one-line ``error: ...`` otherwise. The namespace must exist (default: ``default``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import anyio
import structlog

from informer import Client, InformerError, SharedInformerFactory, new_api_client
from informer.cache import strip_managed_fields
from informer.resources import DEPLOYMENTS

Obj = dict[str, Any]

FIELD_MANAGER = "client-operations"

DEPLOYMENT_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello-yaml  # no namespace: apply_manifests(namespace=...) sets it
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
        client = Client(api, field_manager=FIELD_MANAGER)
        print(f"1. client for {api.configuration.host}")

        # 2. A Deployment built in code: created when missing; when it exists, ``manage``
        # (controller-runtime's MutateFn) sets what the script manages, and it is updated
        # only if that changed something.
        wanted = deployment_in_code(namespace)

        def manage(deployment: Obj) -> None:
            deployment["metadata"].setdefault("labels", {}).update(wanted["metadata"]["labels"])
            deployment["spec"]["replicas"] = wanted["spec"]["replicas"]

        created, result = await client.create_or_update(wanted, manage)
        print(f"2. {result} {describe(created)}")

        # 3. A Deployment from a YAML string (namespace set here, not in the YAML).
        [applied] = await client.apply_manifests(DEPLOYMENT_YAML, namespace=namespace)
        print(f"3. applied {describe(applied)}")

        # 4. Get a Deployment through the API (a Client without a factory has no cache).
        fetched = await client.get(DEPLOYMENTS, "hello-code", namespace=namespace)
        print(f"4. API GET:    {describe(fetched)}")

        # 5. Get it from an informer's cache: list+watch once, then reads cost no request.
        factory = SharedInformerFactory(api, namespace=namespace, transform=strip_managed_fields)
        factory.informer_for(DEPLOYMENTS)
        cached = Client(api, factory=factory, field_manager=FIELD_MANAGER)
        async with factory:
            if not await factory.wait_for_cache_sync(timeout=30):
                raise InformerError("the Deployments informer did not sync within 30s")
            hello = await cached.get(DEPLOYMENTS, "hello-code", namespace=namespace)
            print(f"5. cached get: {describe(hello)}")
            listed = await cached.list(DEPLOYMENTS, namespace=namespace)
            names = sorted(d["metadata"]["name"] for d in listed)
            print(f"   cached list: {', '.join(names)}")
            labelled = await cached.list(
                DEPLOYMENTS, namespace=namespace, label_selector={"created-by": "client-operations"}
            )
            print(f"   cached list created-by=client-operations: {len(labelled)} Deployment(s)")

        # 6. Get a ConfigMap, created first when missing (mutate changes nothing that exists).
        config = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "hello-config", "namespace": namespace},
            "data": {"greeting": "hello", "color": "blue"},
        }
        cm, result = await client.create_or_update(config, lambda cm: None)
        print(f"6. ConfigMap {namespace}/hello-config ({result}) data={cm.get('data', {})}")


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
