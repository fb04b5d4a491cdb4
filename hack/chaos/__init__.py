"""Chaos soak for kube-informer: ``python -m hack.chaos`` (``make chaos``).

Runs informers on several resources and the sample controllers against a real local
control plane, through a cut/stall proxy and an HTTP fault proxy, while a seeded mix of
faults is injected (watch cuts, stalls, apiserver restarts and kills, etcd compaction,
429 storms, malformed watch lines, optionally token rotation). After each fault, caches
and handler-built state must equal fresh lists, the controllers must converge, and the
task count and RSS must stay bounded; it prints a table and exits 1 on any divergence.

Modules: :mod:`.soak` (topology and fault loop), :mod:`.faults`, :mod:`.fault_proxy`,
:mod:`.workload` (objects and the writer), :mod:`.observer` (handler views, diffs),
:mod:`.checks`, :mod:`.token`, :mod:`.report`, :mod:`.__main__` (command line).
"""
