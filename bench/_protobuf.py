"""Kubernetes protobuf wire forms the replay server serves to protobuf clients.

- An object or a list, as ``GET`` answers ``Accept: application/vnd.kubernetes.protobuf``:
  ``k8s\\x00`` then a ``runtime.Unknown`` (typeMeta, raw, contentEncoding, contentType).
  :func:`encode_objects` has the client-go peer (``-mode encode``) encode them with
  apimachinery's protobuf serializer, the one the API server uses.
- A watch (``Content-Type: application/vnd.kubernetes.protobuf;stream=watch``): frames of
  a 4-byte big-endian length and a ``metav1.WatchEvent`` (``type`` = field 1, ``object`` =
  field 2, a ``runtime.RawExtension`` whose ``raw`` = field 1 holds the object's encoding
  above). The watch stream serializer is the *raw* protobuf serializer: the event itself
  has no ``k8s\\x00`` prefix and no ``Unknown`` envelope, only its object does
  (apimachinery ``runtime/serializer/codec_factory.go``: ``StreamSerializer`` =
  ``protobuf.NewRawSerializer`` + ``LengthDelimitedFramer``). :func:`watch_frame` writes
  one frame; ``tests/bench/test_bench_smoke.py`` checks both forms against the real API server.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
WATCH_CONTENT_TYPE = MEDIA_TYPE + ";stream=watch"
MAGIC = b"k8s\x00"

_LEN = struct.Struct(">I")


def wants_protobuf(accept: str) -> bool:
    """Whether the client's first choice in ``Accept`` is Kubernetes protobuf."""
    first = accept.split(",", 1)[0].split(";", 1)[0].strip().lower()
    return first == MEDIA_TYPE


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _bytes_field(number: int, value: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def watch_event(event_type: str, obj: bytes) -> bytes:
    """``metav1.WatchEvent{Type: event_type, Object: RawExtension{Raw: obj}}``."""
    return _bytes_field(1, event_type.encode()) + _bytes_field(2, _bytes_field(1, obj))


def watch_frame(event_type: str, obj: bytes) -> bytes:
    """One frame of a protobuf watch: the event's length (4 bytes, big endian), the event."""
    event = watch_event(event_type, obj)
    return _LEN.pack(len(event)) + event


def split_frames(data: bytes) -> list[bytes]:
    """The bodies of length-prefixed frames (the encoder's output, a watch stream)."""
    out = []
    i = 0
    while i < len(data):
        (n,) = _LEN.unpack_from(data, i)
        i += 4
        if i + n > len(data):
            raise ValueError(f"frame of {n} bytes cut short at {len(data) - i}")
        out.append(data[i : i + n])
        i += n
    return out


def encode_objects(binary: Path, json_lines: Iterable[bytes]) -> list[bytes]:
    """Each object (JSON, apiVersion and kind included) as the API server encodes it in
    protobuf, by the client-go peer's ``-mode encode``; raises when it fails."""
    body = b"\n".join(json_lines) + b"\n"
    proc = subprocess.run(
        [str(binary), "-mode", "encode"], input=body, capture_output=True, check=False
    )
    if proc.returncode != 0:
        why = proc.stderr.decode(errors="replace").strip()[-500:]
        raise RuntimeError(f"{binary.name} -mode encode failed: {why}")
    return split_frames(proc.stdout)
