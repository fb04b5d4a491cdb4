"""The transport: configuration, credentials, requests and streams; the only folder that
imports kubernetes_asyncio and aiohttp.

Modules, one concept each, each importing only those listed before it: ``lazy_client``
(kubernetes_asyncio's generated API classes and models left unimported until asked for;
installed here, before anything imports kubernetes_asyncio), ``api_request``
(query encoding, patch types, ``Retry-After``: no transport), ``kubeconfig`` (checking a
kubeconfig's structure), ``credentials`` (token and certificate files kept fresh, the
record of 401 and 403 answers), ``errors`` (the one place where transport failures and
HTTP statuses become the error tree), ``transport`` (sending one request through an
``ApiClient``: its pool, a stream session, credentials), ``request`` (a request answered
by a JSON object), ``stream`` (a watch's body, read chunk by chunk) and ``api_client``
(the ``ApiClient`` and building one from a kubeconfig or the in-cluster configuration).
"""

from .lazy_client import install as _install_lazy_client

_install_lazy_client()
