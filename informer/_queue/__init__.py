"""Work queues (plain, delaying, rate-limited), rate limiters and the queue metrics hooks.

Public names: :mod:`informer.workqueue`. It imports nothing of the package but the error
tree (``tests/test_layering.py``); see ``docs/architecture.md``.
"""
