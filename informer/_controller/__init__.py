"""Controllers: watches mapped to keys, the work queue, workers calling reconcile, and
their options.
"""
