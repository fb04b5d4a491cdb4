"""The member Lease of a shard group: its name, labels, annotations and parsed form.

Each replica holds one ``coordination.k8s.io/v1`` Lease of its own, named
:func:`lease_name` (``<group>-<12 hex digits of the identity>``) and labelled
``informer.dev/shard-group: <group>`` (:data:`GROUP_LABEL`), so one label selector lists
the whole group. Its ``spec`` is a leader-election record held by the replica's identity
(``holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``, ``renewTime``); a
released Lease has an empty ``holderIdentity``. Annotations carry the handoff protocol
(``docs/sharding.md``):

- :data:`DRAINED_ANNOTATION`: the digest of the last view for which the replica has
  drained (no reconcile in flight of a key it does not own in that view, and none
  started since); empty until the first;
- :data:`VIEW_ANNOTATION`: the digest of the view the replica works in (informative:
  tests and ``kubectl get leases -o yaml`` read it; the protocol never does).

Only the holder writes its Lease, except that any member may delete a Lease it judged
expired or released (with a ``resourceVersion`` precondition).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from .._leaderelection.record import micro_time
from .._meta.objects import annotations_of, resource_version
from .._meta.resource import LEASES
from .._meta.types import Obj

__all__ = [
    "DRAINED_ANNOTATION",
    "GROUP_LABEL",
    "MAX_GROUP_LENGTH",
    "VIEW_ANNOTATION",
    "MemberRecord",
    "lease_body",
    "lease_name",
    "validate_group",
]

GROUP_LABEL: Final = "informer.dev/shard-group"
DRAINED_ANNOTATION: Final = "informer.dev/shard-drained"
VIEW_ANNOTATION: Final = "informer.dev/shard-view"
MAX_GROUP_LENGTH: Final = 50
"""A group is a DNS-1123 label short enough for ``<group>-<12 hex>`` to stay one (63)."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def validate_group(group: str) -> str:
    """Return ``group`` if it is a DNS-1123 label of at most :data:`MAX_GROUP_LENGTH`
    characters (it is a label value and a Lease name prefix), else raise ``ValueError``."""
    if not (0 < len(group) <= MAX_GROUP_LENGTH and _DNS_LABEL.match(group)):
        raise ValueError(
            f"shard group {group!r} must be a DNS-1123 label (lower-case letters, digits "
            f"and '-') of at most {MAX_GROUP_LENGTH} characters"
        )
    return group


def lease_name(group: str, identity: str) -> str:
    """The name of ``identity``'s member Lease in ``group``."""
    digest = hashlib.blake2b(identity.encode(), digest_size=6).hexdigest()
    return f"{group}-{digest}"


def lease_body(
    *, group: str, namespace: str, identity: str, lease_seconds: int, drained: str, view: str
) -> Obj:
    """A new member Lease (for ``POST``), held by ``identity`` as of now."""
    now = micro_time()
    return {
        "apiVersion": LEASES.api_version,
        "kind": LEASES.kind,
        "metadata": {
            "name": lease_name(group, identity),
            "namespace": namespace,
            "labels": {GROUP_LABEL: group},
            "annotations": {DRAINED_ANNOTATION: drained, VIEW_ANNOTATION: view},
        },
        "spec": {
            "holderIdentity": identity,
            "leaseDurationSeconds": lease_seconds,
            "acquireTime": now,
            "renewTime": now,
        },
    }


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """What the handoff protocol reads from one member Lease.

    ``holder`` is ``""`` for a released Lease; ``resource_version`` is the precondition
    of a delete. Whether the Lease expired is not read here: the membership judges it on
    its own clock (:mod:`informer._leaderelection.observation`).
    """

    name: str
    holder: str
    resource_version: str
    drained: str
    view: str

    @property
    def released(self) -> bool:
        return not self.holder

    @classmethod
    def from_lease(cls, lease: Obj) -> MemberRecord:
        metadata = lease.get("metadata") or {}
        spec = lease.get("spec") or {}
        annotations = annotations_of(lease)
        return cls(
            name=str(metadata.get("name") or ""),
            holder=str(spec.get("holderIdentity") or ""),
            resource_version=resource_version(lease) or "",
            drained=str(annotations.get(DRAINED_ANNOTATION) or ""),
            view=str(annotations.get(VIEW_ANNOTATION) or ""),
        )
