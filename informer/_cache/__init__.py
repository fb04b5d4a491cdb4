"""The cache: list/watch -> Reflector -> DeltaFIFO -> indexed store -> handlers, the
shared informers and their factory, and the transforms applied before caching.

Public names: :mod:`informer.cache` (the everyday ones also in :mod:`informer`). What
this folder may import is the ``_cache`` row of ``MAY_IMPORT`` in
``tests/test_layering.py``; see ``docs/architecture.md``.
"""
