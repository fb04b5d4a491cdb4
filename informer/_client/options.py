"""The options of the client's list and delete requests, as the API server takes them
(controller-runtime's ``client/options.go``: ``ListOptions``, ``DeleteOptions``).

Both functions are pure: they validate and translate the keyword arguments of
:meth:`~informer.Client.list` / :meth:`~informer.Client.delete` and return a new query
dict or request body, before any request is sent (a bad label selector is a
``ValueError`` here, whether the read is then served from a cache or by the server).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from .._meta.types import Obj
from .cache_reads import label_selector_query

__all__ = ["PropagationPolicy", "delete_options", "list_query"]

PropagationPolicy = Literal["Orphan", "Background", "Foreground"]
"""What a delete does to the object's dependents (the server's default: ``Background``
for most resources)."""


def list_query(
    label_selector: str | Mapping[str, str] | None, field_selector: str | None
) -> dict[str, str]:
    """The query of a list: ``labelSelector`` (a selector string, validated, or a mapping
    of labels that must all match) and ``fieldSelector``, each only when given."""
    query: dict[str, str] = {}
    if label_selector is not None:
        labels = label_selector_query(label_selector)
        if labels:
            query["labelSelector"] = labels
    if field_selector:
        query["fieldSelector"] = field_selector
    return query


def delete_options(
    *,
    uid: str | None = None,
    resource_version: str | None = None,
    propagation_policy: PropagationPolicy | None = None,
) -> Obj | None:
    """The ``DeleteOptions`` body of a delete: the preconditions (the server deletes only
    that ``uid`` / that ``resourceVersion``, a Conflict otherwise) and the propagation
    policy; ``None`` when there is nothing to send."""
    options: Obj = {}
    preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
    if preconditions:
        options["preconditions"] = preconditions
    if propagation_policy is not None:
        options["propagationPolicy"] = propagation_policy
    if not options:
        return None
    return {"apiVersion": "v1", "kind": "DeleteOptions", **options}
