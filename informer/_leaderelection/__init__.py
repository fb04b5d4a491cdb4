"""Leader election on a coordination.k8s.io Lease: the record, the timings and the elector."""
