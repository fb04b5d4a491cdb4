"""The work-queue layer: work queues (plain, delaying, rate-limited) and rate limiters.

Private: the public names are re-exported from :mod:`informer`. This layer never imports
:mod:`informer._runtime` nor the cache layer (``tests/test_layering.py``). See
``docs/architecture.md``.
"""
