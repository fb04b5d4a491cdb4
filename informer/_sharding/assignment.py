"""Rendezvous (highest random weight) hashing of keys over the members of a view.

Each member ``m`` scores a key ``k`` with a stable 64-bit hash of ``(m, k)``
(BLAKE2b, never Python's per-process ``hash()``); the owner of ``k`` is the member with
the highest score. Properties the handoff protocol relies on (``docs/sharding.md``):

- **stable**: every replica computes the same owner from the same member set;
- **minimal movement**: a member joining takes about ``1/N`` of the keys, each from
  whichever member owned it, and a member leaving gives only its own keys away; no other
  key moves;
- **pairwise order**: whether ``a`` beats ``b`` for ``k`` depends on ``a``, ``b`` and
  ``k`` only, so if ``a`` owns ``k`` in one view containing ``b``, ``b`` owns ``k`` in no
  view containing ``a``.

A view's identifier (:func:`view_digest`) is a digest of its sorted member set: replicas
that see the same members name the view the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = ["owner", "score", "view_digest"]


def score(member: str, key: str) -> int:
    """The weight of ``member`` for ``key``: 64 bits of BLAKE2b over both."""
    data = b"%s\0%s" % (member.encode(), key.encode())
    digest = hashlib.blake2b(data, digest_size=8, person=b"informer-shard")
    return int.from_bytes(digest.digest(), "big")


def owner(members: Sequence[str], key: str) -> str | None:
    """The member of ``members`` with the highest score for ``key`` (ties: the greater
    name); ``None`` when there is no member."""
    best: str | None = None
    best_score = -1
    for member in members:
        s = score(member, key)
        if s > best_score or (s == best_score and best is not None and member > best):
            best, best_score = member, s
    return best


def view_digest(members: Iterable[str]) -> str:
    """The identifier of the view made of ``members``: 16 hex digits of BLAKE2b over the
    sorted, de-duplicated names (order and duplicates do not matter)."""
    text = "\n".join(sorted(set(members)))
    return hashlib.blake2b(text.encode(), digest_size=8, person=b"informer-view").hexdigest()
