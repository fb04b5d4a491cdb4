"""Work queues and rate limiters, as client-go's ``util/workqueue``: a queue that never
hands one key to two workers at once, its delaying and rate-limited forms, and the
metrics they report.
"""

from __future__ import annotations

from .._exceptions import QueueShutDown as QueueShutDown
from .._queue.metrics import QueueMetrics as QueueMetrics
from .._queue.metrics import QueueMetricsProvider as QueueMetricsProvider
from .._queue.metrics import use_queue_metrics_provider as use_queue_metrics_provider
from .._queue.ratelimit import BucketRateLimiter as BucketRateLimiter
from .._queue.ratelimit import ExponentialFailureRateLimiter as ExponentialFailureRateLimiter
from .._queue.ratelimit import ItemFastSlowRateLimiter as ItemFastSlowRateLimiter
from .._queue.ratelimit import MaxOfRateLimiter as MaxOfRateLimiter
from .._queue.ratelimit import RateLimiter as RateLimiter
from .._queue.ratelimit import default_controller_rate_limiter as default_controller_rate_limiter
from .._queue.workqueue import DelayingQueue as DelayingQueue
from .._queue.workqueue import RateLimitingQueue as RateLimitingQueue
from .._queue.workqueue import WorkQueue as WorkQueue

__all__ = [
    "BucketRateLimiter",
    "DelayingQueue",
    "ExponentialFailureRateLimiter",
    "ItemFastSlowRateLimiter",
    "MaxOfRateLimiter",
    "QueueMetrics",
    "QueueMetricsProvider",
    "QueueShutDown",
    "RateLimiter",
    "RateLimitingQueue",
    "WorkQueue",
    "default_controller_rate_limiter",
    "use_queue_metrics_provider",
]
