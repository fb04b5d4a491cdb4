"""The replay server: a recorded list and watch stream, served at full speed on loopback.

Run as its own process (``python -m bench._replay --kind deployments --objects M
--events N [--clientgo BINARY]``); it prints ``{"port": P, ...}`` on stdout and serves
until its stdin closes (so it dies with the runner). It answers, for the one kind it
holds:

- the list (any ``limit`` is ignored: one page), ``resourceVersion`` = M;
- a watch from ``resourceVersion`` M (or a watch-list: M ``ADDED`` events and the
  ``k8s.io/initial-events-end`` bookmark first): the N ``MODIFIED`` events, written as
  fast as the client reads them, then the end of the response;
- a watch from any other resourceVersion: headers, then silence until the client leaves
  or ``timeoutSeconds`` (so a client re-watching after the stream gets nothing twice);
- discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/apps/v1``, ``/version``) for
  clients that resolve resources first (kopf);
- ``/_bench/watches``: the wall-clock time (``time.time()``) of every watch request, the
  start of a client's measured interval, and whether it was answered in protobuf.

The list and the watch come in JSON, or, with ``--clientgo`` and a request whose
``Accept`` puts ``application/vnd.kubernetes.protobuf`` first, in Kubernetes protobuf:
the same objects, encoded at startup as the API server encodes them
(:mod:`bench._protobuf`), the watch as length-prefixed ``WatchEvent`` frames.

Event ``i`` (0-based) modifies object ``i % M`` at resourceVersion ``M + 1 + i``.
``BENCH_BREAK=replay:short`` serves only the first half (:mod:`bench._faults`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from bench import _protobuf
from bench._faults import injected
from bench._objects import KINDS, served

_CHUNK = 1 << 16
_INITIAL_EVENTS_END = "k8s.io/initial-events-end"

_GROUPS = {
    "kind": "APIGroupList",
    "apiVersion": "v1",
    "groups": [
        {
            "name": "apps",
            "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
        }
    ],
}
_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
_RESOURCES: dict[str, Any] = {
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "configmaps", "singularName": "configmap", "namespaced": True,
             "kind": "ConfigMap", "verbs": _VERBS, "shortNames": ["cm"]},
            {"name": "namespaces", "singularName": "namespace", "namespaced": False,
             "kind": "Namespace", "verbs": _VERBS, "shortNames": ["ns"]},
        ],
    },
    "/apis/apps/v1": {
        "kind": "APIResourceList",
        "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": True,
             "kind": "Deployment", "verbs": _VERBS, "shortNames": ["deploy"]},
        ],
    },
}  # fmt: skip


def _kind_of(path: str) -> str | None:
    for kind in KINDS:
        if path.endswith("/" + kind):
            return kind
    return None


class Replay:
    def __init__(
        self, kind: str, objects: int, events: int, namespace: str, clientgo: Path | None = None
    ) -> None:
        self.kind = kind
        self.objects = objects
        self.events = events
        self.list_rv = str(objects)
        self.watches: list[dict[str, Any]] = []
        items = [served(kind, i, i + 1, namespace) for i in range(objects)]
        list_kind = "DeploymentList" if kind == "deployments" else "ConfigMapList"
        api_version = "apps/v1" if kind == "deployments" else "v1"
        self.list_body = orjson.dumps(
            {
                "kind": list_kind,
                "apiVersion": api_version,
                "metadata": {"resourceVersion": self.list_rv},
                "items": items,
            }
        )
        bookmark = {
            "kind": items[0]["kind"] if items else "",
            "apiVersion": api_version,
            "metadata": {
                "resourceVersion": self.list_rv,
                "annotations": {_INITIAL_EVENTS_END: "true"},
            },
        }
        item_json = [orjson.dumps(obj) for obj in items]
        bookmark_json = orjson.dumps(bookmark)
        event_json = [
            orjson.dumps(served(kind, i % objects, objects + 1 + i, namespace))
            for i in range(events)
        ]
        self.initial_body = b"".join(
            [_json_event(b"ADDED", obj) for obj in item_json]
            + [_json_event(b"BOOKMARK", bookmark_json)]
        )
        self.events_body = b"".join(_json_event(b"MODIFIED", obj) for obj in event_json)
        self.protobuf = False
        self.protobuf_error = "" if clientgo is not None else "no --clientgo encoder"
        self.pb_list_body = self.pb_initial_body = self.pb_events_body = b""
        if clientgo is not None:
            try:
                encoded = _protobuf.encode_objects(
                    clientgo, [self.list_body, bookmark_json, *item_json, *event_json]
                )
            except (OSError, RuntimeError, ValueError) as exc:  # JSON only, and say why
                self.protobuf_error = str(exc)
                return
            self.protobuf = True
            self.pb_list_body = encoded[0]
            frame = _protobuf.watch_frame
            self.pb_initial_body = b"".join(
                [frame("ADDED", obj) for obj in encoded[2 : 2 + objects]]
                + [frame("BOOKMARK", encoded[1])]
            )
            self.pb_events_body = b"".join(frame("MODIFIED", obj) for obj in encoded[2 + objects :])

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if path == "/_bench/watches":
            return web.json_response(self.watches)
        if path == "/version":
            return web.json_response({"major": "1", "minor": "36", "gitVersion": "v1.36.3"})
        if path == "/api":
            return web.json_response({"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            return web.json_response(_GROUPS)
        if path in _RESOURCES:
            return web.json_response(_RESOURCES[path])
        kind = _kind_of(path)
        if kind is None:
            return web.json_response(
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                 "reason": "NotFound", "message": f"{path} not found"},
                status=404,
            )  # fmt: skip
        query = request.query
        if query.get("watch", "").lower() not in ("true", "1"):
            if kind != self.kind:
                return web.json_response(
                    {"kind": "List", "metadata": {"resourceVersion": "1"}, "items": []}
                )
            if self._protobuf(request):
                return web.Response(
                    body=self.pb_list_body, headers={"Content-Type": _protobuf.MEDIA_TYPE}
                )
            return web.Response(body=self.list_body, content_type="application/json")
        return await self._watch(request, kind)

    def _protobuf(self, request: web.Request) -> bool:
        """Answer in protobuf: the client asks for it first and the server has it."""
        return self.protobuf and _protobuf.wants_protobuf(request.headers.get("Accept", ""))

    async def _watch(self, request: web.Request, kind: str) -> web.StreamResponse:
        query = request.query
        rv = query.get("resourceVersion", "")
        watch_list = query.get("sendInitialEvents", "").lower() == "true"
        streams = kind == self.kind and (watch_list or rv == self.list_rv)
        protobuf = self._protobuf(request)
        self.watches.append(
            {
                "time": time.time(),
                "rv": rv,
                "watch_list": watch_list,
                "streams": streams,
                "protobuf": protobuf,
            }
        )
        content_type = _protobuf.WATCH_CONTENT_TYPE if protobuf else "application/json"
        resp = web.StreamResponse(headers={"Content-Type": content_type})
        await resp.prepare(request)
        if not streams:
            timeout = float(query.get("timeoutSeconds", "600"))
            await asyncio.sleep(timeout)
            await resp.write_eof()
            return resp
        if protobuf:
            initial, events = self.pb_initial_body, self.pb_events_body
        else:
            initial, events = self.initial_body, self.events_body
        body = (initial + events) if watch_list else events
        view = memoryview(body)
        for i in range(0, len(body), _CHUNK):
            await resp.write(view[i : i + _CHUNK])
        await resp.write_eof()
        return resp


def _json_event(event_type: bytes, obj: bytes) -> bytes:
    """One line of a JSON watch (the bytes ``orjson.dumps({"type": ..., "object": ...})``
    writes)."""
    return b'{"type":"' + event_type + b'","object":' + obj + b"}\n"


async def serve(replay: Replay) -> None:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", replay.handle)
    # Clients that re-watch (kopf, the official informer) leave a silent watch open: do
    # not wait for it at exit (the default waits 60 s, the runner kills us after 10 s).
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    port = server.sockets[0].getsockname()[1]
    per_event = max(1, replay.events)
    print(
        orjson.dumps(
            {
                "port": port,
                "event_bytes": len(replay.events_body) // per_event,
                "protobuf_event_bytes": len(replay.pb_events_body) // per_event,
                "protobuf_error": replay.protobuf_error,
            }
        ).decode(),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the runner closes our stdin
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._replay")
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--namespace", default="default")
    parser.add_argument(
        "--clientgo",
        type=Path,
        help="the client-go peer's binary: also serve protobuf (it encodes the objects)",
    )
    args = parser.parse_args(argv)
    events = args.events // 2 if injected("replay") == "short" else args.events
    replay = Replay(args.kind, args.objects, events, args.namespace, args.clientgo)
    asyncio.run(serve(replay))


if __name__ == "__main__":
    main()
