"""Leader election on a coordination.k8s.io Lease: the record (``record``), its timings
(``timings``), the judgment of other holders' Leases (``observation``), the elector
(``elector``) and the Manager's configuration (``config``). Shard membership holds and
judges its Leases with the same record, timings and observation."""
