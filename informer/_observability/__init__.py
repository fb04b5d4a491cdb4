"""Metrics, health checks and probes, and the endpoints that serve them."""
