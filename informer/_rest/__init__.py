"""The transport: configuration, credentials, requests and streams; the only folder that
imports kubernetes_asyncio and aiohttp.
"""
