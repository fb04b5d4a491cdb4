"""Events: :class:`~informer.EventRecorder` and what it is made of.

Modules: ``model`` (the Event dict: references, names, times, argument checks), ``spam``
(the per-object token buckets), ``series`` (aggregation of repeated events into an Event
``series``), ``sink`` (the writer: events.k8s.io/v1, or core/v1 when the server lacks
it) and ``recorder`` (the buffer and the background task). Public name:
:class:`informer.EventRecorder`.
"""
