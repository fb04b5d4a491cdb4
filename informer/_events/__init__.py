"""The event layer: :class:`~informer.EventRecorder` and what it is made of.

Private: the public name is re-exported from :mod:`informer`. Modules: ``model`` (the
Event dict: references, names, times, argument checks), ``spam`` (the per-object token
buckets), ``series`` (aggregation of repeated events into an Event ``series``), ``sink``
(the writer: events.k8s.io/v1, or core/v1 when the server lacks it) and ``recorder``
(the buffer and the background task). This layer never imports :mod:`informer._runtime`
(``tests/test_layering.py``).
"""
