"""The Client: reads served from informer caches, writes to the API server, API discovery,
server-side apply, create-or-update, finalizers, manifests and read-your-writes waits."""
