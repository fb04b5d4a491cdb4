"""Sharding: one controller's keys spread over the replicas of a shard group.

Private: the public names are re-exported from :mod:`informer`. Modules, one concept
each: ``config`` (``ShardingConfig``: group, mode, and the Lease timings of
``informer._leaderelection``), ``assignment`` (rendezvous hashing, view digests),
``records`` (the member Lease: name, labels, annotations, parsing), ``membership``
(holding our Lease and judging the others': the live member set), ``handoff`` (the
per-key gate of every controller: who may start which key, in-flight accounting,
"drained" and re-enqueueing gained keys), ``replica`` (``Sharding``: one replica's
membership and handoff around its controllers). The protocol and its safety argument
are in ``docs/sharding.md``.
"""
