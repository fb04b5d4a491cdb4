"""The runtime layer: the Manager, the HTTP server, metrics, health probes, controller
target loading and logging setup.

Private: the public names are re-exported from :mod:`informer`. The cache and queue
layers never import this one (``tests/test_layering.py``). See ``docs/architecture.md``.
"""
