"""The cache layer: list/watch -> reflector -> DeltaFIFO -> indexed store -> handlers.

Private: the public names are re-exported from :mod:`informer`. This layer never imports
:mod:`informer._runtime` (``tests/test_layering.py``). See ``docs/architecture.md``.
"""
