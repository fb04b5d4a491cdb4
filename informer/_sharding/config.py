"""``ShardingConfig``: sharding for a :class:`~informer.Manager`, and the names it derives.

:data:`SHARD_MODES` says what is hashed over the members; :func:`namespace_of` is what
namespace mode hashes; :func:`default_group` names the group of replicas running the
same controllers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from .._leaderelection.config import default_identity
from .._leaderelection.timings import LeaseTimings
from .records import MAX_GROUP_LENGTH, validate_group

__all__ = ["SHARD_MODES", "ShardingConfig", "default_group", "namespace_of"]

SHARD_MODES: Final = ("key", "namespace")
"""What is hashed over the members: ``key``, the work-queue key; ``namespace``, its
namespace (informers and controllers run per owned namespace:
:mod:`informer._manager.sharded_namespaces`)."""


def namespace_of(key: str) -> str:
    """What namespace mode hashes: the namespace of a ``namespace/name`` key (``""`` for
    a cluster-scoped key)."""
    namespace, sep, _ = key.partition("/")
    return namespace if sep else ""


def default_group(controller_names: Iterable[str]) -> str:
    """The shard group of replicas running these controllers: their names, sorted and
    joined with ``-`` (made a DNS-1123 label; too long a name keeps a prefix and gains a
    digest of the whole)."""
    text = "-".join(sorted(set(controller_names))).lower()
    label = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text)).strip("-") or "shard"
    if len(label) <= MAX_GROUP_LENGTH:
        return label
    digest = hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
    return f"{label[: MAX_GROUP_LENGTH - 13].rstrip('-')}-{digest}"


@dataclass(frozen=True, slots=True)
class ShardingConfig(LeaseTimings):
    """Sharding for a :class:`~informer.Manager`: the shard ``group`` (a DNS-1123 label,
    at most 50 characters: it labels the member Leases and prefixes their names), the
    Lease ``namespace``, our ``identity`` (unique per process run: keep the default
    ``<hostname>_<uuid4>``), what is hashed (``shard_by``, :data:`SHARD_MODES`), and the
    keyword-only membership timings of :class:`LeaseTimings` (their defaults and rules).
    A bad value raises ``ValueError``."""

    group: str
    namespace: str = "default"
    identity: str = field(default_factory=default_identity)
    shard_by: Literal["key", "namespace"] = "key"

    def __post_init__(self) -> None:
        validate_group(self.group)
        if not self.namespace or not self.identity:
            raise ValueError("sharding needs a Lease namespace and an identity")
        LeaseTimings.__post_init__(self)
        if self.shard_by not in SHARD_MODES:
            raise ValueError(f"shard_by must be one of {SHARD_MODES}, got {self.shard_by!r}")

    @property
    def drain_grace(self) -> float:
        """The cap on the controllers' shutdown grace: ``(lease_duration -
        renew_deadline) / 2``. A lapsed member's reconciles end within the renew deadline
        plus this, half the gap before the others may take its keys over; the other half
        absorbs clock-rate differences and event-loop lag (``docs/sharding.md``)."""
        return (self.lease_duration - self.renew_deadline) / 2
