"""kube-informer's benchmarks: ``python -m bench [names...] [--quick]`` (``make bench``).

Each benchmark prints one table, peers measured in the same run on the same input:

- ``throughput``: a replay server (its own process) serves a recorded list and a watch
  stream of MODIFIED events at full speed; each client (its own process) is timed from
  the server receiving its watch request to its handler seeing the last event.
- ``sync``: initial sync from the local control plane (seconds to ``has_synced``, RSS).
- ``memory``: memory per cached object, with and without dropping managedFields.
- ``latency``: API write to ``reconcile(key)``, p50/p99, under a steady write load.

client-go (``bench/clientgo``, built by Go into ``.cache/bench/``) runs in every one of
them twice: in JSON, like the Python peers, and in Kubernetes protobuf (``-protobuf``), as
in-tree controllers do; "vs client-go" compares with its fastest mode.

The run ends with a summary and exits 1 if any measurement failed (see
:mod:`bench._cli`); ``--json FILE`` writes every row. See ``bench/RESULTS.md`` for
figures and how to reproduce them.
"""
