"""The one HTTP server the library runs (metrics, probes), with TLS and authentication of
scrapers.
"""
