"""Controllers: watch declarations mapped to keys, a rate-limited work queue, workers
calling ``reconcile`` under one outcome policy, and the options that tune them.
"""
